"""`stockyard-dbt`: dbt's command line, without parsing the whole project again for every date window.

dbt parses the project in full whenever a command's `--vars` differ from the last parse's (partial parsing
keys on them), and the Dagster assets pass each run's window as `--vars`: about 1.5 s of a 5 s daily run.
What the project parses to does not depend on those vars: the models read the window only when they are
compiled (the date_window macro), never in a ref or a config. So a command with `--vars` is run on a
manifest parsed without them, which partial parsing keeps cheap, in the project's own target folder. Every
other command goes to dbt unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dbt.cli.main import dbtRunner, dbtRunnerResult
from dbt.contracts.graph.manifest import Manifest

# Flags the parse shares with the command, with their values: where the project, profile and target are.
_LOCATION_FLAGS = ("--project-dir", "--profiles-dir", "--profile", "--target", "-t")


def invoke(args: Sequence[str]) -> dbtRunnerResult:
    """Run dbt with `args` (as on its command line) and return its result."""
    if "--vars" not in args:
        return dbtRunner().invoke(list(args))
    parsed = dbtRunner().invoke(["parse", "--quiet", *_location_flags(args)])
    if not isinstance(parsed.result, Manifest):
        return parsed
    return dbtRunner(manifest=parsed.result).invoke(list(args))


def _location_flags(args: Sequence[str]) -> list[str]:
    """The command's location flags, and the target folder its parses are kept in: the command's own if it
    names one, else the project's `target` (Dagster gives each command a fresh one, with no parse in it)."""
    flags = [
        part
        for flag, value in zip(args, args[1:], strict=False)
        if flag in _LOCATION_FLAGS
        for part in (flag, value)
    ]
    if "--target-path" in args:
        return [*flags, "--target-path", args[args.index("--target-path") + 1]]
    project_dir = Path(
        args[args.index("--project-dir") + 1]
        if "--project-dir" in args
        else os.environ.get("DBT_PROJECT_DIR", ".")
    )
    return [*flags, "--target-path", str(project_dir.resolve() / "target")]


def main() -> None:
    """Exit as dbt does: 0 on success, 1 when a node failed, 2 when dbt itself could not run."""
    result = invoke(sys.argv[1:])
    sys.exit(0 if result.success else 2 if result.exception is not None else 1)


if __name__ == "__main__":
    main()

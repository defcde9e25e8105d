"""bench/models: the models benchmark, as `stockyard bench models` runs it (cli/bench.py, ml/benchmark.py).

    .venv/bin/python -m bench.models --data .stockyard/data/sp500/daily_adjusted \\
        --metadata .stockyard/data/sp500/constituents.csv --years 2008-2021 [--with-qlib]
"""

import typer

from cli.bench import models

if __name__ == "__main__":
    typer.run(models)

"""cli.processes on small process trees: what a command starts ends with it, whichever way it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from cli import processes

PYTHON = sys.executable


def python(code: str) -> list[str]:
    return [PYTHON, "-c", textwrap.dedent(code)]


def tree(pids: Path, *, then: str = "time.sleep(600)") -> list[str]:
    """A process that starts a sleeping child, writes both pids to `pids`, then runs `then`."""
    return python(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(f"{{child.pid}} ")
        {then}
        """
    )


def started(pids: Path) -> list[psutil.Process]:
    deadline = time.monotonic() + 30
    while not pids.exists() or not pids.read_text().endswith(" "):
        assert time.monotonic() < deadline, "the process tree did not start"
        time.sleep(0.05)
    return [psutil.Process(int(pid)) for pid in pids.read_text().split()]


def running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(members: list[psutil.Process], seconds: float = 20) -> list[psutil.Process]:
    """The members still running after `seconds`, killed so that a failure leaves nothing behind."""
    deadline = time.monotonic() + seconds
    while any(running(process) for process in members) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [process for process in members if running(process)]
    for process in left:
        process.kill()
    return left


@pytest.mark.parametrize("signal_number", processes.STOP_SIGNALS)
def test_a_stop_signal_to_the_command_alone_stops_its_children_and_theirs(
    tmp_path: Path, signal_number: int
) -> None:
    pids = tmp_path / "pids"
    command = python(
        f"""
        import os, sys
        from pathlib import Path
        from cli import processes
        with processes.stop_signals_raise():
            try:
                processes.run({tree(pids)!r}, env=os.environ, cwd=Path.cwd())
            except KeyboardInterrupt:
                sys.exit(130)
            except processes.Stopped as stopped:
                sys.exit(128 + stopped.signal_number)
        """
    )
    parent = subprocess.Popen(command, start_new_session=True)
    (grandchild,) = started(pids)
    descendants = psutil.Process(parent.pid).children(recursive=True)
    assert grandchild in descendants and len(descendants) == 2
    parent.send_signal(signal_number)
    assert parent.wait(timeout=20) == 128 + signal_number
    assert wait_gone(descendants) == []


def test_children_stop_when_the_command_is_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = python(
        f"""
        import os, time
        from pathlib import Path
        from cli import processes
        processes.start({python("import time; time.sleep(600)")!r}, env=os.environ, cwd=Path.cwd())
        open({str(pids)!r}, "w").write(" ")
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(command, start_new_session=True)
    started(pids)
    (child,) = psutil.Process(parent.pid).children(recursive=True)
    parent.kill()
    parent.wait(timeout=20)
    assert wait_gone([child]) == [], "Linux sends the child SIGTERM when its parent dies"


def test_what_an_exited_child_left_behind_is_stopped_and_its_status_kept(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = tree(pids, then="sys.exit(3)")
    assert processes.run(command, env=os.environ, cwd=tmp_path) == 3
    assert wait_gone(started(pids), seconds=0) == []


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = processes.start(
        python(
            f"""
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            open({str(ready)!r}, "w").write(" ")
            time.sleep(600)
            """
        ),
        env=os.environ,
        cwd=tmp_path,
    )
    started(ready)
    began = time.monotonic()
    assert processes.stop(child, grace=1) == -signal.SIGKILL
    assert 1 <= time.monotonic() - began < 10


def test_a_daemon_a_child_started_outlives_it(tmp_path: Path) -> None:
    """As the embedded PostgreSQL and Redis do: detached into a session of their own, meant to persist."""
    daemon_pid, detached = tmp_path / "daemon", tmp_path / "detached"
    daemonize = python(
        f"""
        import os, time
        from pathlib import Path
        if os.fork() == 0:
            os.setsid()
            Path({str(daemon_pid)!r}).write_text(f"{{os.getpid()}} ")
            time.sleep(600)
        while not Path({str(daemon_pid)!r}).exists():
            time.sleep(0.05)
        """
    )
    starts_a_daemon = tree(
        tmp_path / "child",
        then=f"subprocess.run({daemonize!r}); open({str(detached)!r}, 'w').write(' '); time.sleep(600)",
    )
    with processes.running(starts_a_daemon, env=os.environ, cwd=tmp_path):
        started(detached)
        (daemon,) = started(daemon_pid)
    try:
        assert running(daemon)
    finally:
        daemon.kill()

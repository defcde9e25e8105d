"""Child processes that end with the `stockyard` command that started them, however it is stopped.

The servers a command starts run children of their own (`dagster dev` a webserver, a daemon and code servers;
uvicorn and MLflow their workers), so each child starts a process group of its own, and stopping it stops
the whole group, and any descendant that left it: SIGTERM, a grace period, then SIGKILL for what is left.
Each child also gets SIGTERM from Linux should the command die without stopping it (PR_SET_PDEATHSIG), and
the commands turn SIGTERM and SIGHUP into `Stopped`, as Python turns SIGINT into KeyboardInterrupt, so the
stopping runs whichever of them arrives. The embedded PostgreSQL and Redis are not affected: they detach
into sessions of their own when started, and are meant to outlive the commands.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import psutil

# How long a stopping child gets to shut down cleanly; `dagster dev` itself waits up to 60 s per service,
# but stops in a few seconds when idle.
STOP_GRACE_SECONDS = 30.0
# The signals that stop a command (see `stop_signals_raise`).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1

# The children started and not stopped yet (by pid), and those already sent SIGTERM.
_children: dict[int, subprocess.Popen[bytes]] = {}
_told_to_stop: set[int] = set()


class Stopped(BaseException):
    """Raised in the main thread when SIGTERM or SIGHUP arrives; like KeyboardInterrupt, not an Exception,
    so no `except Exception` on the way mistakes it for a failure."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signal_number).name}")
        self.signal_number = signal_number


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise `Stopped`, SIGINT KeyboardInterrupt as always. Each first tells every
    running child to stop, so that they stop side by side rather than one after the other."""

    def raise_stopped(signal_number: int, _frame: FrameType | None) -> None:
        for child in list(_children.values()):
            _tell_to_stop(child)
        if signal_number == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped(signal_number)

    previous = {number: signal.signal(number, raise_stopped) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def start(command: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """`command` as the leader of a new session (so a terminal's Ctrl-C reaches it once, through `stop`),
    told by Linux to stop should this process die first. Call from the main thread: Linux sends the signal
    when the thread that started the child ends."""
    child = subprocess.Popen(
        list(command), env=env, cwd=cwd, start_new_session=True, preexec_fn=_dying_with(os.getpid())
    )
    _children[child.pid] = child
    return child


@contextmanager
def running(
    command: Sequence[str], *, env: Mapping[str, str], cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` running for the duration, stopped with all its descendants on the way out."""
    child = start(command, env=env, cwd=cwd)
    try:
        yield child
    finally:
        stop(child)


def run(command: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> int:
    """Run `command` to its end and return its exit status; an exception (a stop signal) stops it first."""
    child = start(command, env=env, cwd=cwd)
    try:
        wait_for_exit(child)
    except BaseException:
        stop(child)
        raise
    return stop(child)


def wait_for_exit(child: subprocess.Popen[bytes]) -> None:
    """Return when `child` has exited. Not reaped here: `stop` then sweeps the group of what it left."""
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)


def stop(child: subprocess.Popen[bytes], *, grace: float = STOP_GRACE_SECONDS) -> int:
    """Stop `child`, its process group and its descendants: SIGTERM, then SIGKILL to whatever still runs
    after `grace` seconds, or at once when another stop signal arrives meanwhile. Leftovers of a child that
    already exited are swept the same way. Returns the child's exit status."""
    with _stop_signals_hurry() as hurried:
        members = _tell_to_stop(child)
        deadline = time.monotonic() + grace
        while _any_running(child, members) and time.monotonic() < deadline and not hurried:
            time.sleep(0.1)
        # The leader is not reaped before this, so its group id cannot have been reused.
        _signal(child.pid, members, signal.SIGKILL)
        _children.pop(child.pid, None)
        _told_to_stop.discard(child.pid)
        return child.wait()


def _tell_to_stop(child: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Send SIGTERM to `child`'s group and descendants, unless already sent (a second one would interrupt
    their shutdown: `dagster dev` takes it as a second Ctrl-C); returns them."""
    members = _group_and_descendants(child.pid)
    if child.pid not in _told_to_stop:
        _told_to_stop.add(child.pid)
        _signal(child.pid, members, signal.SIGTERM)
    return members


def die_with(parent: int) -> None:
    """Have Linux send this process SIGTERM when `parent`, the process that started it, dies."""
    _dying_with(parent)()


def _dying_with(parent: int) -> Callable[[], None]:
    """What a child runs to receive SIGTERM when `parent` dies, or nothing where Linux's prctl is missing."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    # Looked up here: the child between fork and exec should only call it.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


@contextmanager
def _stop_signals_hurry() -> Iterator[list[int]]:
    """While children stop, a further stop signal is recorded in the yielded list instead of interrupting
    the stopping half-way (which would leave them running)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {
        number: signal.signal(number, lambda signal_number, _frame: received.append(signal_number))
        for number in STOP_SIGNALS
    }
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _group_and_descendants(leader: int) -> list[psutil.Process]:
    """The processes of `leader`'s process group, and its descendants in other groups."""
    members: dict[int, psutil.Process] = {}
    with suppress(psutil.NoSuchProcess):
        members.update((process.pid, process) for process in psutil.Process(leader).children(recursive=True))
    for process in psutil.process_iter():
        with suppress(ProcessLookupError):
            if process.pid != leader and os.getpgid(process.pid) == leader:
                members[process.pid] = process
    return list(members.values())


def _signal(leader: int, members: list[psutil.Process], number: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(leader, number)
    for process in members:
        with suppress(psutil.NoSuchProcess):
            process.send_signal(number)


def _any_running(child: subprocess.Popen[bytes], members: list[psutil.Process]) -> bool:
    """Whether `child` or a member still runs; zombies count as ended (their parents reap them)."""
    # Checked without reaping, so the leader's pid stays reserved until `stop` waits for it.
    if (
        child.returncode is None
        and os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    ):
        return True
    for process in members:
        with suppress(psutil.NoSuchProcess):
            if process.status() != psutil.STATUS_ZOMBIE:
                return True
    return False

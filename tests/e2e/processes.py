"""Find and stop every process an embedded Airflow started, including task processes in their own groups."""

from __future__ import annotations

import os
import signal
import time

# psutil ships no type information; without types-psutil installed its names are Any.
import psutil  # type: ignore[import-untyped,unused-ignore]


def processes_of(airflow_home: str, root_pid: int | None = None) -> list[psutil.Process]:
    """
    Every live process that belongs to the Airflow running in ``airflow_home``.

    The process tree alone is not enough: the Task SDK puts each task process in a process group of its
    own, and a task process whose supervisor was killed is re-parented to init. Every one of them
    inherited ``AIRFLOW_HOME`` from ``airflow standalone``, so that variable identifies them all.
    """
    found: dict[int, psutil.Process] = {}
    if root_pid is not None:
        try:
            root = psutil.Process(root_pid)
            found[root.pid] = root
            found.update((child.pid, child) for child in root.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get("AIRFLOW_HOME") == airflow_home:
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [proc for proc in found.values() if _alive(proc)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _signal_all(procs: list[psutil.Process], sig: signal.Signals) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


def stop_all(airflow_home: str, root_pid: int, grace: float = 20.0) -> list[int]:
    """
    SIGTERM the whole ``airflow standalone`` process group and every other process of this Airflow,
    then SIGKILL whatever is still alive after ``grace`` seconds; return the pids that needed SIGKILL.

    Raise ``RuntimeError`` if any process survives SIGKILL, so a leak fails loudly instead of slowing
    the next run down.
    """
    # Signal the group first: standalone does not forward SIGTERM to its components, the group does.
    _killpg(root_pid, signal.SIGTERM)
    _signal_all(processes_of(airflow_home, root_pid), signal.SIGTERM)
    _, alive = psutil.wait_procs(processes_of(airflow_home, root_pid), timeout=grace)
    killed = [proc.pid for proc in alive]
    deadline = time.monotonic() + 10.0
    # Loop: a component that was still shutting down may have forked one more process meanwhile. From
    # here on only the environment identifies them: standalone is reaped and its pid free for reuse.
    while remaining := processes_of(airflow_home):
        if time.monotonic() >= deadline:
            raise RuntimeError(f"processes survived SIGKILL: {[proc.pid for proc in remaining]}")
        _killpg(root_pid, signal.SIGKILL)
        _signal_all(remaining, signal.SIGKILL)
        killed.extend(proc.pid for proc in remaining if proc.pid not in killed)
        psutil.wait_procs(remaining, timeout=2.0)
    return killed


def _killpg(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass

"""Find and stop every process an embedded Airflow started, including task processes in their own groups."""

from __future__ import annotations

import os
import signal
import time

import psutil


def processes_of(session_id: int, airflow_home: str) -> list[psutil.Process]:
    """
    Every live process that belongs to the Airflow started as the leader of session ``session_id``.

    The process tree is not enough: a task process whose supervisor was killed is re-parented to init.
    Nor is the process group: the Task SDK puts each task process in a group of its own. The session
    holds them all (nothing in Airflow calls ``setsid``), and the kernel does not reuse its id while a
    member lives. The environment (``AIRFLOW_HOME``) is a second, weaker sign: ``setproctitle`` may
    overwrite the memory ``/proc/<pid>/environ`` reads, so it cannot be the only one.
    """
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if os.getsid(proc.pid) == session_id or proc.environ().get("AIRFLOW_HOME") == airflow_home:
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [proc for proc in found if _alive(proc)]


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    """The live children of ``proc``, their children, and so on (empty once it has exited)."""
    try:
        return list(proc.children(recursive=True))
    except psutil.NoSuchProcess:
        return []


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


def stop_all(session_id: int, airflow_home: str, grace: float = 20.0) -> list[int]:
    """
    SIGTERM every process of this Airflow, then SIGKILL whatever is still alive after ``grace``
    seconds; return the pids that needed SIGKILL.

    Raise ``RuntimeError`` if any process survives SIGKILL, so a leak fails loudly instead of slowing
    the next run down.
    """
    # standalone does not forward SIGTERM to its components: signal each of them.
    _signal_all(processes_of(session_id, airflow_home), signal.SIGTERM)
    _, alive = psutil.wait_procs(processes_of(session_id, airflow_home), timeout=grace)
    killed = [proc.pid for proc in alive]
    deadline = time.monotonic() + 10.0
    # Loop: a component that was still shutting down may have forked one more process meanwhile.
    while remaining := processes_of(session_id, airflow_home):
        if time.monotonic() >= deadline:
            raise RuntimeError(f"processes survived SIGKILL: {[proc.pid for proc in remaining]}")
        _signal_all(remaining, signal.SIGKILL)
        killed.extend(proc.pid for proc in remaining if proc.pid not in killed)
        psutil.wait_procs(remaining, timeout=2.0)
    return killed

"""Kill a running task the way a crash would: its task process, or its whole worker (supervisor too)."""

from __future__ import annotations

import signal
from dataclasses import dataclass

import psutil

# setproctitle names the processes (``task_runner.py`` and ``executors/local_executor.py``).
TASK_PROCESS_TITLE = "airflow worker -- {ti_id}"
SUPERVISOR_TITLE = "airflow worker -- LocalExecutor"


@dataclass(frozen=True)
class KilledWorker:
    """The processes a kill took down."""

    task_pid: int
    supervisor_pid: int | None = None


def _cmdline(proc: psutil.Process) -> str:
    return " ".join(proc.cmdline())


def task_process(pid: int, ti_id: str) -> psutil.Process:
    """
    The live task process ``pid`` of task instance ``ti_id``, checked by its process title.

    The check matters: a pid read from the API may belong to a try that already ended, and after a
    restart the number may even have been reused by an unrelated process.
    """
    proc = psutil.Process(pid)
    expected = TASK_PROCESS_TITLE.format(ti_id=ti_id)
    if expected not in _cmdline(proc):
        raise AssertionError(f"pid {pid} is {_cmdline(proc)!r}, not the task process {expected!r}")
    return proc


def kill_task_process(pid: int, ti_id: str) -> KilledWorker:
    """SIGKILL the task process only; its supervisor survives and reports the task failed at once."""
    task_process(pid, ti_id).send_signal(signal.SIGKILL)
    return KilledWorker(task_pid=pid)


def kill_worker(pid: int, ti_id: str) -> KilledWorker:
    """
    SIGKILL the supervisor, then its task process, as when a whole worker machine dies.

    Nobody reports the task failed: the scheduler only notices when the task instance's heartbeat
    times out (``[scheduler] task_instance_heartbeat_timeout``).
    """
    task = task_process(pid, ti_id)
    supervisor = task.parent()
    if supervisor is None or SUPERVISOR_TITLE not in _cmdline(supervisor):
        found = "no parent" if supervisor is None else repr(_cmdline(supervisor))
        raise AssertionError(f"the parent of task process {pid} is {found}, not an Airflow supervisor")
    # The supervisor first: killed second, it could still report the task process's death.
    supervisor.send_signal(signal.SIGKILL)
    task.send_signal(signal.SIGKILL)
    return KilledWorker(task_pid=pid, supervisor_pid=supervisor.pid)

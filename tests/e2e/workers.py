"""The Celery workers of an embedded Airflow on the distributed backend: start, find, wait for, kill."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import psutil

from tests.e2e import logfiles
from tests.e2e.polling import wait_for
from tests.e2e.processes import processes_of

if TYPE_CHECKING:
    from tests.e2e.sessions import Sessions


class CeleryWorkers:
    """
    Purpose: the Celery workers of one embedded Airflow, each a session of ``sessions`` named after it.

    How it works: ``start()`` runs ``airflow celery worker`` for some queues and remembers them, so a
    test can find the worker serving a queue, kill its whole process tree as a lost machine would, and
    start a replacement for the same queues. A worker counts as ready once Celery logs that it is.

    What it does not do: choose the queues (``tests.e2e.harness.WORKERS`` does), or build the
    environment (the caller passes the Airflow's).

    Example::

        workers = CeleryWorkers(sessions)
        workers.start("worker-1", ("default",), env=env)
        workers.wait_ready("worker-1")
    """

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._queues: dict[str, tuple[str, ...]] = {}

    def start(self, name: str, queues: tuple[str, ...], *, env: dict[str, str]) -> None:
        """
        Start a Celery worker ``name`` serving ``queues``.

        :param name: the worker's name (its Celery hostname is ``<name>@<host>``).
        :param queues: the queues it serves.
        :param env: the Airflow's environment.
        """
        # The workers share this machine's AIRFLOW_HOME, where the api-server reads task logs itself: no
        # log server per worker (two would fight over its port).
        args = ["celery", "worker", "--queues", ",".join(queues), "--celery-hostname", f"{name}@%h"]
        args += ["--skip-serve-logs", "--without-mingle", "--without-gossip"]
        self.sessions.start(name, args, env=env)
        self._queues[name] = queues

    def queues_of(self, name: str) -> tuple[str, ...] | None:
        """The queues of the worker ``name``, or ``None`` if that session is no worker."""
        return self._queues.get(name)

    def running(self) -> list[str]:
        """The workers still expected to run, by name."""
        return [name for name in self._queues if name in self.sessions.running]

    def serving(self, queue: str) -> list[str]:
        """The running workers that serve ``queue``, by name."""
        return [name for name in self.running() if queue in self._queues[name]]

    def ready(self, name: str) -> bool:
        """True once the worker ``name`` has logged that it is ready (raise if any session exited)."""
        self.sessions.check_running()
        log = logfiles.read(self.sessions.log_path(name))
        return f"{name}@" in log and " ready." in log

    def wait_ready(self, name: str, timeout: float = 120.0) -> None:
        wait_for(lambda: self.ready(name), timeout, f"Celery worker {name} ready", 1.0)

    def kill(self, name: str) -> list[int]:
        """
        SIGKILL worker ``name``'s whole process tree, as a lost machine would: the worker, its pool,
        the task supervisors and the task processes. Return the pids killed.
        """
        process = self.sessions.running.pop(name)
        doomed = processes_of(process.pid, str(self.sessions.home))
        doomed = [proc for proc in doomed if os.getsid(proc.pid) == process.pid]
        for proc in doomed:
            proc.kill()
        psutil.wait_procs(doomed, timeout=10)
        return sorted(proc.pid for proc in doomed)

"""
The width bench's Airflow: PostgreSQL and the LocalExecutor, each component a process of its own.

``tests.e2e.settings.POSTGRES_LOCAL`` takes the harness's distributed path (a database of its own,
created, migrated, and dropped when the Airflow stops; each component started on its own, its output in
``<home>/<component>.log``), and this class leaves Celery out of it: the scheduler's LocalExecutor runs
the tasks on ``slots`` worker processes, so there is no worker to start and no Redis to need. Everything
else stays at Airflow's defaults (``Setup.airflow_defaults``), but what the bench reads in the
triggerer's log: the two loggers that let the shared poller's ticks through
(``bench.triggerer_log.NAMESPACE_LEVELS``), and, for the triggerer's process alone, a plugins folder
whose plugin lets httpx log each in-process request (``bench.triggerer_plugins.request_log``).
"""

from __future__ import annotations

import socket
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import psutil

from bench.cpu import sample
from bench.triggerer_log import NAMESPACE_LEVELS
from bench.triggerer_requests import logging_on
from tests.e2e import backend
from tests.e2e.harness import BENCH_DAGS_FOLDER, COMPONENTS, EmbeddedAirflow
from tests.e2e.sessions import Sessions
from tests.e2e.settings import POSTGRES_LOCAL
from tests.e2e.workers import CeleryWorkers

if TYPE_CHECKING:
    import subprocess

    from bench.cpu import TreeCpu
    from tests.e2e.settings import Distributed, Setup

# The settings the distributed path sets for Celery alone, by prefix: left out of the environment.
CELERY_PREFIXES = ("AIRFLOW__CELERY__", "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__")
# The triggerer's plugins folder: httpx logs each of its in-process requests (see the plugin).
TRIGGERER_PLUGINS = Path(__file__).resolve().parent / "triggerer_plugins"


def setup_for(slots: int) -> Setup:
    """
    The width bench's setup with ``slots`` worker slots (``[core] parallelism``).

    :param slots: the LocalExecutor's worker processes.
    """
    return replace(POSTGRES_LOCAL, name=f"{POSTGRES_LOCAL.name}-{slots}-slots", parallelism=slots)


def local_executor_env(env: dict[str, str]) -> dict[str, str]:
    """
    Return the distributed path's environment ``env`` turned to the LocalExecutor, poller ticks logged.

    :param env: what ``tests.e2e.settings.airflow_env`` built for a distributed setup.
    """
    kept = {key: value for key, value in env.items() if not key.startswith(CELERY_PREFIXES)}
    return {
        **kept,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__NAMESPACE_LEVELS": NAMESPACE_LEVELS,
    }


def triggerer_env(env: dict[str, str]) -> dict[str, str]:
    """
    Return the environment ``env`` of the other components, for the triggerer: its plugins folder added.

    :param env: what ``local_executor_env`` built.
    """
    return {**env, "AIRFLOW__CORE__PLUGINS_FOLDER": str(TRIGGERER_PLUGINS)}


class TriggererSessions(Sessions):
    """The harness's sessions, but the triggerer's process starts with ``triggerer_env``."""

    def start(self, name: str, args: list[str], *, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``airflow <args>`` as the session ``name`` (see ``Sessions.start``)."""
        return super().start(name, args, env=triggerer_env(env) if name == "triggerer" else env)


def require_postgres() -> None:
    """
    Fail at once if PostgreSQL does not answer: the LocalExecutor needs no Redis.

    :raises backend.ServerMissing: PostgreSQL is not reachable.
    """
    where = (backend.POSTGRES_HOST, backend.POSTGRES_PORT)
    try:
        with closing(socket.create_connection(where, timeout=3)):
            return
    except OSError:
        raise backend.ServerMissing(
            f"The width bench needs PostgreSQL on {where[0]}:{where[1]}; {backend.HOW_TO_START['PostgreSQL']}"
        ) from None


class PostgresLocalAirflow(EmbeddedAirflow):
    """
    An embedded Airflow on PostgreSQL with the LocalExecutor's ``slots`` slots, on the bench's Dags.

    Beyond the harness: the CPU seconds of each component (``cpu_seconds``), and the triggerer's log,
    its in-process requests in it (``logs_requests``).
    """

    def __init__(self, *, slots: int, keep_logs_in: Path) -> None:
        super().__init__(dags_folders=(BENCH_DAGS_FOLDER,), setup=setup_for(slots), keep_logs_in=keep_logs_in)
        self.slots = slots
        self._env = local_executor_env(self._env)
        # Nothing started yet: the sessions (and the Celery workers' view of them) can still be replaced.
        self.sessions = TriggererSessions(home=self.home)
        self.workers = CeleryWorkers(self.sessions)
        self._logs_requests = False

    def _start_distributed(self, distributed: Distributed) -> None:
        # The harness's own start, database handling included; only its check for Redis, which the
        # LocalExecutor does not use, gives way to one for PostgreSQL alone.
        with mock.patch.object(backend, "require_servers", require_postgres):
            super()._start_distributed(distributed)

    def start_worker(self, name: str, queues: tuple[str, ...]) -> None:
        """Start no Celery worker: the LocalExecutor runs the tasks in the scheduler's worker processes."""

    @property
    def triggerer_log(self) -> Path:
        """The triggerer's output (gone once ``stop()`` returns; ``keep_logs_in`` keeps it)."""
        return self.home / "triggerer.log"

    def logs_requests(self) -> bool:
        """Whether the triggerer's log carries its in-process requests (its plugin said so as it loaded)."""
        if not self._logs_requests and self.triggerer_log.exists():
            with self.triggerer_log.open(errors="replace") as log:
                self._logs_requests = logging_on(log)
        return self._logs_requests

    def cpu_seconds(self) -> dict[str, TreeCpu]:
        """Sample the CPU seconds of every component (see ``bench.cpu``), by component name."""
        return {name: sample(psutil.Process(self.sessions.pid(name))) for name in COMPONENTS}

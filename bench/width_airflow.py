"""
The width bench's Airflow: PostgreSQL and the LocalExecutor, each component a process of its own.

``tests.e2e.settings.POSTGRES_LOCAL`` takes the harness's distributed path (a database of its own,
created, migrated, and dropped when the Airflow stops; each component started on its own, its output in
``<home>/<component>.log``), and this class leaves Celery out of it: the scheduler's LocalExecutor runs
the tasks on ``slots`` worker processes, so there is no worker to start and no Redis to need. Everything
else stays at Airflow's defaults (``Setup.airflow_defaults``), but the two loggers that let the shared
poller's ticks into the triggerer's log (``bench.triggerer_log.NAMESPACE_LEVELS``).
"""

from __future__ import annotations

import socket
from contextlib import closing
from dataclasses import replace
from typing import TYPE_CHECKING
from unittest import mock

import psutil

from bench.cpu import sample
from bench.triggerer_log import NAMESPACE_LEVELS
from tests.e2e import backend
from tests.e2e.harness import BENCH_DAGS_FOLDER, COMPONENTS, EmbeddedAirflow
from tests.e2e.settings import POSTGRES_LOCAL

if TYPE_CHECKING:
    from pathlib import Path

    from bench.cpu import TreeCpu
    from tests.e2e.settings import Distributed, Setup

# The settings the distributed path sets for Celery alone, by prefix: left out of the environment.
CELERY_PREFIXES = ("AIRFLOW__CELERY__", "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__")


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

    Beyond the harness: the CPU seconds of each component (``cpu_seconds``), and the triggerer's log.
    """

    def __init__(self, *, slots: int, keep_logs_in: Path) -> None:
        super().__init__(dags_folders=(BENCH_DAGS_FOLDER,), setup=setup_for(slots), keep_logs_in=keep_logs_in)
        self.slots = slots
        self._env = local_executor_env(self._env)

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

    def cpu_seconds(self) -> dict[str, TreeCpu]:
        """Sample the CPU seconds of every component (see ``bench.cpu``), by component name."""
        return {name: sample(psutil.Process(self.sessions.pid(name))) for name in COMPONENTS}

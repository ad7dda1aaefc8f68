"""Settings for an embedded Airflow: isolated, quick to react, sized for the tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.e2e import backend

if TYPE_CHECKING:
    from pathlib import Path

# Short enough that a killed supervisor is noticed within seconds, long enough that a busy 2-core
# machine never misses a heartbeat by accident (the supervisor beats every MIN_HEARTBEAT_INTERVAL).
HEARTBEAT_TIMEOUT = 20
MIN_HEARTBEAT_INTERVAL = 3


@dataclass(frozen=True)
class Setup:
    """
    What differs between the Airflows the end-to-end tests start; tests that need the same one share it.

    ``parallelism`` is ``[core] parallelism``: the LocalExecutor's worker slots. ``None`` keeps Airflow's
    default (32, with its defaults of 16 active tasks and 16 active runs per Dag): the settings users
    have, so no scenario passes only because the harness gave it more room than they would.
    """

    name: str
    parallelism: int | None = None
    #: PostgreSQL and the CeleryExecutor (Redis broker) with each component a process of its own and two
    #: Celery workers, instead of ``airflow standalone`` on SQLite with the LocalExecutor.
    distributed: bool = False
    #: Leave at Airflow's defaults every setting the tests shorten to react sooner (see
    #: ``QUICK_REACTION``): the benchmark measures how soon a parent notices its child ended, and must
    #: measure it on the Airflow users run, not on one tuned for quick tests.
    airflow_defaults: bool = False
    #: Further settings of this Airflow (``AIRFLOW__SECTION__KEY``, value), applied last.
    settings: tuple[tuple[str, str], ...] = ()


# Every scenario but the narrow fan-out. The widest need is the synchronous 10-way fan-out: each waiting
# parent holds a slot while its child needs another, 20 in all, which Airflow's default 32 covers.
DEFAULT = Setup(name="default")
# Fewer slots than a fan-out's parents: a synchronous fan-out this wide stalls (every slot held by a
# waiting parent, no child can start), so only a wait that gives its slot up can finish.
NARROW = Setup(name="4-slots", parallelism=4)
# The benchmark's Airflows (python -m bench): Airflow's own defaults for how soon it reacts, with its
# default slots for the latency cases and 4 slots for the fan-out.
BENCH = Setup(name="bench", airflow_defaults=True)
BENCH_NARROW = Setup(name="bench-4-slots", parallelism=NARROW.parallelism, airflow_defaults=True)
# What users who outgrow one machine run: PostgreSQL, Celery workers that can vanish, Airflow's default
# slot settings. ``make test-distributed`` runs the scenarios on it; ``make test`` never does.
CELERY = Setup(name="celery", distributed=True)
# The width benchmark's Airflows (``python -m bench --width``): PostgreSQL, because SQLite's one writer
# lock stalls the scheduler under a burst of triggers, in a database of its own created and dropped as
# CELERY's is, each component a process of its own; ``bench.width_airflow`` runs the tasks on the
# LocalExecutor instead of Celery (no workers, no Redis). Airflow's defaults otherwise; the bench gives
# each Airflow its slots (``dataclasses.replace(POSTGRES_LOCAL, parallelism=...)``).
POSTGRES_LOCAL = Setup(name="postgres-local", distributed=True, airflow_defaults=True)
# The coordinator-fault scenarios (tests/e2e/test_faults.py): what users run, so a fault costs there what it
# costs them (a try given up waits out Airflow's 300 s heartbeat timeout, not the tests' 20 s), with our
# shared poller's start and stop lines logged, which say how many pollers a triggerer runs.
FAULTS = Setup(
    name="faults",
    airflow_defaults=True,
    # Both loggers: the triggerer re-logs its runner's lines at the runner's level (bench/triggerer_log.py).
    settings=(
        (
            "AIRFLOW__LOGGING__NAMESPACE_LEVELS",
            "standard_ext.triggers.poller=DEBUG airflow.jobs.triggerer_job_runner=DEBUG",
        ),
    ),
)
# The queue the distributed scenarios' parents run in, served by a worker of its own, so a test can kill
# the parents' worker while the children's go on.
PARENTS_QUEUE = "parents"


# A second user of the simple auth manager, beside ``admin``: what a ``cancel_on_kill`` connection signs in
# as when a test wants least privilege (tests/e2e/test_stops.py says why the role is ``USER``). The api-server
# generates its password into the same file as admin's (``EmbeddedAirflow.password_of``).
BOT_USER = "trigger-bot"
BOT_ROLE = "user"


# What the tests shorten so that Airflow reacts sooner than it would at its defaults: a lost worker
# noticed within seconds, a scheduler loop that idles half as long, and the (unchanging) Dag files
# parsed once at start rather than every 30 s. ``Setup.airflow_defaults`` leaves them all at Airflow's.
QUICK_REACTION = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": str(MIN_HEARTBEAT_INTERVAL),
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
}


@dataclass(frozen=True)
class Distributed:
    """Where a distributed Airflow keeps its state: its own database, its own Redis key prefix."""

    database: str
    key_prefix: str


@dataclass(frozen=True)
class Ports:
    """The three ports an Airflow serves on; all must differ between Airflows on one machine."""

    api: int
    worker_log: int
    trigger_log: int


def airflow_env(
    home: Path,
    dags_folder: Path,
    ports: Ports,
    venv_bin: Path,
    setup: Setup = DEFAULT,
    distributed: Distributed | None = None,
) -> dict[str, str]:
    """The environment of every component and task process (``distributed``: where its state lives)."""
    base_url = f"http://localhost:{ports.api}"
    settings = {
        "AIRFLOW_HOME": str(home),
        # standalone starts its components as plain ``airflow``, so the virtualenv must come first.
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API__PORT": str(ports.api),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.worker_log),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports.trigger_log),
        # Look for new Dag files now and then (the harness copies them in before it starts Airflow).
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "5",
        # admin keeps its role and password; the extra user is only used by the tests that ask for it.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{BOT_USER}:{BOT_ROLE}",
        # Plain text in standalone.log; colours would only make the printed tail harder to read.
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if not setup.airflow_defaults:
        settings.update(QUICK_REACTION)
    if distributed is not None:
        settings.update(distributed_settings(distributed))
    if setup.parallelism is not None:
        # The LocalExecutor runs at most ``parallelism`` tasks at once, one per worker process.
        settings["AIRFLOW__CORE__PARALLELISM"] = str(setup.parallelism)
    settings.update(dict(setup.settings))
    # Settings of an Airflow this process may itself be configured for must not leak into the test one.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    return {**inherited, **settings}


def distributed_settings(distributed: Distributed) -> dict[str, str]:
    """PostgreSQL as the metadata database and Celery's result backend, Redis as Celery's broker."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": backend.database_url(distributed.database),
        "AIRFLOW__CELERY__BROKER_URL": backend.broker_url(),
        "AIRFLOW__CELERY__RESULT_BACKEND": backend.database_url(
            distributed.database, driver="db+postgresql+psycopg2"
        ),
        # Every key this Airflow's Celery writes carries the prefix: two Airflows sharing the Redis (two
        # test runs on one machine) never take each other's tasks.
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": distributed.key_prefix,
    }

"""Start a real Airflow 3 in a throwaway AIRFLOW_HOME, wait for it, stop it fully.

On the default backend that is ``airflow standalone`` (SQLite, LocalExecutor). On the distributed one
(``Setup.distributed``) it is PostgreSQL and the CeleryExecutor, each component a process of its own
and two Celery workers the tests can kill and replace. This module puts the parts together:
``tests.e2e.sessions`` (the processes), ``tests.e2e.workers`` (the Celery workers) and
``tests.e2e.logfiles`` (the log files).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.e2e import backend, components, logfiles
from tests.e2e.client import AirflowClient
from tests.e2e.polling import wait_for
from tests.e2e.ports import free_ports
from tests.e2e.sessions import AIRFLOW, Sessions
from tests.e2e.settings import DEFAULT, PARENTS_QUEUE, Distributed, Ports, Setup, airflow_env
from tests.e2e.workers import CeleryWorkers

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from tests.e2e.client import Json

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT_ROOT / "dags"
# Dags only the end-to-end tests need (crash windows held open on purpose); never in the demo's Airflow.
E2E_DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
# The benchmark's Dags (python -m bench); the e2e Airflows load them too, for the bench's smoke test.
BENCH_DAGS_FOLDER = PROJECT_ROOT / "bench" / "dags"
STARTUP_TIMEOUT = 300.0
# The distributed backend's components, started in this order (after ``airflow db migrate``).
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Its two Celery workers: one serves the default queue (children), the other the parents' queue, so a
# test can kill the parents' worker while the children run on.
WORKERS = {"worker-1": ("default",), "worker-2": (PARENTS_QUEUE,)}


def exit_on_sigterm() -> None:
    """
    Make SIGTERM raise ``SystemExit`` in this process, so ``finally`` blocks still stop Airflow.

    By default SIGTERM ends Python without unwinding, which would leave every Airflow process running
    (they live in a session of their own). A handler someone else installed is left alone.
    """
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


class EmbeddedAirflow:
    """
    Purpose: one real Airflow (api-server, scheduler, dag-processor, triggerer; SQLite, LocalExecutor)
    for end-to-end tests and the demo, isolated from any other Airflow on the machine.

    How it works: ``start()`` picks free ports, copies the files of ``dags_folders`` into one Dags
    folder, runs ``airflow standalone`` in a new session with a temporary AIRFLOW_HOME and the settings
    of ``setup``, and polls until every component reports healthy and the dag-processor has parsed
    every Dag file. ``restart_triggerer()`` SIGKILLs the triggerer and starts a new one (standalone
    does not restart a component that died). ``stop()`` stops every process of this Airflow, found by its
    session even when re-parented or in a process group of its own (see ``tests.e2e.sessions``), and
    copies the logs to ``keep_logs_in`` before deleting the home. ``sessions`` are its processes and
    ``workers`` its Celery workers, for tests that kill or replace them.

    What it does not do: share state with another instance, or survive a restart (the database lives
    in the temporary home).

    Example::

        with EmbeddedAirflow(keep_logs_in=Path("e2e-logs/run")) as airflow:
            run = airflow.client.trigger_dag_run("example_child", {"sleep": 1})
    """

    def __init__(
        self,
        dags_folders: tuple[Path, ...] = (DAGS_FOLDER,),
        setup: Setup = DEFAULT,
        keep_logs_in: Path | None = None,
        keep_logs_on_failed_start_in: Path | None = None,
    ) -> None:
        self.setup = setup
        self.keep_logs_in = keep_logs_in
        self.keep_logs_on_failed_start_in = keep_logs_on_failed_start_in
        self.home = Path(tempfile.mkdtemp(prefix="airflow-e2e-"))
        self.dags_folder = self.home / "dags"
        _copy_dags(dags_folders, self.dags_folder)
        self.sessions = Sessions(home=self.home)
        self.workers = CeleryWorkers(self.sessions)
        self.standalone_log = self.sessions.log_path("standalone")
        self.ports = Ports(*free_ports(3))
        token = uuid.uuid4().hex[:10]
        self.distributed = (
            Distributed(database=f"airflow_e2e_{token}", key_prefix=f"airflow-e2e-{token}:")
            if setup.distributed
            else None
        )
        # Read at every start, so a subclass may change it after this constructor (bench.width_airflow).
        self._env = airflow_env(
            self.home, self.dags_folder, self.ports, Path(sys.prefix) / "bin", setup, self.distributed
        )
        self._database_created = False
        self._client: AirflowClient | None = None
        self.import_errors: list[Json] = []
        # What every component logged while starting (providers and plugins load then), before any test ran.
        self.startup_log = ""

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start Airflow and return once it is healthy and has parsed the Dags; stop it on any failure."""
        try:
            deadline = time.monotonic() + timeout
            if self.distributed is None:
                self.sessions.start("standalone", ["standalone"], env=self._env)
            else:
                self._start_distributed(self.distributed)
            wait_for(self._healthy, deadline - time.monotonic(), "all Airflow components healthy", 2.0)
            wait_for(self._parsed, max(deadline - time.monotonic(), 1.0), "every Dag file parsed", 2.0)
            self.startup_log = "\n".join(logfiles.read(path) for path in self.sessions.logs())
        except BaseException:
            print(f"Airflow did not start; log tail:\n{self.log_tail()}", flush=True)
            self.keep_logs_in = self.keep_logs_in or self.keep_logs_on_failed_start_in
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process of this Airflow (even after a failed start), keep its logs, delete its home."""
        if self._client is not None:
            self._client.close()
            self._client = None
        try:
            self.sessions.stop()
        finally:
            try:
                if self.distributed is not None and self._database_created:
                    backend.drop_database(self.distributed.database)
                    self._database_created = False
            finally:
                # Even if a process survived, the logs are what tells why: keep them before deleting the home.
                if self.keep_logs_in is not None:
                    self.save_logs(self.keep_logs_in)
                shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def restart_triggerer(self) -> list[int]:
        """
        SIGKILL the triggerer and its trigger runner, as a crash would, and start a new triggerer.

        The new one takes over the dead one's triggers once its heartbeat is older than
        ``[triggerer] triggerer_health_check_threshold``. Return the pids killed.
        """
        killed = components.kill(self, "triggerer", with_children=True)
        components.start(self, "triggerer")
        return killed.pids

    def start_component(
        self, component: str, args: list[str], *, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """
        Start one more ``airflow <args>`` (a replacement ``component``), stopped with the rest of this Airflow.

        Its output goes to ``<home>/<component>-<n>.log``, ``n`` counting the ones started so far.

        :param component: what it is (``triggerer``, ``api-server``...), for its name and log.
        :param args: the ``airflow`` command's arguments.
        :param env: settings of this process only, over the Airflow's (``AIRFLOW__SECTION__KEY``).
        """
        return self.sessions.start_replacement(component, args, env={**self._env, **(env or {})})

    # -- the distributed backend ---------------------------------------------------------------------

    def _start_distributed(self, distributed: Distributed) -> None:
        backend.require_servers()
        backend.create_database(distributed.database)
        self._database_created = True
        with (self.home / "db-migrate.log").open("wb") as log:
            migrated = subprocess.run(
                [str(AIRFLOW), "db", "migrate"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
                cwd=self.home,
                timeout=300,
                check=False,
            )
        if migrated.returncode != 0:
            tail = logfiles.tail(self.home / "db-migrate.log", 60)
            raise RuntimeError(f"airflow db migrate failed:\n{tail}")
        for name in COMPONENTS:
            self.sessions.start(name, [name], env=self._env)
        for name, queues in WORKERS.items():
            self.start_worker(name, queues)

    def start_worker(self, name: str, queues: tuple[str, ...]) -> None:
        """Start a Celery worker ``name`` serving ``queues`` on this Airflow's settings (see ``workers``)."""
        if self.distributed is None:
            raise RuntimeError("Celery workers exist on the distributed backend only")
        self.workers.start(name, queues, env=self._env)

    # -- access --------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def client(self) -> AirflowClient:
        """The REST client, logged in as admin (the password exists once standalone generated it)."""
        if self._client is None:
            self._client = self.new_client()
        return self._client

    def new_client(self) -> AirflowClient:
        """A client of its own, for a thread that should not share connections with others."""
        return AirflowClient(self.base_url, "admin", self.admin_password)

    @property
    def admin_password(self) -> str:
        """The password the simple auth manager generated for ``admin``."""
        return self.password_of("admin")

    def password_of(self, username: str) -> str:
        """
        The password the simple auth manager generated for ``username`` (a user of ``[core]
        simple_auth_manager_users``), read from ``<home>/simple_auth_manager_passwords.json.generated``.

        ``SimpleAuthManager.init()`` writes it, in the api-server as it starts (and in ``airflow
        standalone`` itself when admin is the only user).

        :raises FileNotFoundError: not written yet.
        :raises ValueError: being written (the file exists, empty or partial), or the user has none yet.
        """
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        passwords = json.loads(password_file.read_text())
        if username not in passwords:
            raise ValueError(f"no password generated for {username!r} yet")
        password: str = passwords[username]
        return password

    @property
    def api_server_log(self) -> Path:
        """
        The file the api-server's output goes to: its access log is there, one ``request finished`` line
        per request. It lives in the home, so it is gone once ``stop()`` returns (``keep_logs_in`` keeps it).
        """
        return self.standalone_log if self.distributed is None else self.sessions.log_path("api-server")

    def require_dags(self, *dag_ids: str) -> None:
        """Fail with the import errors if any of ``dag_ids`` is not loaded."""
        loaded = {dag["dag_id"] for dag in self.client.dags()}
        if missing := sorted(set(dag_ids) - loaded):
            errors = "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in self.client.import_errors())
            raise RuntimeError(f"Dags not loaded: {missing}; import errors:\n{errors or '(none)'}")

    # -- logs ----------------------------------------------------------------------------------------

    def log_tail(self, lines: int = 80) -> str:
        """The last ``lines`` of the standalone log, or of each component's log."""
        return logfiles.tails(self.sessions.logs() or [self.standalone_log], lines)

    def task_log_files(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> str:
        """Read one try's log from the files Airflow wrote (see ``tests.e2e.logfiles.task_log``)."""
        return logfiles.task_log(self.home, dag_id, run_id, task_id, try_number, map_index)

    def save_logs(self, dest: Path) -> Path:
        """Copy the standalone log and the task/component logs to ``dest`` and return it."""
        return logfiles.save(self.home, dest)

    # -- readiness -----------------------------------------------------------------------------------

    def _healthy(self) -> bool:
        self.sessions.check_running()
        try:
            health = self.client.health()
        except (httpx.TransportError, FileNotFoundError, ValueError):
            # Not listening yet, or the admin password not generated yet (or being written: the auth
            # manager creates the file, then fills it).
            return False
        names = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        healthy = all((health.get(name) or {}).get("status") == "healthy" for name in names)
        return healthy and all(self.workers.ready(name) for name in self.workers.running())

    def _parsed(self) -> bool:
        """True once every Dag file has produced either Dags or an import error."""
        self.sessions.check_running()
        dag_files = {path.name for path in self.dags_folder.glob("*.py")}
        self.import_errors = self.client.import_errors()
        seen = {Path(dag["fileloc"]).name for dag in self.client.dags()}
        seen |= {Path(error["filename"]).name for error in self.import_errors}
        return dag_files <= seen


def _copy_dags(folders: tuple[Path, ...], dest: Path) -> None:
    """One Dags folder from several: Airflow reads one, and a copy cannot change under a running test."""
    dest.mkdir()
    for folder in folders:
        for path in sorted(folder.glob("*.py")):
            if (dest / path.name).exists():
                raise ValueError(f"two Dag files named {path.name} in {folders}")
            shutil.copy2(path, dest / path.name)

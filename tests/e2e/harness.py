"""Start a real Airflow 3 in a throwaway AIRFLOW_HOME, wait for it, stop it fully.

On the default backend that is ``airflow standalone`` (SQLite, LocalExecutor). On the distributed one
(``Setup.distributed``) it is PostgreSQL and the CeleryExecutor, each component a process of its own
and two Celery workers the tests can kill and replace.
"""

from __future__ import annotations

import json
import os
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
import psutil

from tests.e2e import backend, components
from tests.e2e.client import AirflowClient
from tests.e2e.polling import wait_for
from tests.e2e.ports import free_ports
from tests.e2e.processes import processes_of, stop_all
from tests.e2e.settings import DEFAULT, PARENTS_QUEUE, Distributed, Ports, Setup, airflow_env

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
    session even when re-parented or in a process group of its own (see ``tests.e2e.processes``), and
    copies the logs to ``keep_logs_in`` before deleting the home.

    What it does not do: share state with another instance, or survive a restart (the database lives
    in the temporary home).

    Example::

        with EmbeddedAirflow(keep_logs_in=Path("e2e-logs/run")) as airflow:
            run = airflow.client.trigger_dag_run("child", {"sleep": 1})
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
        self._copy_dags(dags_folders)
        self.standalone_log = self.home / "standalone.log"
        self.ports = Ports(*free_ports(3))
        token = uuid.uuid4().hex[:10]
        self.distributed = (
            Distributed(database=f"airflow_e2e_{token}", key_prefix=f"airflow-e2e-{token}:")
            if setup.distributed
            else None
        )
        self._env = airflow_env(
            self.home, self.dags_folder, self.ports, Path(sys.prefix) / "bin", setup, self.distributed
        )
        # Every process started, each the leader of a session of its own, by name ("standalone", or the
        # distributed components and workers); a component killed on purpose leaves ``_running``.
        self._sessions: list[subprocess.Popen[bytes]] = []
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._database_created = False
        self._worker_queues: dict[str, tuple[str, ...]] = {}
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
                self._start_component("standalone", ["standalone"])
            else:
                self._start_distributed(self.distributed)
            wait_for(self._healthy, deadline - time.monotonic(), "all Airflow components healthy", 2.0)
            wait_for(self._parsed, max(deadline - time.monotonic(), 1.0), "every Dag file parsed", 2.0)
            self.startup_log = "\n".join(path.read_text(errors="replace") for path in self._component_logs())
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
            for process in self._sessions:
                # start_new_session made each the leader of a session whose id is its pid.
                stop_all(process.pid, str(self.home))
                # Reap it (it is our child); stop_all saw it exit already.
                process.wait(timeout=10)
            self._sessions, self._running = [], {}
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

    # -- the distributed backend ---------------------------------------------------------------------

    def _start_distributed(self, distributed: Distributed) -> None:
        backend.require_servers()
        backend.create_database(distributed.database)
        self._database_created = True
        with (self.home / "db-migrate.log").open("wb") as log:
            migrated = subprocess.run(
                [str(Path(sys.prefix) / "bin" / "airflow"), "db", "migrate"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
                cwd=self.home,
                timeout=300,
                check=False,
            )
        if migrated.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{self._tail(self.home / 'db-migrate.log', 60)}")
        for name in COMPONENTS:
            self._start_component(name, [name])
        for name, queues in WORKERS.items():
            self.start_worker(name, queues)

    def start_worker(self, name: str, queues: tuple[str, ...]) -> None:
        """Start a Celery worker ``name`` serving ``queues``; it counts as ready once Celery says so."""
        if self.distributed is None:
            raise RuntimeError("Celery workers exist on the distributed backend only")
        # The workers share this machine's AIRFLOW_HOME, where the api-server reads task logs itself: no
        # log server per worker (two would fight over its port).
        args = ["celery", "worker", "--queues", ",".join(queues), "--celery-hostname", f"{name}@%h"]
        self._start_component(name, [*args, "--skip-serve-logs", "--without-mingle", "--without-gossip"])
        self._worker_queues[name] = queues

    def workers_serving(self, queue: str) -> list[str]:
        """The running Celery workers that serve ``queue``, by name."""
        return [
            name for name, queues in self._worker_queues.items() if queue in queues and name in self._running
        ]

    def wait_worker_ready(self, name: str, timeout: float = 120.0) -> None:
        wait_for(lambda: self._worker_ready(name), timeout, f"Celery worker {name} ready", 1.0)

    def kill_worker(self, name: str) -> list[int]:
        """
        SIGKILL Celery worker ``name``'s whole process tree, as a lost machine would: the worker, its
        pool, the task supervisors and the task processes. Return the pids killed.
        """
        process = self._running.pop(name)
        doomed = processes_of(process.pid, str(self.home))
        doomed = [proc for proc in doomed if os.getsid(proc.pid) == process.pid]
        for proc in doomed:
            proc.kill()
        psutil.wait_procs(doomed, timeout=10)
        return sorted(proc.pid for proc in doomed)

    def _worker_ready(self, name: str) -> bool:
        self.check_running()
        return f"{name}@" in (log := self._read(self.home / f"{name}.log")) and " ready." in log

    # -- processes -----------------------------------------------------------------------------------

    def _start_component(self, name: str, args: list[str]) -> None:
        """Start ``airflow <args>`` as the leader of a new session, its output in ``<home>/<name>.log``."""
        log_path = self.standalone_log if name == "standalone" else self.home / f"{name}.log"
        process = self._spawn(args, log_path)
        self._sessions.append(process)
        self._running[name] = process

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
        # Counted from the logs: a killed replacement leaves its log behind, and the next must not overwrite it.
        name = f"{component}-{len(list(self.home.glob(f'{component}-*.log'))) + 2}"
        process = self._spawn(args, self.home / f"{name}.log", env=env)
        self._sessions.append(process)
        self._running[name] = process
        return process

    def component_log(self, pid: int) -> str:
        """The log of the replacement component whose process is ``pid`` (see ``start_component``)."""
        for name, process in self._running.items():
            if process.pid == pid:
                return self._read(self.home / f"{name}.log")
        raise KeyError(f"no running component with pid {pid}")

    def exited(self) -> dict[str, tuple[str, ...] | None]:
        """
        The components and workers whose process has exited, forgotten here: a test replaces them.

        :returns: by name, a worker's queues, or ``None`` for a component.
        """
        gone = {name: process for name, process in self._running.items() if process.poll() is not None}
        for name in gone:
            del self._running[name]
        return {name: self._worker_queues.get(name) for name in gone}

    def forget_component(self, pid: int) -> None:
        """Stop checking that the session leader ``pid`` runs: a test killed it on purpose."""
        for name, process in list(self._running.items()):
            if process.pid == pid:
                del self._running[name]

    def processes(self) -> list[psutil.Process]:
        """Every live process of this Airflow, each session's, replacements' included."""
        # Each session's search also finds the others' processes by AIRFLOW_HOME: one entry per pid.
        found = {
            proc.pid: proc for session in self._sessions for proc in processes_of(session.pid, str(self.home))
        }
        return list(found.values())

    def _component_logs(self) -> list[Path]:
        return [
            self.standalone_log if name == "standalone" else self.home / f"{name}.log"
            for name in self._running
        ]

    def _spawn(
        self, args: list[str], log_path: Path, *, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``airflow <args>`` as the leader of a new session, its output in ``log_path``."""
        with log_path.open("wb") as log:
            return subprocess.Popen(
                [str(Path(sys.prefix) / "bin" / "airflow"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self._env, **(env or {})},
                cwd=self.home,
                start_new_session=True,
            )

    def _copy_dags(self, folders: tuple[Path, ...]) -> None:
        """One Dags folder from several: Airflow reads one, and a copy cannot change under a running test."""
        self.dags_folder.mkdir()
        for folder in folders:
            for path in sorted(folder.glob("*.py")):
                if (self.dags_folder / path.name).exists():
                    raise ValueError(f"two Dag files named {path.name} in {folders}")
                shutil.copy2(path, self.dags_folder / path.name)

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
        """The password ``airflow standalone``'s simple auth manager generated for ``admin``."""
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        password: str = json.loads(password_file.read_text())["admin"]
        return password

    @property
    def api_server_log(self) -> Path:
        """
        The file the api-server's output goes to: its access log is there, one ``request finished`` line
        per request. It lives in the home, so it is gone once ``stop()`` returns (``keep_logs_in`` keeps it).
        """
        return self.standalone_log if self.distributed is None else self.home / "api-server.log"

    def pids(self) -> list[int]:
        """Pids of every live process of this Airflow (for leak checks)."""
        return sorted({proc.pid for proc in self.processes()})

    def require_dags(self, *dag_ids: str) -> None:
        """Fail with the import errors if any of ``dag_ids`` is not loaded."""
        loaded = {dag["dag_id"] for dag in self.client.dags()}
        if missing := sorted(set(dag_ids) - loaded):
            errors = "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in self.client.import_errors())
            raise RuntimeError(f"Dags not loaded: {missing}; import errors:\n{errors or '(none)'}")

    def log_tail(self, lines: int = 80) -> str:
        """The last ``lines`` of the standalone log, or of each component's log."""
        logs = self._component_logs() or [self.standalone_log]
        if len(logs) == 1:
            return self._tail(logs[0], lines)
        return "\n".join(
            f"----- {path.name}\n{self._tail(path, max(lines // len(logs), 10))}" for path in logs
        )

    @staticmethod
    def _tail(path: Path, lines: int) -> str:
        return "\n".join(EmbeddedAirflow._read(path).splitlines()[-lines:]) or f"(no {path.name})"

    @staticmethod
    def _read(path: Path) -> str:
        return path.read_text(errors="replace") if path.exists() else ""

    def task_log_files(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> str:
        """
        Read one try's log from the files Airflow wrote: the try's own and its trigger's, if any.

        The REST API serves a try's log through the try's history row; a test reads the files only when
        Airflow has lost that row (see ``test_fan_out_narrow``), never instead of the API.
        """
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        files = sorted(folder.glob(f"attempt={try_number}.log*"))
        return "\n".join(path.read_text(errors="replace") for path in files)

    def save_logs(self, dest: Path) -> Path:
        """Copy the standalone log and the task/component logs to ``dest`` and return it."""
        dest.mkdir(parents=True, exist_ok=True)
        for log in self.home.glob("*.log"):
            shutil.copy2(log, dest / log.name)
        if (self.home / "logs").exists():
            shutil.copytree(self.home / "logs", dest / "logs", dirs_exist_ok=True)
        return dest

    # -- readiness -----------------------------------------------------------------------------------

    def check_running(self) -> None:
        for name, process in self._running.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {process.returncode}; log tail:\n{self.log_tail()}"
                )

    def _healthy(self) -> bool:
        self.check_running()
        try:
            health = self.client.health()
        except (httpx.TransportError, FileNotFoundError):
            # Not listening yet, or the admin password not generated yet.
            return False
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        healthy = all((health.get(name) or {}).get("status") == "healthy" for name in components)
        return healthy and all(
            self._worker_ready(name) for name in self._running if name in self._worker_queues
        )

    def _parsed(self) -> bool:
        """True once every Dag file has produced either Dags or an import error."""
        self.check_running()
        dag_files = {path.name for path in self.dags_folder.glob("*.py")}
        self.import_errors = self.client.import_errors()
        seen = {Path(dag["fileloc"]).name for dag in self.client.dags()}
        seen |= {Path(error["filename"]).name for error in self.import_errors}
        return dag_files <= seen

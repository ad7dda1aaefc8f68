"""Start a real Airflow 3 (``airflow standalone``) in a throwaway AIRFLOW_HOME, wait for it, stop it fully."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil

from tests.e2e.client import AirflowClient
from tests.e2e.polling import wait_for
from tests.e2e.ports import free_ports
from tests.e2e.processes import descendants, processes_of, stop_all
from tests.e2e.settings import DEFAULT, Ports, Setup, airflow_env

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from tests.e2e.client import Json

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT_ROOT / "dags"
# Dags only the end-to-end tests need (crash windows held open on purpose); never in the demo's Airflow.
E2E_DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
STARTUP_TIMEOUT = 300.0


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
        self._env = airflow_env(self.home, self.dags_folder, self.ports, Path(sys.prefix) / "bin", setup)
        self._process: subprocess.Popen[bytes] | None = None
        # Components started by the harness itself (a restarted triggerer), each the leader of its session.
        self._restarted: list[subprocess.Popen[bytes]] = []
        self._client: AirflowClient | None = None
        self.import_errors: list[Json] = []
        # What every component logged while starting (providers and plugins load then), before any test ran.
        self.startup_log = ""

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start Airflow and return once it is healthy and has parsed the Dags; stop it on any failure."""
        self._process = self._spawn("standalone", self.standalone_log)
        try:
            deadline = time.monotonic() + timeout
            wait_for(self._healthy, deadline - time.monotonic(), "all Airflow components healthy", 2.0)
            wait_for(self._parsed, max(deadline - time.monotonic(), 1.0), "every Dag file parsed", 2.0)
            self.startup_log = self.standalone_log.read_text(errors="replace")
        except BaseException:
            print(f"Airflow did not start; standalone log tail:\n{self.log_tail()}", flush=True)
            self.keep_logs_in = self.keep_logs_in or self.keep_logs_on_failed_start_in
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process of this Airflow (even after a failed start), keep its logs, delete its home."""
        if self._client is not None:
            self._client.close()
            self._client = None
        try:
            for process in [*self._restarted, *([self._process] if self._process else [])]:
                # start_new_session made each the leader of a session whose id is its pid.
                stop_all(process.pid, str(self.home))
                # Reap it (it is our child); stop_all saw it exit already.
                process.wait(timeout=10)
            self._restarted = []
            self._process = None
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
        if self._process is None:
            raise RuntimeError("Airflow is not running")
        sessions = [self._process.pid, *(p.pid for p in self._restarted)]
        triggerers = [
            proc
            for session in sessions
            for proc in processes_of(session, str(self.home))
            if "triggerer" in " ".join(proc.cmdline())
        ]
        if not triggerers:
            raise RuntimeError(f"no triggerer process found; log tail:\n{self.log_tail()}")
        doomed = {proc.pid: proc for top in triggerers for proc in [top, *descendants(top)]}
        for proc in doomed.values():
            proc.kill()
        psutil.wait_procs(list(doomed.values()), timeout=10)
        log = self.home / f"triggerer-{len(self._restarted) + 2}.log"
        self._restarted.append(self._spawn("triggerer", log))
        return sorted(doomed)

    def _spawn(self, command: str, log_path: Path) -> subprocess.Popen[bytes]:
        """Start ``airflow <command>`` as the leader of a new session, its output in ``log_path``."""
        with log_path.open("wb") as log:
            return subprocess.Popen(
                [str(Path(sys.prefix) / "bin" / "airflow"), command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
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
        password_file = self.home / "simple_auth_manager_passwords.json.generated"
        password = json.loads(password_file.read_text())["admin"]
        return AirflowClient(self.base_url, "admin", password)

    def pids(self) -> list[int]:
        """Pids of every live process of this Airflow (for leak checks)."""
        if self._process is None:
            return []
        return [proc.pid for proc in processes_of(self._process.pid, str(self.home))]

    def require_dags(self, *dag_ids: str) -> None:
        """Fail with the import errors if any of ``dag_ids`` is not loaded."""
        loaded = {dag["dag_id"] for dag in self.client.dags()}
        if missing := sorted(set(dag_ids) - loaded):
            errors = "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in self.client.import_errors())
            raise RuntimeError(f"Dags not loaded: {missing}; import errors:\n{errors or '(none)'}")

    def log_tail(self, lines: int = 80) -> str:
        if not self.standalone_log.exists():
            return "(no standalone log)"
        return "\n".join(self.standalone_log.read_text(errors="replace").splitlines()[-lines:])

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
        if self.standalone_log.exists():
            shutil.copy2(self.standalone_log, dest / "standalone.log")
        for log in self.home.glob("triggerer-*.log"):
            shutil.copy2(log, dest / log.name)
        if (self.home / "logs").exists():
            shutil.copytree(self.home / "logs", dest / "logs", dirs_exist_ok=True)
        return dest

    # -- readiness -----------------------------------------------------------------------------------

    def _check_running(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(
                f"airflow standalone exited with {self._process.returncode}; log tail:\n{self.log_tail()}"
            )

    def _healthy(self) -> bool:
        self._check_running()
        try:
            health = self.client.health()
        except (httpx.TransportError, FileNotFoundError):
            # Not listening yet, or the admin password not generated yet.
            return False
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(name) or {}).get("status") == "healthy" for name in components)

    def _parsed(self) -> bool:
        """True once every Dag file has produced either Dags or an import error."""
        self._check_running()
        dag_files = {path.name for path in self.dags_folder.glob("*.py")}
        self.import_errors = self.client.import_errors()
        seen = {Path(dag["fileloc"]).name for dag in self.client.dags()}
        seen |= {Path(error["filename"]).name for error in self.import_errors}
        return dag_files <= seen

"""The ``airflow`` processes one embedded Airflow started, each the leader of a session of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e import logfiles
from tests.e2e.processes import processes_of, stop_all

if TYPE_CHECKING:
    import psutil

# The virtualenv's own ``airflow``, whatever ``PATH`` says.
AIRFLOW = Path(sys.prefix) / "bin" / "airflow"


class Sessions:
    """
    Purpose: start, track and stop the ``airflow`` commands of one embedded Airflow, and name their logs.

    How it works: each command runs as the leader of a new session, its output in ``<home>/<name>.log``
    (``standalone.log`` for ``airflow standalone``). A session's id is its leader's pid, and every
    process Airflow forks stays in it (see ``tests.e2e.processes``), so ``stop()`` finds them all, even
    re-parented task processes. ``running`` holds the sessions still expected to run: one a test
    killed on purpose is forgotten there but still stopped by ``stop()``.

    What it does not do: build the environment (the caller passes it on every start), or restart
    anything that exits.

    Example::

        sessions = Sessions(home=home)
        sessions.start("scheduler", ["scheduler"], env=env)
        sessions.check_running()
        sessions.stop()
    """

    def __init__(self, *, home: Path, command: Path = AIRFLOW) -> None:
        """
        :param home: the Airflow's home, where the logs go and the commands run.
        :param command: the program each session runs (tests of this class run a shell instead).
        """
        self.home = home
        self.command = command
        # Every session started, in order; those expected to be running, by name.
        self._all: list[subprocess.Popen[bytes]] = []
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, name: str) -> Path:
        """Where the session ``name`` writes its output."""
        return self.home / ("standalone.log" if name == "standalone" else f"{name}.log")

    def start(self, name: str, args: list[str], *, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """
        Start ``airflow <args>`` as the session ``name``, its output in :meth:`log_path`.

        :param name: the session's name (``standalone``, a component, a Celery worker).
        :param args: the ``airflow`` command's arguments.
        :param env: the whole environment of the process.
        """
        with self.log_path(name).open("wb") as log:
            process = subprocess.Popen(
                [str(self.command), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.home,
                start_new_session=True,
            )
        self._all.append(process)
        self.running[name] = process
        return process

    def start_replacement(
        self, component: str, args: list[str], *, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """
        Start one more ``component`` (``<component>-<n>``, ``n`` counting the ones started so far).

        :param component: what it is (``triggerer``, ``api-server``...), for its name and log.
        :param args: the ``airflow`` command's arguments.
        :param env: the whole environment of the process.
        """
        # Counted from the logs: a killed replacement leaves its log behind, and the next must not overwrite it.
        return self.start(f"{component}-{len(list(self.home.glob(f'{component}-*.log'))) + 2}", args, env=env)

    def pid(self, name: str) -> int:
        """The pid of the running session ``name``'s leader."""
        return self.running[name].pid

    def log_of(self, pid: int) -> str:
        """The log of the running session whose leader is ``pid``."""
        for name, process in self.running.items():
            if process.pid == pid:
                return logfiles.read(self.log_path(name))
        raise KeyError(f"no running component with pid {pid}")

    def logs(self) -> list[Path]:
        """The logs of the running sessions (none before the start, or after the stop)."""
        return [self.log_path(name) for name in self.running]

    def exited(self) -> list[str]:
        """The sessions whose leader has exited, by name, forgotten here: a test replaces them."""
        gone = [name for name, process in self.running.items() if process.poll() is not None]
        for name in gone:
            del self.running[name]
        return gone

    def forget(self, pid: int) -> None:
        """Stop checking that the session leader ``pid`` runs: a test killed it on purpose."""
        for name, process in list(self.running.items()):
            if process.pid == pid:
                del self.running[name]

    def check_running(self) -> None:
        """
        Raise if a session expected to run has exited, with the tail of the logs.

        :raises RuntimeError: a session leader has exited.
        """
        for name, process in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {process.returncode}; log tail:\n"
                    f"{logfiles.tails(self.logs(), 80)}"
                )

    def processes(self) -> list[psutil.Process]:
        """Every live process of these sessions, replacements' and killed ones' included."""
        # Each session's search also finds the others' processes by AIRFLOW_HOME: one entry per pid.
        found = {
            proc.pid: proc for session in self._all for proc in processes_of(session.pid, str(self.home))
        }
        return list(found.values())

    def pids(self) -> list[int]:
        """Pids of every live process of these sessions (for leak checks)."""
        return sorted({proc.pid for proc in self.processes()})

    def stop(self) -> None:
        """Stop every process of every session (SIGTERM, then SIGKILL) and reap the leaders."""
        for process in self._all:
            # start_new_session made each the leader of a session whose id is its pid.
            stop_all(process.pid, str(self.home))
            # Reap it (it is our child); stop_all saw it exit already.
            process.wait(timeout=10)
        self._all, self.running = [], {}

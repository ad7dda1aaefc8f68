"""
Faults of an embedded Airflow's coordinator: SIGKILL one of its components, start a replacement.

``airflow standalone`` never restarts a component that died, and on the distributed backend each component
is a process of its own, so a test kills one as a crash would and starts a new one with the same settings
(the same ``AIRFLOW_HOME``, so the same ``airflow.cfg``: the same JWT secret, ports and database). Each
replacement is the leader of a session of its own, registered with the harness, which stops it with the
rest of that Airflow, even when the test fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import psutil

from tests.e2e.polling import wait_for
from tests.e2e.processes import descendants

if TYPE_CHECKING:
    from tests.e2e.harness import EmbeddedAirflow

# How each component's process names itself on its command line: the api-server rewrites its title to
# ``airflow api_server -- host:... port:...``; the others keep ``airflow <name>``. The LocalExecutor's
# workers call themselves ``airflow worker -- LocalExecutor...``, never ``airflow scheduler``.
MARKERS = {
    "api-server": ("api_server", "api-server"),
    "scheduler": ("airflow scheduler",),
    "triggerer": ("airflow triggerer",),
    "dag-processor": ("airflow dag-processor",),
}


@dataclass(frozen=True)
class Killed:
    """What one SIGKILL took down, and when (``time.monotonic()``)."""

    component: str
    pids: list[int]
    at: float


def component_processes(airflow: EmbeddedAirflow, component: str) -> list[psutil.Process]:
    """
    The live top processes of ``component`` in ``airflow`` (one per running instance of it).

    :param airflow: the embedded Airflow.
    :param component: a key of :data:`MARKERS`.
    """
    markers = MARKERS[component]
    found = []
    for proc in airflow.sessions.processes():
        try:
            cmdline = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if any(marker in cmdline for marker in markers):
            found.append(proc)
    # A component's own children (the triggerer's runner) carry its name too: keep only the tops.
    tops = {proc.pid for proc in found}
    return [proc for proc in found if not _parent_in(proc, tops)]


def _parent_in(proc: psutil.Process, pids: set[int]) -> bool:
    try:
        return any(parent.pid in pids for parent in proc.parents())
    except psutil.NoSuchProcess:
        return False


def kill(airflow: EmbeddedAirflow, component: str, *, with_children: bool, pid: int | None = None) -> Killed:
    """
    SIGKILL ``component`` as a crash would; return what was killed.

    :param airflow: the embedded Airflow.
    :param component: a key of :data:`MARKERS`.
    :param with_children: also kill what it forked (the triggerer's trigger runner: a machine lost);
        without, only its own process dies, as when the kernel's OOM killer picks it, and what it forked
        lives on (the scheduler's LocalExecutor workers and the tasks they supervise).
    :param pid: which instance, when more than one runs (two triggerers); else the only one.
    :raises RuntimeError: no such process, or more than one and ``pid`` not given.
    """
    running = component_processes(airflow, component)
    if pid is not None:
        running = [proc for proc in running if proc.pid == pid]
    if len(running) != 1:
        raise RuntimeError(
            f"expected one {component} process{'' if pid is None else f' with pid {pid}'}, found "
            f"{[proc.pid for proc in running]}; log tail:\n{airflow.log_tail()}"
        )
    top = running[0]
    doomed = [top, *descendants(top)] if with_children else [top]
    for proc in doomed:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    at = time.monotonic()
    psutil.wait_procs(doomed, timeout=10)
    airflow.sessions.forget(top.pid)
    return Killed(component=component, pids=sorted(proc.pid for proc in doomed), at=at)


def start(airflow: EmbeddedAirflow, component: str, *, env: dict[str, str] | None = None) -> psutil.Process:
    """
    Start a new ``component`` on ``airflow``'s settings (``env`` on top); return its process.

    An api-server is waited for until it answers on the Airflow's port (the tasks' execution-API URL), so
    a test's REST calls after this return do not race its start.

    :param airflow: the embedded Airflow.
    :param component: a key of :data:`MARKERS`.
    :param env: settings of this replacement only (``AIRFLOW__SECTION__KEY``).
    """
    process = airflow.start_component(component, [component], env=env)
    if component == "api-server":
        wait_for(lambda: _answers(airflow), 120.0, "the new api-server to answer", 0.5)
    return psutil.Process(process.pid)


def _answers(airflow: EmbeddedAirflow) -> bool:
    airflow.sessions.check_running()
    try:
        return httpx.get(f"{airflow.base_url}/api/v2/monitor/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def replace_exited(airflow: EmbeddedAirflow) -> list[str]:
    """
    Start a replacement for every component and worker of ``airflow`` that has exited; return their names.

    What a process supervisor (systemd's ``Restart=``, a Kubernetes Deployment) does for users: a
    component that exits on a fault it cannot ride out is started again, and the fault's cost includes
    that restart.

    :param airflow: the embedded Airflow (distributed: each component a session of its own).
    """
    replaced = []
    for name in airflow.sessions.exited():
        if (queues := airflow.workers.queues_of(name)) is not None:
            new = f"{name}-after-exit"
            airflow.start_worker(new, queues)
            airflow.workers.wait_ready(new)
        else:
            start(airflow, component_of(name))
        replaced.append(name)
    return replaced


def component_of(name: str) -> str:
    """The component a session was started as: ``api-server-2`` and ``api-server`` are both ``api-server``."""
    return next(component for component in MARKERS if name == component or name.startswith(f"{component}-"))

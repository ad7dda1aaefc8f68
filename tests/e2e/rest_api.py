"""A second api-server of an embedded Airflow serving the REST API only, for an outage of that API alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from tests.e2e import components
from tests.e2e.polling import wait_for
from tests.e2e.ports import free_ports

if TYPE_CHECKING:
    from tests.e2e.harness import EmbeddedAirflow


class RestOnlyApiServer:
    """
    Purpose: take the public REST API down (what a ``cancel_on_kill`` connection signs in to) while the
    execution API, which every task's supervisor needs to run it at all, stays up; as in a deployment
    that serves them from separate api-servers (``airflow api-server --apps core`` and ``--apps
    execution``).

    How it works: ``start()`` runs ``airflow api-server --apps core --port <port>`` on the Airflow's
    settings (its JWT secret and auth manager's passwords, so the same users sign in) as a component
    of that Airflow, stopped with it whatever happens, and waits until it answers. ``kill()`` SIGKILLs
    it as a crash would; ``stop()`` kills it if it runs. The port stays the same across restarts.

    What it does not do: serve the execution API or the UI's assets; replace the Airflow's own
    api-server, which keeps serving both.

    Example::

        rest = RestOnlyApiServer(airflow)
        rest.start()
        try:
            connection_host = rest.url
        finally:
            rest.stop()
    """

    def __init__(self, airflow: EmbeddedAirflow) -> None:
        self.airflow = airflow
        self.port = free_ports(1)[0]
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        """Start it and return once it answers (its health endpoint is part of the REST API)."""
        args = ["api-server", "--apps", "core", "--host", "127.0.0.1", "--port", str(self.port)]
        self.pid = self.airflow.start_component("api-server", args).pid
        wait_for(self._answers, timeout, f"the REST-only api-server on port {self.port} to answer", 0.5)

    def kill(self) -> components.Killed:
        """SIGKILL it (and the workers it forked), as a crash would."""
        if self.pid is None:
            raise RuntimeError("the REST-only api-server is not running")
        killed = components.kill(self.airflow, "api-server", with_children=True, pid=self.pid)
        self.pid = None
        return killed

    def stop(self) -> None:
        """Kill it if it runs; it must not outlive the test (another test may kill "the" api-server)."""
        if self.pid is not None and any(
            proc.pid == self.pid for proc in components.component_processes(self.airflow, "api-server")
        ):
            self.kill()
        self.pid = None

    def _answers(self) -> bool:
        self.airflow.sessions.check_running()
        try:
            return httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

"""
Faults of the coordinator on the distributed setup (PostgreSQL, Redis, CeleryExecutor).

As on the default setup (``test_faults.py``), a durable parent on each path waits on a 30 s child through
one fault: the api-server killed and replaced 30 s later; every connection to the Airflow's PostgreSQL
database ended, as a database restart or failover ends them; the machine's Redis shut down without saving
and started again 10 s later, losing every message it held. A component that exits on a fault is started
again, as the process supervisor users run Airflow under does, and the test says which did. Run by
``make test-distributed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e import backend
from tests.e2e.faults import component_outage, outage, replacing_what_exits, survives
from tests.e2e.settings import CELERY

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.harness import EmbeddedAirflow
    from tests.e2e.scenario import Scenario

pytestmark = pytest.mark.airflow_setup(CELERY)

CHILD_SLEEP = 30.0


@pytest.mark.timeout(900, method="signal")
def test_the_api_server_killed_and_replaced_30s_later_on_celery(
    airflow: EmbeddedAirflow, scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    fault = component_outage(airflow, scenario, "api-server", seconds=30.0)

    survives(
        scenario, fault, name="celery_api_server", record_property=record_property, child_sleep=CHILD_SLEEP
    )


@pytest.mark.timeout(900, method="signal")
def test_every_database_connection_ended_mid_wait(
    airflow: EmbeddedAirflow, scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    assert airflow.distributed is not None
    database = airflow.distributed.database
    replaced: list[str] = []

    def fault() -> None:
        ended = backend.terminate_connections(database)
        scenario.note(f"ended {ended} connections to {database}")
        assert ended > 0
        # Give a component that cannot ride the fault out the time to exit, then replace it.
        outage(scenario, 10.0, "the database connections")
        replacing_what_exits(airflow, scenario, replaced)

    survives(
        scenario, fault, name="database_connections", record_property=record_property, child_sleep=CHILD_SLEEP
    )
    record_property("database_connections_replaced", ",".join(replaced) or "none")


@pytest.mark.timeout(900, method="signal")
def test_redis_restarted_mid_wait(
    airflow: EmbeddedAirflow, scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    replaced: list[str] = []

    def fault() -> None:
        with backend.redis_stopped():
            outage(scenario, 10.0, "Redis")
        scenario.note("Redis answers again, empty")
        replacing_what_exits(airflow, scenario, replaced)

    survives(scenario, fault, name="redis", record_property=record_property, child_sleep=CHILD_SLEEP)
    record_property("redis_replaced", ",".join(replaced) or "none")

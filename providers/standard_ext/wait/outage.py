"""Checks that fail for the server's sake: ride out an outage of the API server instead of failing the try."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from task_sdk_ext.api_errors import is_transient

if TYPE_CHECKING:
    from airflow.sdk.exceptions import AirflowRuntimeError
    from structlog.typing import FilteringBoundLogger

#: How long checks may fail in a row for a server error before the wait fails the try: Airflow's default
#: [scheduler] task_instance_heartbeat_timeout, past which it gives a silent task up in any case.
OUTAGE_SECONDS = 300.0
# While checks fail, how soon the next is made at most: the outage's end is seen within seconds.
OUTAGE_STEP_SECONDS = 5.0


@dataclass
class Outage:
    """
    The checks of one wait that failed in a row because the API server (or its database) did not answer.

    The supervisor's client has retried each for seconds before it reached the task. The run is where it
    was, so the wait asks again rather than fail a try a retry would only reconnect; a long outage ends
    otherwise (the supervisor kills a task whose heartbeats fail; past :data:`OUTAGE_SECONDS` the wait
    gives up here).

    :param dag_id: the child Dag, for the log.
    :param run_id: the child run, for the log.
    :param log: where the outage's start and end are logged.
    """

    dag_id: str
    run_id: str
    log: FilteringBoundLogger
    since: float | None = None

    def failed(self, error: AirflowRuntimeError, *, elapsed: float) -> None:
        """
        Note a failed check at ``elapsed`` seconds into the wait, or raise ``error`` if it is not to be ridden.

        :raises AirflowRuntimeError: the error is not the server's, or checks have failed for too long.
        """
        if not is_transient(error):
            raise error
        self.since = elapsed if self.since is None else self.since
        if elapsed - self.since >= OUTAGE_SECONDS:
            raise error
        self.log.warning(
            "Could not check the Dag run; checking again",
            dag_id=self.dag_id,
            run_id=self.run_id,
            error=str(error),
            failing_for=elapsed - self.since,
        )

    def checked(self) -> None:
        """Note a check that succeeded: an outage, if there was one, is over."""
        if self.since is not None:
            self.log.info("Checking the Dag run again", dag_id=self.dag_id, run_id=self.run_id)
            self.since = None

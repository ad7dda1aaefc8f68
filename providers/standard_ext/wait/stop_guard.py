"""After ``on_kill``, a try starts nothing: no trigger is sent and no new run id is saved."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:
    from standard_ext.wait.stopped import StopNote

#: What ``on_kill`` sets ``stopped_by`` to: the SIGTERM does not say why it came.
STOPPED_BY_ON_KILL = "on_kill was called"


class TaskStopped(AirflowException):
    """
    Raised instead of a trigger (or a write-ahead) once ``on_kill`` ran in this process.

    An ``AirflowException``, so the task's retries apply should the server still count this try: a
    durable retry then carries on with what was saved, as after a crash.
    """


class Stoppable(Protocol):
    """What :func:`refuse_if_stopped` reads of an operator: both trigger operators have it."""

    @property
    def task_id(self) -> str:
        """The task, named in the error."""

    @property
    def stopped_by(self) -> str | None:
        """Set by ``on_kill``: why this try was stopped; ``None`` while it was not."""

    @property
    def stop_note(self) -> StopNote | None:
        """The durable record's stop note, once the try holds a record."""


def refuse_if_stopped(operator: Stoppable, *, action: str, **ids: Any) -> None:
    """
    Raise :class:`TaskStopped` if ``on_kill`` ran: nothing may start after a stop.

    **Why:** the task runner's SIGTERM handler only calls ``on_kill()`` and returns, so the task goes on
    until the SIGKILL 5 s later; and the supervisor serves its requests meanwhile, ``TriggerDagRun``
    included (the execution API's trigger route does not look at the caller's state). A fan-out would
    go on starting items for those seconds, runs nobody waits on, and the try after a clear would
    start them again. So every trigger and every write-ahead of a new run id asks here first.

    :param operator: the task's operator.
    :param action: what was about to happen, for the message (``"trigger"``, ``"save run ids"``).
    :param ids: the Dag and run(s) concerned, for the message.
    :raises TaskStopped: ``on_kill`` ran in this process.
    """
    if operator.stopped_by is None:
        return
    if operator.stop_note is not None and operator.stop_note.pending:
        # Out of the signal handler now: the stop can be looked into and noted for the next try.
        operator.stop_note.note()
    named = ", ".join(f"{key}={value!r}" for key, value in ids.items())
    raise TaskStopped(
        f"Task {operator.task_id!r} was stopped ({operator.stopped_by}); not going on to {action}"
        + (f" ({named})" if named else "")
    )

"""The logical dates of a fan-out's children: the stock operator's default (now), one distinct date per item."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow.sdk import timezone
from airflow.sdk.definitions._internal.types import NOTSET, ArgNotSet

if TYPE_CHECKING:
    from collections.abc import Callable


def check_logical_date(value: object, *, task_id: str) -> datetime | None | ArgNotSet:
    """
    Return the rendered ``logical_date`` parsed: ``NOTSET`` (now, as stock), ``None`` (none), or a date.

    :param value: the rendered parameter: ``NOTSET``, ``None``, an ISO 8601 text or a datetime.
    :param task_id: the task, named in the error.
    :raises ValueError: naming the task and the parameter, before anything is sent.
    """
    if value is None or isinstance(value, ArgNotSet):
        return value
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = timezone.parse(value)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"Task {task_id!r}, parameter logical_date: cannot read {value!r} as a date: {e}"
            ) from None
    else:
        raise ValueError(
            f"Task {task_id!r}, parameter logical_date: a date, an ISO 8601 text or None, got {type(value).__name__}"
        )
    # A naive one in Airflow's default time zone, as the execution API's route reads it.
    return timezone.coerce_datetime(parsed)


def item_dates(
    logical_date: datetime | None | ArgNotSet,
    *,
    indexes: list[int],
    now: Callable[[], datetime] = timezone.utcnow,
) -> dict[int, datetime | None]:
    """
    Return each item's logical date: the base (``logical_date``, or now) plus the item's index in microseconds.

    **Why one per item:** Airflow keeps one run per Dag and logical date (``dag_run_dag_id_logical_date_key``),
    so items started together cannot share one; a microsecond apart they render the same ``{{ ds }}`` as
    the stock operator's children, each of which takes ``utcnow()`` when it triggers. Now is read once
    per call, that is once per batch of items started together.

    :param logical_date: as :func:`check_logical_date` returns it.
    :param indexes: the items about to start.
    :param now: the clock, for the default.
    """
    if logical_date is None:
        return dict.fromkeys(indexes)
    base = now() if logical_date is NOTSET else logical_date
    assert isinstance(base, datetime)
    return {index: base + timedelta(microseconds=index) for index in indexes}

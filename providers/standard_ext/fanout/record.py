"""The fan-out's durable record: every planned run id, saved in ``task_state_store`` before any trigger."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from standard_ext.durable.decision import ENDED_STOPPED, ENDED_SUCCESS

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

#: Renaming this on a deployed operator breaks in-flight retries: the old key is already stored.
RECORD_KEY = "triggered_dag_runs"
# Generating a run id that is already planned is all but impossible (8 random characters); a few tries
# more cover it, and a generator that keeps repeating itself is a fault worth an error.
_GENERATION_ATTEMPTS = 10


@dataclass(frozen=True)
class FanOutRecord:
    """
    What a durable fan-out keeps under :data:`RECORD_KEY`: one record for all its items.

    ``run_ids`` holds every item's current run id, in item order, written before the first trigger and
    again (with the new ids) before a retry redrives failed items. ``confs_digest`` ties it to the items
    it was planned for: a retry whose rendered ``confs`` differ plans afresh. ``max_tries``,
    ``clear_number`` and ``ended`` tell an automatic retry from a person's clear, as
    :func:`standard_ext.durable.decision.is_rerun` reads them for the single operator.
    """

    dag_id: str
    run_ids: tuple[str, ...]
    confs_digest: str
    max_tries: int
    clear_number: int | None = None
    ended: str | None = None
    #: ``auto_clear_failed_tasks``: how many clears of a run's failed tasks were decided on, by run id,
    #: each written before it is sent.
    clears: Mapping[str, int] = field(default_factory=dict)
    #: The try that planned each item's current run id, in item order (the "Child runs" tab shows it);
    #: empty in a record saved before it was kept.
    try_numbers: tuple[int, ...] = ()

    @property
    def run_id(self) -> str:
        """A label for log lines that name a record's run (:class:`standard_ext.wait.stopped.StopNote`'s)."""
        more = len(self.run_ids) - 1
        return f"{self.run_ids[0]} and {more} more" if more else self.run_ids[0]

    def to_json(self) -> dict[str, Any]:
        """Return the record as stored."""
        record: dict[str, Any] = {
            "dag_id": self.dag_id,
            "run_ids": list(self.run_ids),
            "confs_digest": self.confs_digest,
            "max_tries": self.max_tries,
        }
        if self.clear_number is not None:
            record["clear_number"] = self.clear_number
        if self.ended is not None:
            record["ended"] = self.ended
        if self.clears:
            record["clears"] = dict(self.clears)
        if self.try_numbers:
            record["try_numbers"] = list(self.try_numbers)
        return record


def confs_digest(confs: Sequence[dict[str, Any] | None]) -> str:
    """A digest of the rendered confs, item order included; ``sort_keys`` so dict order does not count."""
    return hashlib.sha256(json.dumps(list(confs), sort_keys=True).encode()).hexdigest()


def parse_record(value: object, *, dag_id: str, digest: str) -> tuple[FanOutRecord | None, str | None]:
    """
    Read a stored record back.

    :param value: what ``task_state_store`` holds under :data:`RECORD_KEY` (``None`` if nothing).
    :param dag_id: the Dag this task triggers now; a record for another one is stale.
    :param digest: :func:`confs_digest` of this try's confs; a record for other items is stale.
    :return: ``(record, None)`` when it is usable, else ``(None, why)``; ``why`` is ``None`` when there
        was simply nothing stored.
    """
    if value is None:
        return None, None
    if not isinstance(value, dict):
        return None, f"the stored value is a {type(value).__name__}, not a record"
    run_ids, max_tries = value.get("run_ids"), value.get("max_tries")
    if not isinstance(run_ids, list) or not all(isinstance(run_id, str) and run_id for run_id in run_ids):
        return None, "the stored record has no list of run ids"
    if len(set(run_ids)) != len(run_ids):
        return None, "the stored record names a run id twice"
    if not isinstance(max_tries, int) or isinstance(max_tries, bool):
        return None, "the stored record has no max_tries"
    if value.get("dag_id") != dag_id:
        return None, f"the stored record is for Dag {value.get('dag_id')!r}, not {dag_id!r}"
    if value.get("confs_digest") != digest:
        return None, "the stored record was planned for other confs"
    clear_number = value.get("clear_number")
    if not isinstance(clear_number, int) or isinstance(clear_number, bool):
        clear_number = None
    ended = value.get("ended")
    clears = value.get("clears")
    clears = (
        {run_id: n for run_id, n in clears.items() if run_id in run_ids and type(n) is int and n > 0}
        if isinstance(clears, dict)
        else {}
    )
    try_numbers = value.get("try_numbers")
    if not (
        isinstance(try_numbers, list)
        and len(try_numbers) == len(run_ids)
        and all(type(n) is int and n > 0 for n in try_numbers)
    ):
        try_numbers = []
    return FanOutRecord(
        dag_id=dag_id,
        run_ids=tuple(run_ids),
        confs_digest=digest,
        max_tries=max_tries,
        clear_number=clear_number,
        ended=ended if ended in (ENDED_SUCCESS, ENDED_STOPPED) else None,
        clears=clears,
        try_numbers=tuple(try_numbers),
    ), None


def new_run_ids(*, count: int, taken: Collection[str], generate: Callable[[], str]) -> list[str]:
    """
    Generate ``count`` run ids, distinct from each other and from ``taken``.

    :param count: how many.
    :param taken: ids already planned (a redrive's new ids must differ from every saved one).
    :param generate: makes one id, as Airflow names a manual run without a logical date (a random
        suffix makes each unique).
    :raises RuntimeError: the generator kept repeating ids.
    """
    seen = set(taken)
    run_ids: list[str] = []
    for _ in range(count):
        for _attempt in range(_GENERATION_ATTEMPTS):
            run_id = generate()
            if run_id not in seen:
                break
        else:
            raise RuntimeError(f"Could not generate a run id distinct from {len(seen)} others")
        seen.add(run_id)
        run_ids.append(run_id)
    return run_ids


def check_distinct(run_ids: Sequence[str], *, task_id: str) -> None:
    """
    Refuse a plan that names a run id twice, before it is saved or sent.

    :param run_ids: the planned run ids, in item order.
    :param task_id: the task, named in the error.
    :raises ValueError: naming the items that share an id.
    """
    first: dict[str, int] = {}
    for index, run_id in enumerate(run_ids):
        if run_id in first:
            raise ValueError(
                f"Task {task_id!r}: items #{first[run_id]} and #{index} would share run id {run_id!r}; "
                "each item needs a run of its own"
            )
        first[run_id] = index

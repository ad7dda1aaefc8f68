"""The fan-out operator's checks of its parameters, each naming the task and the parameter, before anything is sent."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from task_sdk_ext.validation import check_conf

#: The most items one task fans out to. The one durable record holds every item's run id (about 50
#: characters each): 1,000 items make it about 60 KB, written once per plan or redrive (the state store's
#: value column is a MEDIUMTEXT on MySQL). Each deferral's trigger holds them packed
#: (:mod:`standard_ext.fanout.packing`): about 20 KB encrypted at 1,000 items, under the 64 KB of MySQL's
#: TEXT. Airflow's own [core] max_map_length is 1,024, so a fan-out wider than this maps the operator over
#: chunks (``.partial(...).expand(confs=chunks)``), each chunk a task instance of its own with its own
#: record.
MAX_ITEMS = 1000


def check_constructor_values(
    *,
    task_id: str,
    max_active: object,
    tolerated_failures: object,
    wait_for_completion: bool,
    fail_fast: bool,
    result_task_ids: object,
) -> None:
    """
    Refuse the values known when the operator is built; the templated ``confs`` are checked in ``execute``.

    :param task_id: the task, named in the error.
    :raises ValueError: a bad value or a combination that would be silently ignored.
    """
    if max_active is not None and (
        not isinstance(max_active, int) or isinstance(max_active, bool) or max_active < 1
    ):
        raise ValueError(
            f"Task {task_id!r}: max_active must be a whole number of at least 1 or None, got {max_active!r}"
        )
    if (
        not isinstance(tolerated_failures, int)
        or isinstance(tolerated_failures, bool)
        or tolerated_failures < 0
    ):
        raise ValueError(
            f"Task {task_id!r}: tolerated_failures must be a whole number of at least 0, got {tolerated_failures!r}"
        )
    needs_wait = [
        name
        for name, value in (
            ("max_active", max_active),
            ("fail_fast", fail_fast or None),
            ("result_task_ids", result_task_ids),
        )
        if value is not None
    ]
    if needs_wait and not wait_for_completion:
        # Without the wait no run is seen to end: nothing to refill the window with, fail or read from.
        raise ValueError(
            f"Task {task_id!r}: {', '.join(needs_wait)} needs wait_for_completion=True; without waiting "
            "for the runs there is nothing for it to act on"
        )


def check_confs(confs: object, *, task_id: str) -> list[dict[str, Any] | None]:
    """
    Return the rendered ``confs`` as a list, or raise naming the fault and the item.

    :param confs: the rendered parameter.
    :param task_id: the task, named in the error.
    :raises ValueError: not a sequence (a list, a tuple, a mapped task's output), an item that is not a
        JSON-serializable dict whose keys can be sorted, or more than :data:`MAX_ITEMS` items.
    """
    # Any sequence: a mapped upstream task's output renders to a LazyXComSequence, neither list nor tuple.
    if isinstance(confs, (str, bytes, bytearray, Mapping)) or not isinstance(confs, Sequence):
        hint = (
            " (a Jinja expression renders to text unless the Dag sets render_template_as_native_obj=True)"
            if isinstance(confs, str)
            else ""
        )
        raise ValueError(
            f"Task {task_id!r}: confs must be a list of conf dicts, one per run, "
            f"got {type(confs).__name__}{hint}"
        )
    if len(confs) > MAX_ITEMS:
        raise ValueError(
            f"Task {task_id!r}: confs has {len(confs)} items, more than the {MAX_ITEMS} one task fans out "
            "to; map the operator over chunks instead (.partial(...).expand(confs=chunks))"
        )
    checked: list[dict[str, Any] | None] = []
    for index, conf in enumerate(confs):
        if conf is None:
            raise ValueError(
                f"Task {task_id!r}: confs[{index}] is None; give each run a dict ({{}} for none)"
            )
        try:
            checked.append(check_conf(conf))
            # The record's digest sorts the keys (confs_digest): keys of mixed types cannot be compared.
            json.dumps(conf, sort_keys=True)
        except ValueError as e:
            raise ValueError(f"Task {task_id!r}: confs[{index}]: {e}") from None
        except TypeError as e:
            raise ValueError(
                f"Task {task_id!r}: confs[{index}]: its keys cannot be compared to be saved ({e}); use "
                "string keys"
            ) from None
    return checked

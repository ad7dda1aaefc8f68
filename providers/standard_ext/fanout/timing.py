"""How often a fan-out checks its child runs, and which of its ended runs it reads the child's length from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from standard_ext.fanout.state import ItemState
from standard_ext.wait.history import LEARN_FROM_RUNS

if TYPE_CHECKING:
    from collections.abc import Collection

    from standard_ext.fanout.state import FanOut

#: The fan-out's shortest step between two checks, however many runs are active. A child's end should be
#: noticed within 5 s (p95): steps well under 5 s, since the check's own request takes a moment too; and
#: never more than one count every 3 s, so a wide fan-out does not hammer the execution API.
FAN_OUT_STEP_SECONDS = 3.0


def fan_out_poke_interval(*, poke_interval: float, active_runs: int) -> float:
    """
    Return the poke interval the fan-out's schedule uses while ``active_runs`` runs are active.

    Stock mapped asks once per child per ``poke_interval``; the fan-out asks about all its active runs
    in one count (per 100 runs), so with N runs active it may check every ``poke_interval / N`` seconds
    and still ask no more than stock does. Never more often than :data:`FAN_OUT_STEP_SECONDS`, never
    less often than the user's ``poke_interval``.

    :param poke_interval: the operator's ``poke_interval``, as the user set it.
    :param active_runs: how many of the fan-out's runs are active (queued or running).
    """
    per_run = poke_interval / max(1, active_runs)
    return min(poke_interval, max(FAN_OUT_STEP_SECONDS, per_run))


def runs_to_learn_from(fan_out: FanOut, *, asked: Collection[str], before: FanOut | None = None) -> list[str]:
    """
    Return the succeeded runs to read the child's length from: at most ``LEARN_FROM_RUNS``, most recent first.

    Only succeeded items count (as the Dag's history counts only successes), and a run asked about once
    is not asked again. The runs that ended since ``before`` (the fan-out as the last wait began) come
    first; the others follow by item, the latest first, since items start in item order: a resume, which
    knows only the states, takes the runs that most likely ended last.

    :param fan_out: the fan-out now.
    :param asked: the run ids already asked about.
    :param before: the fan-out before the last wait, if there was one in this process.
    """
    succeeded = [
        fan_out.run_ids[index]
        for index in reversed(fan_out.indexes(ItemState.SUCCEEDED))
        if fan_out.run_ids[index] not in asked
    ]
    if before is not None:
        just_ended = set(before.active_run_ids())
        # A stable sort: the just-ended first, each group still latest item first.
        succeeded.sort(key=lambda run_id: run_id not in just_ended)
    return succeeded[:LEARN_FROM_RUNS]

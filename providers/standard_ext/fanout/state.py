"""The fan-out's state and its per-item decisions, as pure functions: what to start, when to fail, when to resume."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from standard_ext.durable.decision import ACTIVE_STATES

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class ItemState(enum.StrEnum):
    """Where one item of the fan-out is, as this try knows it."""

    #: Its run id is planned (and saved, when durable), but this try has not started it: it may start
    #: once the window has room. Its run may not exist yet.
    PENDING = "pending"
    #: Its run is queued or running.
    ACTIVE = "active"
    SUCCEEDED = "success"
    #: Its run failed, or turned out not to exist after it was started.
    FAILED = "failed"


class ItemAction(enum.StrEnum):
    """What a retry does with an item of the saved record, given its run's state on the server."""

    #: The planned run was never created (the window had not reached it, or the worker died between the
    #: save and the trigger): trigger it under that same id when the window has room.
    TRIGGER_SAVED = "trigger_saved"
    #: The run is queued or running: wait on it.
    RECONNECT = "reconnect"
    #: The run succeeded: keep it (and its result).
    KEEP = "keep"
    #: The run failed: plan a new run id for the item ("redrive"), saved before its trigger.
    REDRIVE = "redrive"
    #: The run failed, and ``auto_clear_failed_tasks`` redrives it in place: clear its failed tasks and
    #: wait on it again under its run id.
    CLEAR = "clear"


def item_action(state: str | None, *, auto_clear: bool = False) -> ItemAction:
    """
    Decide what a retry does with one saved item.

    :param state: its run's state on the server; ``None`` when there is no such run.
    :param auto_clear: ``auto_clear_failed_tasks``: a failed run is cleared, not replaced.
    """
    if state == "failed" and auto_clear:
        return ItemAction.CLEAR
    if state is None:
        return ItemAction.TRIGGER_SAVED
    if state in ACTIVE_STATES:
        return ItemAction.RECONNECT
    if state == "success":
        return ItemAction.KEEP
    return ItemAction.REDRIVE


def state_after(action: ItemAction) -> ItemState:
    """The state a retry starts an item in, once ``action`` is taken (a redriven or cleared item is pending again)."""
    if action is ItemAction.RECONNECT:
        return ItemState.ACTIVE
    if action is ItemAction.KEEP:
        return ItemState.SUCCEEDED
    return ItemState.PENDING


@dataclass(frozen=True)
class FanOut:
    """
    Every item's run id and state, in item order: all the fan-out knows between two checks.

    Serialized with :meth:`to_json` into the deferral's trigger and back out of its event, because
    ``dag.test()`` resumes a task with the event alone (it drops the deferral's ``kwargs``).
    """

    run_ids: tuple[str, ...]
    states: tuple[ItemState, ...]
    #: Pending items whose failed run is resumed in place (``auto_clear_failed_tasks``): started by
    #: clearing that run's failed tasks, not by a trigger, when the window has room.
    clearing: frozenset[int] = frozenset()

    @classmethod
    def planned(cls, run_ids: Sequence[str]) -> FanOut:
        """A fan-out whose items are all still to start."""
        return cls(run_ids=tuple(run_ids), states=(ItemState.PENDING,) * len(run_ids))

    def indexes(self, state: ItemState) -> list[int]:
        """The items in ``state``, in item order."""
        return [index for index, item_state in enumerate(self.states) if item_state is state]

    def count(self, state: ItemState) -> int:
        """How many items are in ``state``."""
        return self.states.count(state)

    def active_run_ids(self) -> list[str]:
        """The run ids of the active items, in item order."""
        return [self.run_ids[index] for index in self.indexes(ItemState.ACTIVE)]

    def with_states(self, changes: Mapping[int, ItemState]) -> FanOut:
        """Return the fan-out with the items at ``changes``' indexes in their new states."""
        states = list(self.states)
        for index, state in changes.items():
            states[index] = state
        # An item started (or ended) is no longer waiting for its clear.
        clearing = self.clearing - {i for i, state in changes.items() if state is not ItemState.PENDING}
        return FanOut(run_ids=self.run_ids, states=tuple(states), clearing=clearing)

    def with_ended(self, ended: Mapping[str, str | None]) -> FanOut:
        """
        Return the fan-out once the active runs in ``ended`` are seen in a final state (``None``: gone).

        A run that ended in any state but ``success``, or that no longer exists, fails its item.
        """
        changes = {
            index: ItemState.SUCCEEDED if ended[run_id] == "success" else ItemState.FAILED
            for index, run_id in enumerate(self.run_ids)
            if run_id in ended and self.states[index] is ItemState.ACTIVE
        }
        return self.with_states(changes)

    def to_json(self) -> dict[str, Any]:
        """The fan-out as JSON-plain values."""
        value: dict[str, Any] = {
            "run_ids": list(self.run_ids),
            "states": [state.value for state in self.states],
        }
        if self.clearing:
            value["clearing"] = sorted(self.clearing)
        return value

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> FanOut:
        """Read :meth:`to_json`'s form back; raise ``ValueError`` on anything else."""
        run_ids, states = value.get("run_ids"), value.get("states")
        if not isinstance(run_ids, list) or not isinstance(states, list) or len(run_ids) != len(states):
            raise ValueError(f"Not a fan-out state: {value!r}")
        clearing = value.get("clearing", [])
        if not isinstance(clearing, list) or not all(
            type(i) is int and 0 <= i < len(run_ids) for i in clearing
        ):
            raise ValueError(f"Not a fan-out state: {value!r}")
        return cls(
            run_ids=tuple(str(run_id) for run_id in run_ids),
            states=tuple(map(ItemState, states)),
            clearing=frozenset(clearing),
        )


@dataclass(frozen=True)
class Rules:
    """
    The operator's rules for the fan-out.

    :param max_active: at most this many items active at once; ``None`` for all.
    :param tolerated_failures: how many items may fail while the task still succeeds.
    :param fail_fast: fail as soon as the failures exceed ``tolerated_failures``, not after the started
        items end.
    """

    max_active: int | None
    tolerated_failures: int
    fail_fast: bool

    def too_many_failures(self, fan_out: FanOut) -> bool:
        """Whether the failures exceed what is tolerated: then no new item starts."""
        return fan_out.count(ItemState.FAILED) > self.tolerated_failures

    def to_start(self, fan_out: FanOut) -> list[int]:
        """The pending items to start now, first first: as many as the window has room for, or none."""
        if self.too_many_failures(fan_out):
            return []
        pending = fan_out.indexes(ItemState.PENDING)
        if self.max_active is None:
            return pending
        room = max(0, self.max_active - fan_out.count(ItemState.ACTIVE))
        return pending[:room]

    def verdict(self, fan_out: FanOut) -> Verdict:
        """Judge the fan-out now: go on waiting, succeed, or fail (at once, with ``fail_fast``)."""
        active = fan_out.count(ItemState.ACTIVE)
        if self.too_many_failures(fan_out):
            if self.fail_fast or active == 0:
                return Verdict.FAIL
            return Verdict.WAIT
        if active == 0 and fan_out.count(ItemState.PENDING) == 0:
            return Verdict.SUCCEED
        return Verdict.WAIT

    def ends_to_resume_on(self, fan_out: FanOut) -> int:
        """
        How many of the active runs must end before a deferred task is worth resuming.

        Half the window (rounded up), so each resume refills a meaningful part of it and a fan-out of N
        items over a window of W costs about ``2 * N / W`` resumes; fewer when fewer items are left to
        start than that (the task resumes as soon as all of them can start); every active run when no
        item is left to start (or none may start any more), since only the end is left to see.
        """
        active = fan_out.count(ItemState.ACTIVE)
        pending = 0 if self.too_many_failures(fan_out) else fan_out.count(ItemState.PENDING)
        if pending == 0 or self.max_active is None:
            return active
        return max(1, min(active, math.ceil(self.max_active / 2), pending))

    def failures_to_resume_on(self, fan_out: FanOut) -> int | None:
        """With ``fail_fast``, how many more failures fail the task (resume at once then); else ``None``."""
        if not self.fail_fast:
            return None
        return max(1, self.tolerated_failures - fan_out.count(ItemState.FAILED) + 1)


class Verdict(enum.StrEnum):
    """What the fan-out comes to, judged by :meth:`Rules.verdict`."""

    WAIT = "wait"
    SUCCEED = "succeed"
    FAIL = "fail"


def progress_fields(fan_out: FanOut) -> dict[str, int]:
    """The fields of the ``Fan-out progress`` log line: items done, succeeded, failed, active, not started."""
    succeeded, failed = fan_out.count(ItemState.SUCCEEDED), fan_out.count(ItemState.FAILED)
    return {
        "done": succeeded + failed,
        "succeeded": succeeded,
        "failed": failed,
        "active": fan_out.count(ItemState.ACTIVE),
        "not_started": fan_out.count(ItemState.PENDING),
        "items": len(fan_out.run_ids),
    }


def failure_message(*, fan_out: FanOut, dag_id: str, rules: Rules) -> str:
    """
    The error that fails the task: the failed items and their run ids, and with ``fail_fast`` those left running.

    :param fan_out: the fan-out as it failed.
    :param dag_id: the child Dag.
    :param rules: the operator's rules.
    """
    failed = ", ".join(f"#{i} {fan_out.run_ids[i]!r}" for i in fan_out.indexes(ItemState.FAILED))
    message = (
        f"{fan_out.count(ItemState.FAILED)} of {len(fan_out.run_ids)} runs of Dag {dag_id!r} failed, "
        f"more than tolerated_failures={rules.tolerated_failures}: items {failed}"
    )
    running = fan_out.indexes(ItemState.ACTIVE)
    if running:
        left = ", ".join(f"#{i} {fan_out.run_ids[i]!r}" for i in running)
        message += f"; failing without waiting for the items still running (fail_fast), left running: {left}"
    not_started = fan_out.count(ItemState.PENDING)
    if not_started:
        message += f"; {not_started} items not started (a retry starts them)"
    return message

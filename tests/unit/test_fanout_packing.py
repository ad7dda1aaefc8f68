"""A deferred fan-out's trigger kwargs fit a ``Text`` column on every database Airflow supports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from airflow.models.crypto import get_fernet
from airflow.models.trigger import Trigger
from cryptography.fernet import Fernet

from standard_ext.fanout.checks import MAX_ITEMS
from standard_ext.fanout.packing import pack, unpack
from standard_ext.fanout.state import FanOut, ItemState
from standard_ext.triggers.dag_runs import DagRunsTrigger
from task_sdk_ext.accessor import generate_manual_run_id

if TYPE_CHECKING:
    from collections.abc import Iterator

#: MySQL's TEXT holds 65,535 bytes; the issue's target leaves room for the rest of the row's kwargs.
LIMIT = 60_000


@pytest.fixture
def encrypting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A Fernet key, as every real deployment has: kwargs are stored encrypted, a third larger."""
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    get_fernet.cache_clear()
    yield
    get_fernet.cache_clear()


def widest(state: ItemState) -> FanOut:
    run_ids = tuple(generate_manual_run_id() for _ in range(MAX_ITEMS))
    return FanOut(run_ids=run_ids, states=(state,) * MAX_ITEMS)


@pytest.mark.usefixtures("encrypting")
@pytest.mark.parametrize("state", [ItemState.ACTIVE, ItemState.PENDING])
def test_the_widest_fan_outs_trigger_row_fits(state: ItemState) -> None:
    trigger = DagRunsTrigger(
        dag_id="child",
        fan_out=widest(state).to_json(),
        ends=MAX_ITEMS // 2,
        poke_interval=60,
        fast_poll_window=5,
        waiting_since=0,
        cancel_on_kill=True,
        airflow_api_conn_id="airflow_api_default",
        timeout_at=1.0,
    )

    row = Trigger.from_object(trigger)

    assert not row.encrypted_kwargs.startswith("{"), "not encrypted: the size says nothing"
    assert len(row.encrypted_kwargs.encode()) < LIMIT
    # And it reads back as it was.
    assert DagRunsTrigger(**row.kwargs).fan_out == trigger.fan_out


def test_packing_round_trips_and_reads_the_plain_form_of_older_triggers() -> None:
    fan_out = FanOut(run_ids=("a", "b"), states=(ItemState.ACTIVE, ItemState.SUCCEEDED))

    assert unpack(pack(fan_out)) == fan_out
    assert unpack(fan_out.to_json()) == fan_out


@pytest.mark.parametrize("value", ["zlib:not-base64!", "zlib:aGVsbG8=", 3, "plain"])
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="Not a"):
        unpack(value)


def test_a_malformed_packed_fan_out_fails_its_trigger_as_it_is_built_not_the_triggerer() -> None:
    # TypeError is the one error the triggerer catches as it builds a trigger (create_triggers).
    with pytest.raises(TypeError, match="DagRunsTrigger cannot be built"):
        DagRunsTrigger(
            dag_id="child",
            fan_out="zlib:not-base64!",
            ends=1,
            poke_interval=60,
            fast_poll_window=5,
            waiting_since=0,
        )

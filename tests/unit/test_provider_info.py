from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from standard_ext.get_provider_info import get_provider_info

if TYPE_CHECKING:
    import pytest


def test_provider_info_is_reachable_through_the_entry_point() -> None:
    (ep,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("standard_ext")
    ]

    info = ep.load()()

    assert info == get_provider_info()
    assert ep.dist is not None
    assert info["package-name"] == ep.dist.name
    assert info["operators"][0]["python-modules"] == [
        "standard_ext.operators.trigger_dagrun",
        "standard_ext.operators.trigger_dagruns",
    ]
    assert info["triggers"][0]["python-modules"] == [
        "standard_ext.triggers.dag_run",
        "standard_ext.triggers.dag_runs",
    ]
    assert "standard_ext.links.TriggeredDagRunsLink" in info["extra-links"]


def test_providers_manager_lists_the_package() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers  # type: ignore[no-untyped-call]

    assert "airflow-durable-trigger" in providers
    assert providers["airflow-durable-trigger"].data["name"] == "Standard (durable trigger)"


def test_example_dag_discovery_loads_the_provider_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # What the dag-processor runs when [core] load_examples is on: it imports a module named after every
    # provider's distribution and logs an ERROR traceback for any it cannot import.
    from airflow.dag_processing.bundles.manager import _add_provider_example_dags_to_bundle

    bundles: list[Any] = []
    with caplog.at_level(logging.WARNING):
        _add_provider_example_dags_to_bundle(bundles)

    ours = [r for r in caplog.records if "airflow_durable_trigger" in r.getMessage()]
    assert ours == []
    # The module exists and has no example Dags folder, so no bundle of ours is added.
    assert not [b for b in bundles if b.name.startswith("airflow-durable-trigger")]

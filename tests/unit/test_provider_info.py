from __future__ import annotations

import json
import logging
from importlib.metadata import distribution, entry_points
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import jsonschema

from standard_ext import __version__
from standard_ext.get_provider_info import DOCUMENTATION_URL, get_provider_info

if TYPE_CHECKING:
    import pytest

STOCK_LINK = "airflow.providers.standard.operators.trigger_dagrun.TriggerDagRunLink"


def provider_info_schema() -> dict[str, Any]:
    # The runtime schema the providers manager validates every provider's dict against at discovery.
    schema: dict[str, Any] = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    return schema


def stock_provider_info() -> dict[str, Any]:
    from airflow.providers.standard.get_provider_info import get_provider_info as stock

    info: dict[str, Any] = stock()  # type: ignore[no-untyped-call]
    return info


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
    assert info["extra-links"] == ["standard_ext.links.TriggeredDagRunsLink"]


def test_provider_info_matches_airflows_schema() -> None:
    jsonschema.validate(get_provider_info(), provider_info_schema())


def test_provider_info_uses_only_keys_airflow_knows() -> None:
    # The runtime schema allows unknown keys, so a misspelt one would be ignored without a word.
    # "versions" is the provider.yaml key older providers still ship; Airflow takes the version from
    # the distribution.
    known = set(provider_info_schema()["properties"]) | {"versions"}

    assert set(get_provider_info()) <= known


def test_the_version_is_the_distributions() -> None:
    # One place for the version: hatch reads standard_ext.__version__ into the package metadata.
    assert distribution("airflow-durable-trigger").version == __version__
    assert get_provider_info()["versions"] == [__version__]


def test_the_name_is_not_the_standard_providers() -> None:
    ours, stock = get_provider_info(), stock_provider_info()

    assert "standard" not in ours["name"].lower()
    assert ours["name"] != stock["name"]
    assert {i["integration-name"] for i in ours["integrations"]}.isdisjoint(
        i["integration-name"] for i in stock["integrations"]
    )


def test_no_extra_link_is_registered_twice() -> None:
    # The stock operator link our TriggerDagRunOperator inherits is the standard provider's to register.
    assert STOCK_LINK in stock_provider_info()["extra-links"]
    assert set(get_provider_info()["extra-links"]).isdisjoint(stock_provider_info()["extra-links"])


def test_providers_manager_lists_the_package_with_its_documentation() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers  # type: ignore[no-untyped-call]

    ours = providers["airflow-durable-trigger"]
    assert ours.version == __version__
    assert ours.data["name"] == "Durable Trigger (airflow-durable-trigger)"
    # Derived by Airflow from the distribution's "Documentation" project URL; the REST API's
    # /providers answers it as documentation_url.
    assert ours.data["documentation-url"] == DOCUMENTATION_URL


def test_providers_manager_registers_our_extra_link_and_keeps_the_stock_one() -> None:
    from airflow.providers_manager import ProvidersManager

    names = ProvidersManager().extra_links_class_names  # type: ignore[no-untyped-call]

    assert "standard_ext.links.TriggeredDagRunsLink" in names
    # The manager keeps the names in a set, so a count there could not see a second registration:
    # what must hold is that ours does not name the stock link (the standard provider registers it).
    assert STOCK_LINK in names
    assert STOCK_LINK not in get_provider_info()["extra-links"]


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

from __future__ import annotations

from importlib.metadata import entry_points

from standard_ext.get_provider_info import get_provider_info


def test_provider_info_is_reachable_through_the_entry_point() -> None:
    (ep,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("standard_ext")
    ]

    info = ep.load()()

    assert info == get_provider_info()
    assert ep.dist is not None
    assert info["package-name"] == ep.dist.name
    assert info["operators"][0]["python-modules"] == ["standard_ext.operators.trigger_dagrun"]


def test_providers_manager_lists_the_package() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers  # type: ignore[no-untyped-call]

    assert "airflow-durable-trigger" in providers
    assert providers["airflow-durable-trigger"].data["name"] == "Standard (durable trigger)"

"""Provider metadata read by Airflow's providers manager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from standard_ext import __version__


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata as the providers manager expects it."""
    return {
        "package-name": "airflow-durable-trigger",
        "name": "Standard (durable trigger)",
        "description": "A TriggerDagRunOperator that triggers and waits on its own, with a crash-safe "
        "durable mode, and the Task SDK accessor it is built on.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Standard (durable trigger)",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "Standard (durable trigger)",
                "python-modules": [
                    "standard_ext.operators.trigger_dagrun",
                    "standard_ext.operators.trigger_dagruns",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Standard (durable trigger)",
                "python-modules": ["standard_ext.triggers.dag_run", "standard_ext.triggers.dag_runs"],
            }
        ],
        "extra-links": [
            "airflow.providers.standard.operators.trigger_dagrun.TriggerDagRunLink",
            "standard_ext.links.TriggeredDagRunsLink",
        ],
    }

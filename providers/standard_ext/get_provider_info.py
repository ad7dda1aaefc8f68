"""Provider metadata read by Airflow's providers manager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from standard_ext import __version__

# Shown by `airflow providers list` and the UI's providers page, next to Apache's own "Standard"
# provider: a name that cannot be taken for it or for a part of it.
NAME = "Durable Trigger (airflow-durable-trigger)"
DOCUMENTATION_URL = "https://airflow-durable-trigger.readthedocs.io/"


def get_provider_info() -> dict[str, Any]:
    """
    Return the provider's metadata as the providers manager expects it.

    The dict follows Airflow's runtime schema (``airflow/provider_info.schema.json``). The
    ``documentation-url`` Airflow shows for a provider is not set here: the providers manager derives it
    from the distribution's ``Documentation`` project URL (``[project.urls]`` in ``pyproject.toml``).

    ``extra-links`` names only our own link. The stock ``TriggerDagRunLink`` our
    ``TriggerDagRunOperator`` inherits is registered by the standard provider, a dependency. The
    providers manager keeps these names in a set read only by ``airflow providers links`` (a task's
    buttons come from its operator's ``operator_extra_links`` in the serialized Dag), so naming it again
    would change nothing but list it as ours.
    """
    return {
        "package-name": "airflow-durable-trigger",
        "name": NAME,
        # The CLI and the REST API strip "`", "_", "<" and ">" from it: no code names with underscores.
        "description": "A TriggerDagRunOperator that triggers and waits on its own, with a crash-safe "
        "durable mode, a one-task fan-out (TriggerDagRunsOperator), and the Task SDK accessor they are "
        "built on.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": NAME,
                "external-doc-url": DOCUMENTATION_URL,
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": NAME,
                "python-modules": [
                    "standard_ext.operators.trigger_dagrun",
                    "standard_ext.operators.trigger_dagruns",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": NAME,
                "python-modules": ["standard_ext.triggers.dag_run", "standard_ext.triggers.dag_runs"],
            }
        ],
        "extra-links": ["standard_ext.links.TriggeredDagRunsLink"],
    }

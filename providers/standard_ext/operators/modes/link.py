"""``TriggeredDagRunsLink``: the "Triggered DAG" button of a fan-out task, leading to the child Dag's runs.

Airflow finds it at :mod:`standard_ext.links`, the classpath the provider info lists, which re-exports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urljoin

from airflow.providers.common.compat.sdk import XCom
from airflow.sdk import BaseOperatorLink

from standard_ext.launch.run import XCOM_DAG_ID

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey
    from airflow.sdk import BaseOperator


class TriggeredDagRunsLink(BaseOperatorLink):
    """
    The "Triggered DAG" link of ``TriggerDagRunsOperator``: the runs list of the Dag it triggered.

    A fan-out triggers many runs, so the link leads to the Dag's runs rather than to one of them (the
    stock ``TriggerDagRunLink`` leads to its one run). The Dag id is the one the task pushed as its
    ``trigger_dag_id`` XCom (rendered), else the operator's own ``trigger_dag_id``.
    """

    name = "Triggered DAG"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the URL of the triggered Dag's runs list."""
        from airflow.configuration import conf

        dag_id = XCom.get_value(ti_key=ti_key, key=XCOM_DAG_ID) or getattr(operator, "trigger_dag_id", "")
        base_url = conf.get("api", "base_url", fallback="/")
        return urljoin(base_url.rstrip("/") + "/", f"dags/{quote(str(dag_id), safe='')}/runs")

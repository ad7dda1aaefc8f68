"""The Airflow plugin that installs ``ti.trigger_dag_run()`` in every task process."""

from __future__ import annotations

from typing import Any

import structlog
from airflow.sdk.plugins_manager import AirflowPlugin

from task_sdk_ext.accessor import trigger_dag_run

log = structlog.get_logger(__name__)

ACCESSOR_NAME = "trigger_dag_run"


def install_accessor(target: type | None = None) -> bool:
    """
    Add ``trigger_dag_run`` to ``target`` (``RuntimeTaskInstance``) as a staticmethod, like ``get_dagrun_state``.

    An attribute of that name that is not ours is kept: a future Airflow may ship its own accessor, and
    replacing it would change what every task's ``ti.trigger_dag_run`` means behind the user's back.

    :param target: the class to install on; ``RuntimeTaskInstance`` when not given.
    :return: whether ``target.trigger_dag_run`` is ours after the call.
    """
    if target is None:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        target = RuntimeTaskInstance
    existing = getattr(target, ACCESSOR_NAME, None)
    if existing is trigger_dag_run:
        return True
    if hasattr(target, ACCESSOR_NAME):
        log.warning(
            "Keeping the existing accessor; ours is not installed",
            target=target.__qualname__,
            attribute=ACCESSOR_NAME,
            existing=repr(existing),
        )
        return False
    setattr(target, ACCESSOR_NAME, staticmethod(trigger_dag_run))
    return True


class TaskSdkExtPlugin(AirflowPlugin):
    """
    Installs ``ti.trigger_dag_run()`` when Airflow loads plugins.

    Registered on the ``airflow.plugins`` entry point. A task process loads plugins (and so calls
    ``on_load``) in ``RuntimeTaskInstance.get_template_context()``, before any task code runs, so Dag
    files need no import.
    """

    name = "task_sdk_ext"

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Install the accessor."""
        install_accessor()

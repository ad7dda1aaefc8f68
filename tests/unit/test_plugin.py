from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

import pytest
import structlog
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

from task_sdk_ext import trigger_dag_run
from task_sdk_ext.plugin import ACCESSOR_NAME, TaskSdkExtPlugin, install_accessor

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def without_accessor(monkeypatch: pytest.MonkeyPatch) -> None:
    # monkeypatch restores the class as it was, so no test leaves the accessor behind or removes it.
    if ACCESSOR_NAME in vars(RuntimeTaskInstance):
        monkeypatch.delattr(RuntimeTaskInstance, ACCESSOR_NAME)


@pytest.mark.usefixtures("without_accessor")
class TestPluginLoading:
    def test_task_process_plugin_loading_installs_the_accessor(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        from airflow import settings
        from airflow.sdk import plugins_manager

        # The same call a task process makes in get_template_context(), from a clean plugin cache and
        # an empty plugins folder, so only entry-point plugins (ours) can install anything.
        monkeypatch.setattr(settings, "PLUGINS_FOLDER", str(tmp_path))
        plugins_manager._get_plugins.cache_clear()
        plugins_manager.integrate_macros_plugins.cache_clear()
        try:
            plugins_manager.integrate_macros_plugins()
            plugins, _ = plugins_manager._get_plugins()
        finally:
            plugins_manager._get_plugins.cache_clear()
            plugins_manager.integrate_macros_plugins.cache_clear()

        assert "task_sdk_ext" in [p.name for p in plugins]
        assert RuntimeTaskInstance.trigger_dag_run is trigger_dag_run  # type: ignore[attr-defined]
        assert isinstance(vars(RuntimeTaskInstance)[ACCESSOR_NAME], staticmethod)

    def test_on_load_is_idempotent(self) -> None:
        TaskSdkExtPlugin().on_load()
        TaskSdkExtPlugin().on_load()

        assert RuntimeTaskInstance.trigger_dag_run is trigger_dag_run  # type: ignore[attr-defined]

    def test_entry_point_names_the_plugin_class(self) -> None:
        (ep,) = [ep for ep in entry_points(group="airflow.plugins") if ep.name == "task_sdk_ext"]

        assert ep.load() is TaskSdkExtPlugin


class TestExistingAttributeIsKept:
    def test_an_existing_accessor_is_not_overwritten_and_a_warning_says_so(self) -> None:
        def theirs(dag_id: str) -> str:
            return "theirs"

        class FutureTaskInstance:
            trigger_dag_run = staticmethod(theirs)

        with structlog.testing.capture_logs() as logs:
            installed = install_accessor(FutureTaskInstance)

        assert installed is False
        assert FutureTaskInstance.trigger_dag_run is theirs
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "Keeping the existing accessor; ours is not installed"
        ]

    def test_installs_on_a_class_without_one(self) -> None:
        class PlainTaskInstance:
            pass

        assert install_accessor(PlainTaskInstance) is True
        assert PlainTaskInstance.trigger_dag_run is trigger_dag_run  # type: ignore[attr-defined]

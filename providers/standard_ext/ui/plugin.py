"""The Airflow plugin that adds the "Child runs" tab to task instance pages, and mounts the app that feeds it."""

from __future__ import annotations

import functools
from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

#: The tab's name: the UI shows it as the tab's label and keeps the component under it on ``globalThis``.
TAB_NAME = "Child runs"


class _App:
    """
    ``fastapi_apps``, built when the API server first reads it.

    Every process that loads plugins loads this one, task processes included, and only the API server
    mounts apps: building the app (and importing FastAPI and Airflow's API modules) waits until then.
    """

    def __get__(self, instance: object, owner: type | None = None) -> list[dict[str, Any]]:
        return [{"name": "standard_ext child runs", "app": _app(), "url_prefix": _url_prefix()}]


@functools.cache
def _app() -> Any:
    from standard_ext.ui.app import create_app

    return create_app()


def _url_prefix() -> str:
    from standard_ext.ui.app import URL_PREFIX

    return URL_PREFIX


class ChildRunsPlugin(AirflowPlugin):
    """
    Adds the "Child runs" tab to every task instance page, with nothing to configure.

    Registered on the ``airflow.plugins`` entry point, as the accessor's plugin is. The tab is a React
    app (``destination: task_instance``) whose module the UI imports from this plugin's FastAPI app; for a
    task of another kind it says so in one line.
    """

    name = "standard_ext_child_runs"
    fastapi_apps = _App()  # type: ignore[assignment]
    react_apps = [  # noqa: RUF012 (AirflowPlugin's own attribute, a plain list)
        {
            "name": TAB_NAME,
            # Relative: the UI resolves it against its base URL, so a path prefix in [api] base_url holds.
            "bundle_url": "standard-ext/static/child_runs.js",
            "destination": "task_instance",
            # Airflow collects only React apps with a route; a tab is not shown at it.
            "url_route": "standard-ext-child-runs",
        }
    ]

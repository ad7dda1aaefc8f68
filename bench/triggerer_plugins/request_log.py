"""
An Airflow plugin for the width bench's triggerer: httpx logs each of its in-process requests at info.

The triggerer asks the execution API in-process: its client is an ``httpx.Client`` on the in-process
app's transport, so no access log sees those requests. httpx logs every request it sends at info on the
stdlib logger ``httpx`` (``HTTP Request: <method> <url> "<http version> <status> <reason>"``), and
Airflow's logging setup sets that logger to warning each time it runs. ``[logging] namespace_levels``
cannot raise it (it sets the levels of structlog's loggers, not the stdlib's), and setting it once is
not enough: the triggerer runs the Task SDK's setup (``airflow.sdk.log.configure_logging``) again when
it starts its trigger runner (``TriggerRunnerSupervisor._process_log_messages_from_subprocess``), after
every plugin has loaded. So ``on_load``, which runs in the triggerer's own process when its job starts
(the listener manager loads the plugins), sets the level and replaces that setup, in this process only,
with one that sets it again after each run. Nothing else changes: the requests, their answers and the
other loggers are as they were. It logs ``LOGGING_EVENT`` once, so that a reader of
the log can tell "no request sent" from "requests not logged" (``bench.triggerer_requests.logging_on``).

``bench.width_airflow`` gives this folder to the triggerer alone: the task processes, whose requests
reach the api-server's access log anyway, do not log theirs twice.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import structlog
from airflow.plugins_manager import AirflowPlugin

log = structlog.get_logger(__name__)

# The stdlib logger httpx logs its requests on (httpx/_client.py).
HTTPX_LOGGER = "httpx"
# What the plugin logs as it loads: this process's in-process requests are in its log from then on.
LOGGING_EVENT = "Logging every in-process request"
# Set on a wrapped setup, so that loading the plugin twice does not wrap it twice.
WRAPPED_MARK = "_bench_logs_requests"


def log_requests() -> None:
    """Let httpx's info lines through: one per request its clients in this process send."""
    # Not a logger to log with: httpx's own, whose level is all that changes here.
    logging.getLogger(HTTPX_LOGGER).setLevel(logging.INFO)  # noqa: TID251


def keep_logging_requests(configure: Any) -> Any:
    """
    Return ``configure`` (a logging setup) followed by ``log_requests``; once wrapped, it is left alone.

    :param configure: the function that sets up logging (and sets httpx's logger to warning).
    """
    if getattr(configure, WRAPPED_MARK, False):
        return configure

    @functools.wraps(configure)
    def configure_then_log_requests(*args: Any, **kwargs: Any) -> Any:
        result = configure(*args, **kwargs)
        log_requests()
        return result

    setattr(configure_then_log_requests, WRAPPED_MARK, True)
    return configure_then_log_requests


class TriggererRequestLog(AirflowPlugin):
    """httpx's request lines in the log of the process that loads this plugin, logging set up again or not."""

    name = "bench_triggerer_request_log"

    @classmethod
    def on_load(cls, *args: object, **kwargs: object) -> None:
        """Set httpx's logger to info now and after every later Task SDK logging setup."""
        from airflow.sdk import log as sdk_log

        # The triggerer imports it by name each time it sets logging up, so the module's is what counts.
        sdk_log.configure_logging = keep_logging_requests(sdk_log.configure_logging)  # type: ignore[method-assign]
        log_requests()
        log.info(LOGGING_EVENT, stdlib_logger=HTTPX_LOGGER)

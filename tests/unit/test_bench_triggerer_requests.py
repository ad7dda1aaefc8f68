"""The triggerer's in-process requests, read from its log (``bench/triggerer_requests.py``) and its plugin."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from bench import triggerer_requests
from bench.triggerer_plugins import request_log
from bench.triggerer_requests import InProcessRequest, between, by_route, logging_on, parse, route_of

if TYPE_CHECKING:
    from collections.abc import Iterator

# Lines of a width Airflow's triggerer (PostgreSQL, LocalExecutor, the request-log plugin loaded), one
# stock and one of our deferrable TriggerDagRunOperators waiting on paused runs of bench_paused_target:
# stock's DagStateTrigger counts its run's final states every poke_interval; our shared poller asks the
# task states of its run each tick, and logs the tick just after.
STOCK_COUNT = (
    "2026-12-07T18:04:49.016889Z [info     ] HTTP Request: GET http://in-process.invalid./dag-runs/count?"
    "dag_id=bench_paused_target&run_ids=manual__2026-12-07T18%3A04%3A35.946254%2B00%3A00&states=success"
    '&states=failed "HTTP/1.1 200 OK" [httpx] loc=_client.py:1025'
)
OURS_STATES = (
    "2026-12-07T18:04:49.126223Z [info     ] HTTP Request: GET http://in-process.invalid./task-instances/"
    "states?dag_id=bench_paused_target&run_ids=manual__2026-12-07T18%3A04%3A35.753981%2B00%3A00 "
    '"HTTP/1.1 200 OK" [httpx] loc=_client.py:1025'
)
TICK = (
    "2026-12-07T18:04:49.130800Z [debug    ] Checked child Dag runs         [standard_ext.triggers.poller] "
    "checked=1 dag_id=bench_paused_target left_due=0 loc=triggerer_job_runner.py:1046 waiting=1"
)
# A trigger runner's line the triggerer logs again later, under the runner's own (earlier) timestamp.
RELOGGED = (
    "2026-12-07T18:04:41.866711Z [info     ] Triggerer's async thread was blocked for 0.22 seconds, "
    "exceeding the configured warning threshold of 0.20 seconds. [airflow.jobs.triggerer_job_runner] "
    "loc=triggerer_job_runner.py:1046"
)
# The plugin's line as the triggerer loads it; then the same in-process client's other questions (a
# run's state, the Dag's previous run), from that client and plugin in a plain process.
PLUGIN_LOADED = (
    "2026-12-07T18:16:13.860670Z [info     ] Logging every in-process request [request_log] "
    "loc=request_log.py:76 stdlib_logger=httpx"
)
RUN_STATE = (
    "2026-12-07T18:11:58.363345Z [info     ] HTTP Request: GET http://in-process.invalid./dag-runs/"
    'bench_paused_target/manual__2026-12-07T18:04:35.946254+00:00/state "HTTP/1.1 404 Not Found" [httpx] '
    "loc=_client.py:1025"
)
PREVIOUS = (
    "2026-12-07T18:11:58.390013Z [info     ] HTTP Request: GET http://in-process.invalid./dag-runs/previous?"
    'dag_id=bench_paused_target&logical_date=2026-12-07T18%3A00%3A00%2B00%3A00&state=success "HTTP/1.1 '
    '200 OK" [httpx] loc=_client.py:1025'
)
# With [logging] json_logs: the same event text in a JSON object.
JSON_COUNT = (
    '{"timestamp":"2026-12-07T18:07:13.573627Z","level":"info","event":"HTTP Request: GET '
    "http://in-process.invalid./dag-runs/count?dag_id=x&run_ids=manual__2026-12-07T18%3A04%3A35.946254"
    '%2B00%3A00&states=success&states=failed \\"HTTP/1.1 200 OK\\"","logger":"httpx","filename":'
    '"_client.py","lineno":1025}'
)
JSON_RUN_STATE = (
    '{"timestamp":"2026-12-07T18:07:14.330138Z","level":"info","event":"HTTP Request: GET '
    "http://in-process.invalid./dag-runs/x/manual__2026-12-07T18:04:35.946254+00:00/state "
    '\\"HTTP/1.1 404 Not Found\\"","logger":"httpx","filename":"_client.py","lineno":1025}'
)
RUN_ID = "manual__2026-12-07T18:04:35.946254+00:00"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class TestParse:
    def test_a_console_line_is_one_request_with_its_time_route_query_and_status(self) -> None:
        (request,) = parse([STOCK_COUNT])

        assert request == InProcessRequest(
            at=at("2026-12-07T18:04:49.016889"),
            method="GET",
            path="/dag-runs/count",
            query=(
                ("dag_id", "bench_paused_target"),
                ("run_ids", RUN_ID),
                ("states", "success"),
                ("states", "failed"),
            ),
            status=200,
        )
        assert request.route == "GET /dag-runs/count"

    def test_only_the_request_lines_count_among_the_triggerer_s_others(self) -> None:
        found = parse([PLUGIN_LOADED, STOCK_COUNT, RELOGGED, OURS_STATES, TICK, "", "not a log line"])

        assert [request.route for request in found] == ["GET /dag-runs/count", "GET /task-instances/states"]

    def test_a_run_s_state_keeps_its_run_id_in_the_path_and_its_404(self) -> None:
        (request,) = parse([RUN_STATE])

        assert request.path == f"/dag-runs/bench_paused_target/{RUN_ID}/state"
        assert (request.route, request.status) == ("GET /dag-runs/{dag_id}/{run_id}/state", 404)

    def test_json_lines_read_the_same(self) -> None:
        count, state = parse([JSON_COUNT, JSON_RUN_STATE])

        assert (count.at, count.route, count.query[0]) == (
            at("2026-12-07T18:07:13.573627"),
            "GET /dag-runs/count",
            ("dag_id", "x"),
        )
        assert (state.route, state.status) == ("GET /dag-runs/{dag_id}/{run_id}/state", 404)

    def test_a_client_on_the_api_server_s_url_reads_as_the_in_process_one(self) -> None:
        # A triggerer whose client asks a remote api-server: its paths carry the /execution prefix.
        line = OURS_STATES.replace("http://in-process.invalid./", "http://localhost:8080/execution/")

        (request,) = parse([line])

        assert request.route == "GET /task-instances/states"


class TestRoutes:
    @pytest.mark.parametrize(
        ("method", "path", "route"),
        [
            ("GET", "/dag-runs/count", "GET /dag-runs/count"),
            ("GET", "/dag-runs/previous", "GET /dag-runs/previous"),
            ("GET", "/dag-runs/child/previous", "GET /dag-runs/{dag_id}/previous"),
            ("GET", "/dag-runs/child/run-1/state", "GET /dag-runs/{dag_id}/{run_id}/state"),
            ("POST", "/dag-runs/child/run-1", "POST /dag-runs/{dag_id}/{run_id}"),
            ("POST", "/dag-runs/child/run-1/clear", "POST /dag-runs/{dag_id}/{run_id}/clear"),
            ("GET", "/task-instances/states", "GET /task-instances/states"),
            ("GET", "/task-instances/count", "GET /task-instances/count"),
            ("GET", "/task-instances/previous/child/task", "GET /task-instances/previous/{dag_id}/{task_id}"),
            # Routes the bench does not name: by their resource.
            ("GET", "/variables/some_key", "GET /variables/..."),
            ("GET", "/health", "GET /health"),
            ("GET", "/dag-runs/a/b/c/d", "GET /dag-runs/..."),
        ],
    )
    def test_each_request_is_named_by_the_route_it_asked(self, method: str, path: str, route: str) -> None:
        assert route_of(method, path) == route

    def test_requests_are_counted_by_route_the_most_asked_first(self) -> None:
        found = parse([STOCK_COUNT, OURS_STATES, OURS_STATES, RUN_STATE])

        assert by_route(found) == {
            "GET /task-instances/states": 2,
            "GET /dag-runs/count": 1,
            "GET /dag-runs/{dag_id}/{run_id}/state": 1,
        }
        assert by_route([]) == {}


def test_the_window_holds_the_requests_logged_from_its_start_to_its_end() -> None:
    found = parse([STOCK_COUNT, OURS_STATES, RUN_STATE])

    inside = between(found, at("2026-12-07T18:04:49.016889"), at("2026-12-07T18:05:00"))

    assert [request.route for request in inside] == ["GET /dag-runs/count", "GET /task-instances/states"]


def test_the_plugin_s_line_says_the_log_carries_the_requests() -> None:
    assert logging_on([RELOGGED, PLUGIN_LOADED, TICK])
    # Without it, a log with no request line says nothing about the requests sent.
    assert not logging_on([RELOGGED, TICK])
    assert request_log.LOGGING_EVENT in PLUGIN_LOADED
    assert triggerer_requests.REQUEST_EVENT in STOCK_COUNT


class TestPlugin:
    @pytest.fixture
    def httpx_logger(self) -> Iterator[logging.Logger]:
        logger = logging.getLogger(request_log.HTTPX_LOGGER)  # noqa: TID251
        level = logger.level
        logger.setLevel(logging.WARNING)
        yield logger
        logger.setLevel(level)

    def test_loading_it_lets_httpx_log_each_request(self, httpx_logger: logging.Logger) -> None:
        from airflow.sdk import log as sdk_log

        setup = sdk_log.configure_logging
        try:
            request_log.TriggererRequestLog.on_load()

            assert httpx_logger.isEnabledFor(logging.INFO)
        finally:
            sdk_log.configure_logging = setup  # type: ignore[method-assign]

    def test_a_later_logging_setup_is_followed_by_the_level_again(self, httpx_logger: logging.Logger) -> None:
        calls: list[dict[str, Any]] = []

        def configure(**kwargs: Any) -> str:
            # What Airflow's setup does to httpx's logger each time it runs.
            calls.append(kwargs)
            httpx_logger.setLevel(logging.WARNING)
            return "configured"

        wrapped = request_log.keep_logging_requests(configure)

        assert wrapped(json_output=False) == "configured"
        assert calls == [{"json_output": False}]
        assert httpx_logger.level == logging.INFO
        # Wrapped once: a plugin loaded again leaves the setup as it is.
        assert request_log.keep_logging_requests(wrapped) is wrapped
        assert wrapped.__name__ == "configure"

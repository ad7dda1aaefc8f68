"""Counting state requests per child run from the api-server's access log (``bench/access_log.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.access_log import parse, state_requests_per_run

OURS = ("bench_child_20s_ours_sync", "manual__2026-11-21T20:23:00.375527+00:00")
STOCK = ("bench_child_20s_stock_sync", "manual__2026-11-21T20:23:00.369183+00:00")

# Lines of a real standalone.log (the bench's quick run), in the order the api-server wrote them: the
# banner, a heartbeat, a REST trigger, then one synchronous wait of ours and one of stock's on 20 s
# children. Ours checks (durable=False, through the resumable mixin) that its planned run does not
# exist before triggering it: that 404 is not part of the wait.
REAL_LOG = """\
api-server | ____________       _____________
api-server | 2026-11-21T20:22:54.302896Z [info     ] request finished               [http.access] client_addr=127.0.0.1:52568 duration_us=20578 loc=http_access_log.py:130 method=POST path=/api/v2/dags/bench_parent_ours_sync/dagRuns query= status_code=200
api-server | 2026-11-21T20:22:59.694282Z [info     ] request finished               [http.access] client_addr=127.0.0.1:52596 duration_us=89980 loc=http_access_log.py:130 method=PUT path=/execution/task-instances/01a1ffc6-b257-749f-a1e7-572579931777/heartbeat query= status_code=204
api-server | 2026-11-21T20:23:00.479263Z [info     ] request finished               [http.access] client_addr=127.0.0.1:52596 duration_us=37428 loc=http_access_log.py:130 method=GET path=/execution/dag-runs/bench_child_20s_ours_sync/manual__2026-11-21T20:23:00.375527+00:00/state query= status_code=404
api-server | 2026-11-21T20:23:00.568447Z [info     ] request finished               [http.access] client_addr=127.0.0.1:52596 duration_us=79814 loc=http_access_log.py:130 method=POST path=/execution/dag-runs/bench_child_20s_ours_sync/manual__2026-11-21T20:23:00.375527+00:00 query= status_code=204
api-server | 2026-11-21T20:23:00.569670Z [info     ] request finished               [http.access] client_addr=127.0.0.1:52582 duration_us=112768 loc=http_access_log.py:130 method=POST path=/execution/dag-runs/bench_child_20s_stock_sync/manual__2026-11-21T20:23:00.369183+00:00 query= status_code=204
api-server | 2026-11-21T20:23:00.876918Z [info     ] request finished               [http.access] client_addr=127.0.0.1:52596 duration_us=20766 loc=http_access_log.py:130 method=GET path=/execution/dag-runs/previous query='dag_id=bench_child_20s_ours_sync&logical_date=2026-11-21T20%3A23%3A00.854170%2B00%3A00&state=success' status_code=200
api-server | 2026-11-21T20:23:00.922399Z [info     ] request finished               [http.access] client_addr=127.0.0.1:52596 duration_us=43185 loc=http_access_log.py:130 method=GET path=/execution/task-instances/states query='dag_id=bench_child_20s_ours_sync&run_ids=manual__2026-11-21T20%3A23%3A00.375527%2B00%3A00' status_code=200
api-server | 2026-11-21T20:23:02.043350Z [info     ] request finished               [http.access] client_addr=127.0.0.1:52596 duration_us=90128 loc=http_access_log.py:130 method=GET path=/execution/task-instances/states query='dag_id=bench_child_20s_ours_sync&run_ids=manual__2026-11-21T20%3A23%3A00.375527%2B00%3A00' status_code=200
api-server | 2026-11-21T20:23:22.395548Z [info     ] request finished               [http.access] client_addr=127.0.0.1:38686 duration_us=33394 loc=http_access_log.py:130 method=GET path=/execution/task-instances/states query='dag_id=bench_child_20s_ours_sync&run_ids=manual__2026-11-21T20%3A23%3A00.375527%2B00%3A00' status_code=200
api-server | 2026-11-21T20:23:22.405847Z [info     ] request finished               [http.access] client_addr=127.0.0.1:38686 duration_us=8269 loc=http_access_log.py:130 method=GET path=/execution/dag-runs/bench_child_20s_ours_sync/manual__2026-11-21T20:23:00.375527+00:00/state query= status_code=200
api-server | 2026-11-21T20:23:23.414702Z [info     ] request finished               [http.access] client_addr=127.0.0.1:38686 duration_us=7609 loc=http_access_log.py:130 method=GET path=/execution/task-instances/states query='dag_id=bench_child_20s_ours_sync&run_ids=manual__2026-11-21T20%3A23%3A00.375527%2B00%3A00' status_code=200
api-server | 2026-11-21T20:23:23.422364Z [info     ] request finished               [http.access] client_addr=127.0.0.1:38686 duration_us=5802 loc=http_access_log.py:130 method=GET path=/execution/dag-runs/bench_child_20s_ours_sync/manual__2026-11-21T20:23:00.375527+00:00/state query= status_code=200
api-server | 2026-11-21T20:24:00.731318Z [info     ] request finished               [http.access] client_addr=127.0.0.1:53044 duration_us=4749 loc=http_access_log.py:130 method=GET path=/execution/dag-runs/bench_child_20s_stock_sync/manual__2026-11-21T20:23:00.369183+00:00/state query= status_code=200
"""


def test_parse_reads_only_the_access_lines_and_decodes_the_query() -> None:
    requests = parse(REAL_LOG.splitlines())

    assert len(requests) == 13
    previous = requests[5]
    assert previous.at == datetime(2026, 11, 21, 20, 23, 0, 876918, tzinfo=UTC)
    assert (previous.method, previous.path, previous.status) == ("GET", "/execution/dag-runs/previous", 200)
    assert previous.query == (
        ("dag_id", "bench_child_20s_ours_sync"),
        ("logical_date", "2026-11-21T20:23:00.854170+00:00"),
        ("state", "success"),
    )
    assert previous.is_state_request
    assert previous.dag_id() == OURS[0]
    assert previous.run_ids() == []
    # The run id in a path keeps its '+' (a path is not form-encoded).
    assert requests[-1].run_ids() == [STOCK[1]]
    assert requests[3].trigger == OURS
    assert not requests[1].is_state_request  # the heartbeat


def test_each_wait_counts_its_state_requests_after_its_trigger() -> None:
    counts = state_requests_per_run(parse(REAL_LOG.splitlines()), [OURS, STOCK])

    # Ours: the history look-up, four task-state checks and two state reads; not the 404 before the
    # trigger, nor the trigger. Stock: its one check after sleeping poke_interval.
    assert counts == {OURS: 7.0, STOCK: 1.0}


def test_a_request_naming_several_runs_counts_a_share_for_each() -> None:
    # The shape of the count a shared poll sends (the triggerer's never reach the log, so this line is
    # a real task-state line with a second run id added).
    shared = (
        "api-server | 2026-11-21T20:23:30.000000Z [info     ] request finished               [http.access] "
        "client_addr=127.0.0.1:52596 duration_us=1 loc=http_access_log.py:130 method=GET "
        "path=/execution/dag-runs/count query='dag_id=bench_child_20s_ours_sync&run_ids=manual__2026-11-21T20"
        "%3A23%3A00.375527%2B00%3A00&run_ids=other&states=queued&states=running' status_code=200"
    )
    runs = [OURS, (OURS[0], "other")]

    counts = state_requests_per_run(parse([*REAL_LOG.splitlines(), shared]), runs)

    assert counts == {OURS: 7.5, (OURS[0], "other"): 0.5}


def test_a_run_not_in_the_log_counts_nothing_and_unasked_runs_are_left_out() -> None:
    counts = state_requests_per_run(parse(REAL_LOG.splitlines()), [("bench_child_2s_ours_sync", "absent")])

    assert counts == {("bench_child_2s_ours_sync", "absent"): 0.0}


@pytest.mark.parametrize("status", [200, 404])
def test_parse_reads_json_log_lines_too(status: int) -> None:
    line = (
        '{"timestamp":"2026-11-21T20:23:00.922399Z","level":"info","event":"request finished",'
        '"logger":"http.access","method":"GET","path":"/execution/task-instances/states",'
        f'"query":"dag_id=d&run_ids=r%2B1","status_code":{status},"duration_us":5}}'
    )

    (request,) = parse([line, '{"event": "something else"}', "not json {"])

    assert (request.run_ids(), request.status) == (["r+1"], status)

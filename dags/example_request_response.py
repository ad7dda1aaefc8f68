r"""Example Dags: call a Dag like a function. ``example_ask_question`` calls ``example_answer_question``.

It shows request/response between Dags. ``example_answer_question`` is the function: its ``answer`` task
and its mapped ``parts`` task return the result, then a teardown (``close_session``) tidies up for a
while. ``example_ask_question`` calls it with ``result_task_ids``, so the parent task returns
``{"answer": ..., "parts": [...]}`` as soon as those tasks have succeeded, without waiting for the
teardown; with ``fail_fast`` and ``critical_task_ids`` it fails as soon as ``answer`` fails; with
``attach_when_already_exists`` two requests with the same ``request_id`` share one child run. A client
reads the answer through the parent's own ``/wait``::

    curl -X POST "$AIRFLOW/api/v2/dags/example_ask_question/dagRuns" -H "$AUTH" \
         -H 'Content-Type: application/json' \
         -d '{"logical_date": null, "conf": {"question": "what is the answer?", "request_id": "req-42"}}'
    curl "$AIRFLOW/api/v2/dags/example_ask_question/dagRuns/$RUN_ID/wait?interval=1&result=ask" -H "$AUTH"
    # {"state": "running"}
    # {"state": "success", "results": {"ask": {"answer": {...}, "parts": [...]}}}

``example_ask_question`` waits in the triggerer (``deferrable=True``); ``example_ask_question_sync`` is
the same call waiting in its worker slot. Run conf / params: ``question``, ``request_id`` (the child's
run id; empty: a fresh child run per request and try), ``work`` (seconds until the answer), ``teardown`` (seconds the
teardown takes), ``fail`` (the answer task raises) and ``tag`` are passed on to the child.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, dag, get_current_context, setup, task, teardown

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

_DAG_ARGS: dict[str, Any] = {
    # The module docstring, shown on each Dag's page in the UI.
    "doc_md": __doc__,
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "tags": ["durable-trigger-example"],
}


def _conf() -> dict[str, Any]:
    return get_current_context()["dag_run"].conf or {}


# [START howto_request_response]
@dag(dag_id="example_answer_question", **_DAG_ARGS)
def example_answer_question() -> None:
    @setup
    def open_session() -> None:
        print("session opened")

    # No retries: a failed answer must stay failed, so the caller's fail_fast has something to see.
    @task(retries=0)
    def answer() -> dict[str, Any]:
        conf = _conf()
        time.sleep(float(conf.get("work", 2)))
        if conf.get("fail"):
            raise RuntimeError("failing on purpose: the run conf says fail=true")
        question = str(conf.get("question", ""))
        return {"question": question, "words": len(question.split())}

    @task(retries=0)
    def parts(index: int) -> str:
        return f"{_conf().get('question', '')}#{index}"

    @teardown
    def close_session() -> None:
        # Cleanup the caller need not wait for: the run is not over, but the result is ready.
        time.sleep(float(_conf().get("teardown", 5)))

    opened, closed = open_session(), close_session()
    opened >> [answer(), parts.expand(index=[0, 1, 2])] >> closed
    opened >> closed


example_answer_question()


def ask_question(dag_id: str, *, deferrable: bool) -> DAG:
    with DAG(
        dag_id=dag_id,
        params={"question": "", "request_id": "", "work": 2, "teardown": 5, "fail": False, "tag": "example"},
        # Native rendering keeps ``work`` a number and ``fail`` a bool in the child's conf.
        render_template_as_native_obj=True,
        **_DAG_ARGS,
    ) as parent:
        TriggerDagRunOperator(
            task_id="ask",
            trigger_dag_id="example_answer_question",
            # A request id names the child run, so a repeated request attaches to the same one. Without
            # one, the parent's run id and try do: a fresh child per request, and a retry after a failed
            # answer asks afresh (a durable retry after a crash still reconnects to the saved run).
            # ("or None" renders the text "None" without native rendering: the operator refuses it.)
            trigger_run_id="{{ params.request_id or run_id ~ '__try' ~ ti.try_number }}",
            conf={key: f"{{{{ params.{key} }}}}" for key in ("question", "work", "teardown", "fail", "tag")},
            wait_for_completion=True,
            result_task_ids=["answer", "parts"],
            fail_fast=True,
            critical_task_ids=["answer"],
            attach_when_already_exists=True,
            durable=True,
            deferrable=deferrable,
            # Answers are expected within half a minute: check every second until then.
            fast_poll_window=30,
            retries=1,
            retry_delay=timedelta(seconds=2),
        )
    return parent


ask_question("example_ask_question", deferrable=True)
ask_question("example_ask_question_sync", deferrable=False)
# [END howto_request_response]

"""Example Dag ``example_child``: the Dag the trigger examples start; one task that sleeps, may fail, returns.

It shows a child written to be triggered: run conf in, ``@result`` out, no retries of its own. Run conf:
``sleep`` (seconds of simulated work, default 5), ``fail`` (raise when true, to show how a parent reacts
to a failed child), ``value`` (returned; ``@result`` makes it the run's result), and ``tag`` (ignored
here; the end-to-end tests use it to count the child runs one scenario caused).
"""

from __future__ import annotations

import time
from datetime import datetime

from airflow.sdk import dag, get_current_context, result, task


# [START howto_child]
@dag(
    dag_id="example_child",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["durable-trigger-example"],
)
def example_child() -> None:
    # No retries: a failed child must stay failed so the parent's own retry policy is what reacts.
    @result
    @task(retries=0)
    def work() -> object:
        conf = get_current_context()["dag_run"].conf or {}
        seconds = float(conf.get("sleep", 5))
        print(f"working for {seconds} s")
        time.sleep(seconds)
        if conf.get("fail"):
            raise RuntimeError("failing on purpose: the run conf says fail=true")
        return conf.get("value")

    work()


example_child()
# [END howto_child]

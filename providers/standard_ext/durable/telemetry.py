"""The ``resumable_job.*`` metrics and decision span of ``ResumableJobMixin``, emitted for the durable decision."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from airflow.sdk.observability import stats
from opentelemetry import trace

from standard_ext.durable.decision import Decision

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.trace import Span

    from standard_ext.durable.decision import SavedRun

tracer = trace.get_tracer(__name__)

# The mixin's names where the decision is the mixin's, so dashboards built for it keep working;
# TRIGGER_SAVED has no counterpart there (the mixin cannot save before submitting), nor CLEAR_FAILED
# (the mixin resubmits a failed job).
DECISION_METRICS = {
    Decision.TRIGGER: "resumable_job.fresh_submit",
    Decision.TRIGGER_SAVED: "resumable_job.saved_id_submit",
    Decision.RECONNECT: "resumable_job.reconnect_success",
    Decision.ALREADY_FINISHED: "resumable_job.already_succeeded",
    Decision.RESUBMIT: "resumable_job.terminal_resubmit",
    Decision.CLEAR_FAILED: "resumable_job.clear_failed",
}


# The span's ``resumable.decision`` values, the mixin's where it has the decision: a query written for
# the mixin's spans finds ours. TRIGGER_SAVED is ours alone, named as its counter is.
SPAN_DECISIONS = {
    Decision.TRIGGER: "fresh_submit",
    Decision.TRIGGER_SAVED: "saved_id_submit",
    Decision.RECONNECT: "reconnect",
    Decision.ALREADY_FINISHED: "already_succeeded",
    Decision.RESUBMIT: "terminal_resubmit",
    Decision.CLEAR_FAILED: "clear_failed",
}


@contextmanager
def decision_span(*, operator: str, external_id_key: str) -> Iterator[Span]:
    """
    Open the span the mixin opens around its resume decision.

    :param operator: the operator's class name.
    :param external_id_key: the ``task_state_store`` key the run is saved under.
    """
    with tracer.start_as_current_span("resumable_job.resume_decision") as span:
        span.set_attribute("operator", operator)
        span.set_attribute("resumable.external_id_key", external_id_key)
        yield span


def record_decision(
    span: Span,
    *,
    decision: Decision,
    saved: SavedRun | None,
    child_state: str | None,
    tags: dict[str, str],
) -> None:
    """
    Count the decision and describe it on the span, with the mixin's attribute names.

    :param span: the span from :func:`decision_span`.
    :param decision: what the operator decided.
    :param saved: the record it decided on, if any.
    :param child_state: the saved run's state, if it was looked up and found.
    :param tags: metric tags (``operator``, and ``team_name`` in multi-team deployments).
    """
    span.set_attribute("resumable.decision", SPAN_DECISIONS[decision])
    if saved is not None:
        span.set_attribute("resumable.external_id", saved.run_id)
        span.set_attribute("resumable.prior_status", child_state or "not_found")
        stats.incr("resumable_job.reconnect_attempt", tags=tags)
    stats.incr(DECISION_METRICS[decision], tags=tags)

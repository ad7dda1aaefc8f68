"""``cancel_on_kill``'s sign-in: read the connection, sign in, check the reads a cancel makes; ride out blips."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException

from standard_ext.cancel import api as cancel_api
from standard_ext.wait import schedule as poll_schedule

if TYPE_CHECKING:
    from collections.abc import Callable

    import standard_ext.api.access
    import standard_ext.api.exchange

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Signing in from execute(): no SIGKILL waits there, only execution_timeout.
SIGN_IN_SECONDS = 30.0
SIGN_IN_REQUEST_SECONDS = 10.0
#: How long a sign-in keeps trying while the API server fails (nothing answers, a timeout, a 5xx): longer
#: than an API server takes to restart (about a minute on 2 cores), shorter than the scheduler's 300 s
#: task_instance_heartbeat_timeout. Past it the try fails, and its retries apply.
SIGN_IN_RETRY_SECONDS = 120.0
#: The wait after the first failed sign-in; each next wait doubles, up to :data:`SIGN_IN_LONGEST_WAIT`.
SIGN_IN_FIRST_WAIT = 1.0
#: The longest wait between two sign-ins.
SIGN_IN_LONGEST_WAIT = 15.0


def is_first_try_since_clear(*, ti: Any, retries: int | None) -> bool:
    """
    Whether this is the first try since the task was last cleared (or created), so no try triggered yet.

    Airflow's own reckoning (``max_tries - retries + 1``): a clear sets ``max_tries`` to the try
    number plus ``retries``, and automatic retries leave it. A try a scheduler reset added counts as a
    later one.
    """
    return bool(ti.try_number <= ti.max_tries - (retries or 0) + 1)


def sign_in(
    *,
    task_id: str,
    conn_id: str,
    final: bool = True,
    check: Callable[[standard_ext.api.access.ApiAccess], standard_ext.api.exchange.Exchange[list[str]]]
    | None = None,
    purpose: str = "cancel_on_kill",
    needs: str = "a cancel needs both (and edit on the child Dag's runs)",
) -> standard_ext.api.access.ApiAccess:
    """
    Read the connection and get a token, or raise naming the connection (see :func:`~standard_ext.operators.modes.cancel.prepare`).

    The API server's own failures (nothing answered, a timeout, a 5xx, a 429) are retried, with waits
    that double from :data:`SIGN_IN_FIRST_WAIT` up to :data:`SIGN_IN_LONGEST_WAIT`, for
    :data:`SIGN_IN_RETRY_SECONDS`: an API server restarting must not end the task.

    :param final: missing or refused credentials fail for good (:class:`AirflowFailException`); else
        every error is an :class:`AirflowException`, which the task's retries apply to.
    :param check: signs in and asks for what the option will need
        (:func:`standard_ext.cancel.api.sign_in_and_check`, say), returning the permissions the user
        lacks; the task fails as for refused credentials, naming each. Without it, only the sign-in.
    :param purpose: the option that needs the API, named in every error.
    :param needs: what the option needs, said after the missing permissions.
    """
    prefix = f"Task {task_id!r}: {purpose}"
    give_up = AirflowFailException if final else AirflowException
    try:
        access = cancel_api.ApiAccess.from_connection(BaseHook.get_connection(conn_id), conn_id=conn_id)
    except AirflowNotFoundException:
        raise give_up(
            f"{prefix} needs the Airflow connection {conn_id!r} (airflow_api_conn_id), which is not "
            "defined: an http connection whose host is the API server's URL and whose login may edit "
            "Dag runs"
        ) from None
    except ValueError as e:
        raise give_up(f"{prefix}: {e}") from None
    missing = call_riding_out_blips(
        lambda: cancel_api.sign_in(access) if check is None else check(access),
        access=access,
        prefix=prefix,
        final=final,
    )
    if isinstance(missing, list) and missing:
        raise give_up(
            f"{prefix}: the user {access.username!r} of connection {conn_id!r} may not "
            + " nor ".join(missing)
            + f"; {needs}"
        )
    return access


def call_riding_out_blips(
    make: Callable[[], standard_ext.api.exchange.Exchange[T]],
    *,
    access: standard_ext.api.access.ApiAccess,
    prefix: str,
    final: bool,
    what: str = "",
    before_each: Callable[[], None] | None = None,
) -> T:
    """
    Run the exchange ``make()`` builds, building and running it again while the API server fails.

    Nothing answered, a timeout, a 5xx or a 429 is tried again after a wait that doubles from
    :data:`SIGN_IN_FIRST_WAIT` up to :data:`SIGN_IN_LONGEST_WAIT`, for :data:`SIGN_IN_RETRY_SECONDS`;
    then an :class:`AirflowException` leaves it to the task's retries. Any other refusal raises at once.

    :param make: builds the exchange afresh (an exchange runs once).
    :param access: the access it talks for (named in errors).
    :param prefix: the start of every error: the task and the option.
    :param final: a refusal fails for good (:class:`AirflowFailException`), else retries apply.
    :param what: a few words for the warnings, beside the sign-in's own.
    :param before_each: called before each attempt, the first included; it may raise to stop them (a
        stop of the task: nothing is sent after one).
    """
    give_up = AirflowFailException if final else AirflowException
    where = f"the Airflow API at {access.base_url} (connection {access.conn_id!r})"
    started, wait = time.time(), SIGN_IN_FIRST_WAIT
    while True:
        if before_each is not None:
            before_each()
        try:
            return cancel_api.run_sync(make(), seconds=SIGN_IN_SECONDS, per_request=SIGN_IN_REQUEST_SECONDS)
        except cancel_api.ApiError as e:
            if not is_transient(e):
                if e.status in (401, 403) and not what:
                    verdict = "refused the credentials"
                else:
                    verdict = "refused" if e.status in (401, 403) else "failed"
                raise give_up(f"{prefix}: {where} {verdict}: {e}") from None
            failing_for = time.time() - started
            if failing_for + wait > SIGN_IN_RETRY_SECONDS:
                raise AirflowException(
                    f"{prefix}: {where} kept failing for {failing_for:.0f} s: {e}; the task's retries apply"
                ) from None
            log.warning(
                "Could not reach the Airflow API; trying again"
                if what
                else "Could not sign in to the Airflow API; trying again",
                doing=what or "sign in",
                conn_id=access.conn_id,
                error=str(e),
                failing_for=round(failing_for, 1),
                next_in=wait,
            )
            poll_schedule.wait(wait)
            wait = min(wait * 2, SIGN_IN_LONGEST_WAIT)


def is_transient(error: cancel_api.ApiError) -> bool:
    """Whether a failed request is the API server's passing trouble: nothing answered, a 5xx, or a 429."""
    return error.status is None or error.status >= 500 or error.status == 429

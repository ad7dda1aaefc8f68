"""Checks on ``trigger_dag_run()`` arguments, made before any message is sent."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from airflow.sdk.configuration import conf as airflow_conf
from airflow.sdk.definitions._internal.node import validate_key

# The run_id column is a String(250) (airflow.models.base.StringID).
MAX_RUN_ID_LENGTH = 250


def check_dag_id(dag_id: object) -> str:
    """Return ``dag_id`` if Airflow would accept it as a Dag id; raise ``ValueError`` naming it if not."""
    if not isinstance(dag_id, str) or not dag_id:
        raise ValueError(f"dag_id must be a non-empty string, got {dag_id!r}")
    try:
        validate_key(dag_id)
    except ValueError as e:
        raise ValueError(f"dag_id {dag_id!r} is not a valid Dag id: {e}") from None
    return dag_id


def check_run_id(run_id: object) -> str:
    """
    Return ``run_id`` if the server would accept it; raise ``ValueError`` naming it if not.

    The server validates run ids against ``[scheduler] allowed_run_id_pattern`` when it creates the run.
    Checking here as well gives the error before anything is sent, and keeps characters such as ``/``
    or ``?`` out of the execution-API URL the run id is placed in.
    """
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise ValueError(f"run_id {run_id[:40]!r}... is {len(run_id)} characters; at most 250 are allowed")
    if ".." in run_id and not airflow_conf.getboolean("core", "allow_double_dot_in_ids", fallback=False):
        raise ValueError(f"run_id {run_id!r} must not contain '..'")
    # Imported here, not at the top: the plugin imports this module in every Airflow process, and
    # loading the ORM models is not this module's business until a run id is checked.
    from airflow.models.dagrun import RUN_ID_REGEX

    # Run ids in the form Airflow generates are accepted whatever the configured pattern says, as the
    # server does (DagRun.validate_run_id).
    if re.match(RUN_ID_REGEX, run_id):
        return run_id
    pattern = airflow_conf.get("scheduler", "allowed_run_id_pattern", fallback="").strip()
    if pattern and not re.match(pattern, run_id):
        raise ValueError(f"run_id {run_id!r} does not match [scheduler] allowed_run_id_pattern {pattern!r}")
    return run_id


def check_conf(conf: object) -> dict[str, Any] | None:
    """Return ``conf`` if it is ``None`` or a JSON-serializable dict; raise ``ValueError`` if not."""
    if conf is None:
        return None
    if not isinstance(conf, dict):
        raise ValueError(f"conf must be a dict or None, got {type(conf).__name__}: {conf!r}")
    try:
        json.dumps(conf)
    except (TypeError, ValueError) as e:
        raise ValueError(f"conf must be JSON-serializable: {e}") from None
    return conf


def check_aware_datetime(name: str, value: object) -> datetime | None:
    """Return ``value`` if it is ``None`` or a timezone-aware datetime; raise naming ``name`` if not."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a timezone-aware datetime or None, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware, got the naive datetime {value.isoformat()}")
    return value

"""The durable mode's decision from the saved run, and its telemetry. May import only :mod:`standard_ext.api`."""

from __future__ import annotations

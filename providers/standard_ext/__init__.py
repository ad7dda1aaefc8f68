"""Provider package: a ``TriggerDagRunOperator`` that owns its trigger-and-wait loop, crash-safely."""

from __future__ import annotations

__version__ = "0.1.0"

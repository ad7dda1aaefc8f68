"""Launching a child run: the plan and the claim, send and publish of a run. May import only the folders below it (``api``, ``durable``, ``wait``)."""

from __future__ import annotations

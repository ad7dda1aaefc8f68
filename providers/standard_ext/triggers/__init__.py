"""Triggers of the provider: waiting on child Dag runs in the triggerer instead of in a worker slot."""

from __future__ import annotations

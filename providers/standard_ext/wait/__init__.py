"""The synchronous wait in a worker slot and what it is built on: the poll schedule and window, history, counts, progress, run states, outages, stops and results. May import only :mod:`standard_ext.api` and :mod:`standard_ext.durable`."""

from __future__ import annotations

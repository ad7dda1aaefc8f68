"""The one-task fan-out's pieces: checks, logical dates, state, record, packing, polling and timing. May import only the folders below it (``api`` to ``cancel``)."""

from __future__ import annotations

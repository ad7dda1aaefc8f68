"""The wiring of the operators' modes (durable, deferrable, fan-out, cancel, timeout) and their shared helpers. May import every folder of the package but the two public operator modules above it."""

from __future__ import annotations

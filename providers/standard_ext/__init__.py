"""Provider package: a ``TriggerDagRunOperator`` that owns its trigger-and-wait loop, crash-safely."""

from __future__ import annotations

# The one place the version is written: hatch reads it into the distribution's metadata
# ([tool.hatch.version] in pyproject.toml), and the provider info and the docs import it from here.
__version__ = "0.1.0"

"""
The distribution's own import name, ``airflow_durable_trigger``: the public API in one place.

Airflow finds a provider's example Dags by importing a module named after the distribution
(``airflow-durable-trigger`` becomes ``airflow_durable_trigger``) and looking for ``example_dags`` in
it; without this module every dag-processor logs an import error at start. It has no example Dags (they
live in the project's ``dags/`` folder), so Airflow adds no bundle for it.
"""

from __future__ import annotations

from standard_ext import __version__

__all__ = ["__version__"]

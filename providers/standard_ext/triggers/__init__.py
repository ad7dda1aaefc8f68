"""
Triggers of the provider: waiting on child Dag runs in the triggerer instead of in a worker slot.

May import the folders below it (``api``, ``durable``, ``wait``, ``launch``, ``cancel``, ``fanout``), never
``operators``. ``dag_run.DagRunTrigger`` and ``dag_runs.DagRunsTrigger`` keep their classpaths: Airflow's
``trigger`` table stores them.
"""

from __future__ import annotations

"""Cancelling child runs through Airflow's REST API: the decision, the API calls and the runs to cancel. May import only the folders below it (``api``, ``durable``, ``wait``, ``launch``)."""

from __future__ import annotations

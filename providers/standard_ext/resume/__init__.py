"""A failed child run resumes where it failed: its failed tasks cleared through Airflow's public REST API."""

from __future__ import annotations

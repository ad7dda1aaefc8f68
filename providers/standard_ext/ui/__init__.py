"""The "Child runs" tab: a task instance page's view of the child runs its task triggered, and the route that feeds it."""

from __future__ import annotations

"""The simple auth manager with one user who may read every Dag but the child: rights per Dag, as FAB gives."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

from tests.integration.names import CHILD

#: A viewer who may not read the child Dag.
BLIND = "blind"


class ScopedAuthManager(SimpleAuthManager):
    """Refuses :data:`BLIND` everything on the child Dag; otherwise the simple auth manager's roles."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        if user.username == BLIND and details is not None and details.id == CHILD:
            return False
        return bool(
            super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        )

"""The provider's extra link, at the classpath ``get_provider_info`` lists: ``standard_ext.links.TriggeredDagRunsLink``.

The class lives with the operator's wiring (:mod:`standard_ext.operators.modes.link`), below the operator
that names it in ``operator_extra_links``, so the operator imports nothing from the top level. Airflow
stores a link by its name and XCom key (``_link_`` and the class name), never by its module.
"""

from __future__ import annotations

from standard_ext.operators.modes.link import TriggeredDagRunsLink

__all__ = ["TriggeredDagRunsLink"]

"""
Operators of the provider: ``trigger_dagrun`` and ``trigger_dagruns``, the two public modules.

The top floor: may import every folder of the package; the wiring of the modes is in ``operators/modes``.
"""

from __future__ import annotations

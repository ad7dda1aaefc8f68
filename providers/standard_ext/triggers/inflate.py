"""Building a trigger from its stored keyword arguments: a bad one fails that trigger, never the triggerer."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def refused_as_type_error(trigger: str) -> Iterator[None]:
    """
    Re-raise any error of the block as a ``TypeError`` naming ``trigger``.

    **Why:** the triggerer builds each trigger in its loop (``TriggerRunner.create_triggers``) and catches
    only ``TypeError`` there ("Trigger failed to inflate"), which fails that trigger and so its task. Any
    other error, such as the ``ValueError`` of a bad ``poke_interval``, escapes the loop and stops the
    trigger runner, and with it every trigger of that triggerer.

    :param trigger: the trigger's class name, for the message.
    """
    try:
        yield
    except TypeError:
        raise
    except Exception as e:
        raise TypeError(
            f"{trigger} cannot be built from its keyword arguments: {type(e).__name__}: {e}"
        ) from e

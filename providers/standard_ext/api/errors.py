"""The errors a request to the API server raises, their messages free of any URL's ``user:password@``."""

from __future__ import annotations

from standard_ext.api.redaction import without_userinfo


class ApiError(Exception):
    """
    A request to the API server failed; ``status`` is ``None`` when nothing answered.

    Its message never holds a URL's ``user:password@``, and (where :mod:`~standard_ext.cancel.api` and
    the modules it uses build it) no password or token, even one the server echoed back.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(without_userinfo(message))
        self.status = status


class UnsafePathError(ApiError, ValueError):
    """
    A path segment (a run id, say) is empty, ``.`` or ``..``: nothing was sent.

    A ``ValueError`` for what it is, and an :class:`ApiError` so that the callers, which report a failed
    request and go on (``on_kill`` runs in a signal handler), report this one too.
    """

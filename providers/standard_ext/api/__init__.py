"""The public REST API client pieces: access (URL, credentials, TLS), errors, one exchange, connection extras, redaction. Imports nothing else of the package."""

from __future__ import annotations

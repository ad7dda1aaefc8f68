"""The access to the API server, read from the ``http`` connection, and the ids of the parent task."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from airflow.sdk.log import mask_secret

from standard_ext.api.errors import UnsafePathError
from standard_ext.api.extras import cert_extra, proxies_extra, verify_extra
from standard_ext.api.redaction import redact, split_userinfo

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: Path segments that ``quote`` leaves as they are and that would change the path: httpx resolves
#: ``dagRuns/..`` to the Dag itself, and ``dags//dagRuns`` is another route (or none).
_UNSAFE_SEGMENTS = frozenset({"", ".", ".."})


def base_url(*, host: str, schema: str | None, port: int | None) -> str:
    """
    Build the API server's base URL from a connection, as the ``http`` provider's ``HttpHook`` does.

    :param host: a host, or a whole URL (``http://airflow-api:8080``), kept as it is.
    :param schema: the URL scheme when ``host`` has none (``http`` by default).
    :param port: appended when set.
    """
    url = host if "://" in host else f"{schema or 'http'}://{host}"
    if port:
        url = f"{url}:{port}"
    return url.rstrip("/")


@dataclass
class ApiAccess:
    """
    Where the API server is, how to reach it and whom to sign in as; the token once signed in.

    **Purpose:** what every exchange of :mod:`~standard_ext.cancel.api` talks with, read once from the
    ``http`` connection.

    **How it works:** the password goes to :func:`~airflow.sdk.log.mask_secret` when the access is built,
    and each token when :func:`~standard_ext.api.calls.sign_in` obtains it, so that no log shows them. A
    ``user:password@`` in ``base_url`` is removed then (and its password masked): httpx would send it as
    Basic credentials in place of the bearer token, and every error message would print it. ``verify``,
    ``cert`` and ``proxies`` are the connection's extras as ``HttpHook`` reads them; :meth:`client_options`
    turns them into an httpx client's settings, which :func:`~standard_ext.api.exchange.run_sync` and
    :func:`~standard_ext.api.exchange.run_async` use.

    **What it does not do:** show a secret in its repr (not the password, the token, nor the TLS and
    proxy settings: a proxy's URL may hold a password); follow a redirect.

    Example::

        access = ApiAccess.from_connection(BaseHook.get_connection(conn_id), conn_id=conn_id)
        run_sync(sign_in(access), seconds=5, per_request=2)
        async with httpx.AsyncClient(**access.client_options(asynchronous=True)) as client:
            await run_async(cancel_run(access, ...), seconds=5, per_request=2, client=client)
    """

    conn_id: str
    base_url: str
    username: str = field(repr=False)
    password: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    #: ``True`` (the default CA bundle), ``False`` (no check), or the path of a CA bundle or folder.
    verify: bool | str = field(default=True, repr=False)
    #: A client certificate: one file (certificate and key), or ``(certificate, key)``.
    cert: str | tuple[str, str] | None = field(default=None, repr=False)
    #: requests' form: ``{"https": "http://proxy:3128"}``; a key may name a host (``"all://api"``).
    proxies: dict[str, str | None] = field(default_factory=dict, repr=False)
    #: Whether a token obtained from now on goes to ``mask_secret``. Off in the SIGTERM handler:
    #: ``mask_secret`` also tells the supervisor, over the channel whose lock the interrupted main thread
    #: may hold, which would hang the cancel until the SIGKILL. Nothing there prints the token, and the
    #: process ends seconds later.
    mask_tokens: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        self.base_url, in_url = split_userinfo(self.base_url)
        for secret in (self.password, *in_url, *self._proxy_passwords()):
            if secret:
                mask_secret(secret)

    @classmethod
    def from_connection(cls, conn: Connection, *, conn_id: str) -> ApiAccess:
        """
        Read the connection and its extras; raise ``ValueError`` naming what it lacks or gets wrong.

        :param conn: the connection (conn_type ``http``); its extras ``verify`` (or ``verify_ssl``),
            ``cert`` and ``proxies`` (or ``proxy``) are read as ``HttpHook`` reads them.
        :param conn_id: its id, named in errors.
        """
        if not conn.host:
            raise ValueError(f"connection {conn_id!r} has no host (the API server's URL)")
        if not conn.login:
            raise ValueError(f"connection {conn_id!r} has no login (a user allowed to edit Dag runs)")
        extra = conn.extra_dejson
        access = cls(
            conn_id=conn_id,
            base_url=base_url(host=conn.host, schema=conn.schema, port=conn.port),
            username=conn.login,
            password=conn.password or "",
            verify=verify_extra(extra, conn_id=conn_id),
            cert=cert_extra(extra, conn_id=conn_id),
            proxies=proxies_extra(extra, conn_id=conn_id),
        )
        # Reads the CA bundle and the client certificate now: a wrong path fails the task in execute(),
        # naming the connection, rather than the cancel in on_kill.
        access.client_options()
        return access

    def url(self, *segments: str) -> str:
        """
        The URL of an API path, each segment quoted whole (run ids hold ``:`` and ``+``, may hold ``/``).

        :raises UnsafePathError: a segment is empty, ``.`` or ``..``, before anything is sent.
        """
        for segment in segments:
            if segment in _UNSAFE_SEGMENTS:
                path = "/".join(segments)
                raise UnsafePathError(
                    f"refusing the path segment {segment!r} in {path!r}: it would name another path"
                )
        # safe="": "/", "?", "#" and "%" are quoted too, so that an id holding them stays one segment.
        return "/".join([self.base_url, *(quote(s, safe="") for s in segments)])

    def client_options(self, *, asynchronous: bool = False) -> dict[str, Any]:
        """
        The keyword arguments of an ``httpx.Client`` (``httpx.AsyncClient`` if ``asynchronous``).

        ``verify`` and ``cert`` become one SSL context (httpx deprecates paths in either); each proxy a
        transport of its own, given that context too (a mounted transport does not take the client's).

        :raises ValueError: the CA bundle, the certificate or a proxy URL cannot be used.
        """
        try:
            context = _ssl_context(self.verify, self.cert)
            transport = httpx.AsyncHTTPTransport if asynchronous else httpx.HTTPTransport
            mounts = {
                pattern: None if url is None else transport(proxy=url, verify=context)
                for pattern, url in _proxy_patterns(self.proxies).items()
            }
        except (OSError, ValueError, ImportError) as e:  # ssl.SSLError is an OSError; socks needs socksio
            # A proxy's URL, password included, may be in httpx's words.
            raise ValueError(
                f"connection {self.conn_id!r}: its verify, cert or proxies do not work: "
                f"{redact(str(e), self.secrets())}"
            ) from None
        # Never follow a redirect: httpx would send a 307's body again (the password, when signing in)
        # to whatever host it names, and the bearer token along to another path of the same host. The
        # API server has no reason to redirect these calls; a redirect is reported as the error it is.
        return {"verify": context, "mounts": mounts, "follow_redirects": False}

    def secrets(self) -> list[str]:
        """What no error text may hold: the password, the token, a proxy's password."""
        return [s for s in (self.password, self.token, *self._proxy_passwords()) if s]

    def _proxy_passwords(self) -> list[str]:
        return [password for url in self.proxies.values() if url for password in split_userinfo(url)[1]]


@dataclass(frozen=True)
class TaskRef:
    """The parent task instance: ids and the try that is being stopped."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    #: As the try started; only a clear raises it (``None`` where not known).
    max_tries: int | None = None

    @classmethod
    def of(cls, ti: Any) -> TaskRef:
        """The ids and try of a task instance: a task's ``ti``, or a trigger's ``task_instance``."""
        max_tries = getattr(ti, "max_tries", None)
        return cls(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if ti.map_index is None else int(ti.map_index),
            try_number=int(ti.try_number),
            max_tries=max_tries if isinstance(max_tries, int) else None,
        )


def _proxy_patterns(proxies: dict[str, str | None]) -> dict[str, str | None]:
    """Requests' proxy keys (``https``, ``https://host``) as httpx's mount patterns (``https://``)."""
    return {key if "://" in key else f"{key}://": url for key, url in proxies.items()}


def _ssl_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext | bool:
    if cert is None and isinstance(verify, bool):
        # httpx's own: its default CA bundle (or SSL_CERT_FILE), or no check at all.
        return verify
    if isinstance(verify, str):
        # A CA bundle file, or a folder of hashed CA certificates: requests takes either.
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    else:
        context = httpx.create_ssl_context(verify=verify)
    if isinstance(cert, str):
        context.load_cert_chain(cert)
    elif cert is not None:
        context.load_cert_chain(*cert)
    return context

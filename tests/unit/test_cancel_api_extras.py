"""The connection's extras ``verify``, ``cert`` and ``proxies``, read as ``HttpHook`` does, and used."""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from airflow.sdk import Connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from standard_ext.cancel import api as cancel_api
from tests.fake_api import TOKEN, FakeApi, closed_port
from tests.unit.conftest import API_LOGIN, API_PASSWORD

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.timeout(30)

RUNNERS = ["sync", "async"]


@dataclass(frozen=True)
class Pki:
    """A CA of its own, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    ca: str
    server: str
    server_key: str
    client: str
    client_key: str
    client_both: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    folder: Path, name: str, *, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, usage: Any
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_cert, issuer_key = ca if ca is not None else (None, key)
    now = datetime.now(tz=UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if ca is None:
        usage_flags = {"key_cert_sign": True, "crl_sign": True, "digital_signature": False}
    else:
        usage_flags = {"key_cert_sign": False, "crl_sign": False, "digital_signature": True}
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    builder = builder.add_extension(
        x509.KeyUsage(
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            encipher_only=False,
            decipher_only=False,
            **usage_flags,
        ),
        critical=True,
    )
    cert = builder.sign(issuer_key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = _issue(folder, "ca", ca=None, usage=None)
    _issue(folder, "server", ca=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(folder, "client", ca=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    both = folder / "client-both.pem"
    both.write_bytes((folder / "client.pem").read_bytes() + (folder / "client.key").read_bytes())
    return Pki(
        ca=str(folder / "ca.pem"),
        server=str(folder / "server.pem"),
        server_key=str(folder / "server.key"),
        client=str(folder / "client.pem"),
        client_key=str(folder / "client.key"),
        client_both=str(both),
    )


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeApi]]:
    """Start a scripted API with the user ``admin`` (and ``fields``); each is stopped at the end."""
    started: list[FakeApi] = []

    def start(**fields: Any) -> FakeApi:
        api = FakeApi(users={API_LOGIN: API_PASSWORD}, **fields)
        api.start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


def tls(pki: Pki, *, client_cert: bool = False) -> ssl.SSLContext:
    """The server's side: its certificate; with ``client_cert``, one the CA signed required of clients."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server, pki.server_key)
    if client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
    return context


def connection(host: str, **extra: Any) -> Connection:
    return Connection(
        conn_id="api",
        conn_type="http",
        host=host,
        login=API_LOGIN,
        password=API_PASSWORD,
        extra=json.dumps(extra) if extra else None,
    )


def access_with(host: str, **extra: Any) -> cancel_api.ApiAccess:
    return cancel_api.ApiAccess.from_connection(connection(host, **extra), conn_id="api")


def sign_in(access: cancel_api.ApiAccess, runner: str) -> str:
    exchange = cancel_api.sign_in(access)
    if runner == "sync":
        return cancel_api.run_sync(exchange, seconds=5, per_request=2)
    return asyncio.run(cancel_api.run_async(exchange, seconds=5, per_request=2))


class TestReadAsHttpHookReadsThem:
    @pytest.mark.parametrize(
        ("extra", "expected"),
        [
            ({}, True),
            ({"verify": False}, False),
            ({"verify": True}, True),
            # A connection defined by URI has strings for extras.
            ({"verify": "false"}, False),
            ({"verify": "False"}, False),
            ({"verify": " TRUE "}, True),
            ({"verify_ssl": False}, False),
            ({"verify": None, "verify_ssl": "false"}, False),
            # "verify" before its alias, as HttpHook.
            ({"verify": True, "verify_ssl": False}, True),
        ],
    )
    def test_verify(self, extra: dict[str, Any], expected: bool) -> None:
        assert access_with("http://api", **extra).verify is expected

    def test_verify_a_ca_bundle(self, pki: Pki) -> None:
        assert access_with("http://api", verify=pki.ca).verify == pki.ca

    @pytest.mark.parametrize("value", [0, "", ["ca.pem"]])
    def test_verify_of_another_kind_is_refused(self, value: Any) -> None:
        with pytest.raises(ValueError, match="connection 'api': extra 'verify' must be"):
            access_with("http://api", verify=value)

    def test_a_ca_bundle_that_is_not_there_is_refused_naming_the_connection(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="connection 'api': its verify, cert or proxies do not work"):
            access_with("http://api", verify=str(tmp_path / "missing.pem"))

    def test_cert(self, pki: Pki) -> None:
        assert access_with("http://api", cert=pki.client_both).cert == pki.client_both
        assert access_with("http://api", cert=[pki.client, pki.client_key]).cert == (
            pki.client,
            pki.client_key,
        )

    @pytest.mark.parametrize("value", [3, ["a.pem"], ["a.pem", "b.key", "c"]])
    def test_cert_of_another_kind_is_refused(self, value: Any) -> None:
        with pytest.raises(ValueError, match="connection 'api': extra 'cert' must be"):
            access_with("http://api", cert=value)

    def test_proxies(self) -> None:
        proxies = {"http": "http://proxy:3128", "all://api": None}

        assert access_with("http://api", proxies=proxies).proxies == proxies
        # The alias, and "proxies" before it.
        assert access_with("http://api", proxy={"https": "http://p:1"}).proxies == {"https": "http://p:1"}
        assert access_with("http://api", proxies={}, proxy={"https": "http://p:1"}).proxies == {}

    @pytest.mark.parametrize("value", ["http://user:proxy-pass@proxy:3128", {"ftp": "http://proxy"}])
    def test_proxies_of_another_kind_are_refused_without_showing_them(self, value: Any) -> None:
        with pytest.raises(ValueError, match="connection 'api': extra 'proxies' must map") as info:
            access_with("http://api", proxies=value)

        assert "proxy-pass" not in str(info.value)

    def test_a_proxy_httpx_cannot_use_is_refused_without_its_password(self) -> None:
        with pytest.raises(ValueError, match="its verify, cert or proxies do not work") as info:
            access_with("http://api", proxies={"http": "ftp://user:proxy-pass@proxy:21"})

        assert "proxy-pass" not in str(info.value)


class TestVerify:
    @pytest.mark.parametrize("runner", RUNNERS)
    @pytest.mark.parametrize("extra", [{}, {"verify": True}, {"verify": "true"}])
    def test_a_certificate_no_ca_vouches_for_is_refused(
        self, serve: Callable[..., FakeApi], pki: Pki, runner: str, extra: dict[str, Any]
    ) -> None:
        api = serve(tls=tls(pki))

        with pytest.raises(cancel_api.ApiError, match="auth/token failed: ConnectError.*CERTIFICATE") as info:
            sign_in(access_with(api.base_url, **extra), runner)

        assert info.value.status is None
        assert api.requests == []

    @pytest.mark.parametrize("runner", RUNNERS)
    @pytest.mark.parametrize("verify", ["ca", False, "false"])
    def test_the_connections_ca_or_no_check(
        self, serve: Callable[..., FakeApi], pki: Pki, runner: str, verify: Any
    ) -> None:
        api = serve(tls=tls(pki))

        token = sign_in(access_with(api.base_url, verify=pki.ca if verify == "ca" else verify), runner)

        assert token == api.issued[0]


class TestCert:
    @pytest.mark.parametrize("runner", RUNNERS)
    def test_a_server_that_requires_one_refuses_a_client_without(
        self, serve: Callable[..., FakeApi], pki: Pki, runner: str
    ) -> None:
        api = serve(tls=tls(pki, client_cert=True))

        with pytest.raises(cancel_api.ApiError, match="auth/token failed") as info:
            sign_in(access_with(api.base_url, verify=pki.ca), runner)

        assert info.value.status is None
        assert api.requests == []

    @pytest.mark.parametrize("runner", RUNNERS)
    @pytest.mark.parametrize("cert", ["one file", "certificate and key"])
    def test_the_connections_certificate_is_presented(
        self, serve: Callable[..., FakeApi], pki: Pki, runner: str, cert: str
    ) -> None:
        api = serve(tls=tls(pki, client_cert=True))
        files = pki.client_both if cert == "one file" else [pki.client, pki.client_key]

        token = sign_in(access_with(api.base_url, verify=pki.ca, cert=files), runner)

        assert token == api.issued[0]


class TestProxies:
    @pytest.mark.parametrize("runner", RUNNERS)
    @pytest.mark.parametrize("key", ["http", "all", "all://127.0.0.1"])
    def test_requests_go_through_the_connections_proxy(
        self, serve: Callable[..., FakeApi], runner: str, key: str
    ) -> None:
        # Nothing listens where the API server is said to be: only the proxy can answer.
        proxy = serve()
        behind = f"http://127.0.0.1:{closed_port()}"

        token = sign_in(access_with(behind, proxies={key: proxy.base_url}), runner)

        assert token == proxy.issued[0]
        assert proxy.routes() == [TOKEN]
        # A whole URL in the request line: the request was sent to a proxy, for the server behind it.
        assert proxy.requests[0].target == f"{behind}/auth/token"

    def test_a_host_can_go_without_one(self, serve: Callable[..., FakeApi]) -> None:
        api = serve()
        proxies = {"http": f"http://127.0.0.1:{closed_port()}", "all://127.0.0.1": None}

        assert sign_in(access_with(api.base_url, proxies=proxies), "sync") == api.issued[0]


class TestSharedClient:
    def test_set_up_with_client_options_it_uses_the_extras(
        self, serve: Callable[..., FakeApi], pki: Pki
    ) -> None:
        # How cancel_runs makes the client its cancels share.
        api = serve(tls=tls(pki, client_cert=True))
        api.runs[("child", "r1")] = "running"
        access = access_with(api.base_url, verify=pki.ca, cert=pki.client_both)

        async def cancel() -> cancel_api.Outcome:
            async with httpx.AsyncClient(**access.client_options(asynchronous=True)) as client:
                exchange = cancel_api.cancel_run(access, dag_id="child", run_id="r1", reason="r")
                return await cancel_api.run_async(exchange, seconds=5, per_request=2, client=client)

        assert asyncio.run(cancel()).cancelled

    def test_its_options_are_httpx_clients_arguments(self) -> None:
        access = access_with("http://api", verify=False, proxies={"https": "http://proxy:3128"})

        with httpx.Client(**access.client_options()) as client:
            assert client.follow_redirects is False
        options = access.client_options(asynchronous=True)
        assert isinstance(options["mounts"]["https://"], httpx.AsyncHTTPTransport)

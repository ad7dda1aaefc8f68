"""A redirect is never followed: the password and the token stay with the API server the connection names."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
import pytest

from standard_ext.cancel import api as cancel_api
from tests.fake_api import TOKEN, FakeApi
from tests.unit.conftest import API_LOGIN, API_PASSWORD

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(30)

RUNNERS = ["sync", "async"]


@pytest.fixture
def elsewhere() -> Iterator[FakeApi]:
    """Another server, that would answer as the API does: what reaches it, it could use."""
    server = FakeApi(users={API_LOGIN: API_PASSWORD})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redirecting(api: FakeApi, elsewhere: FakeApi) -> FakeApi:
    """The API server of the connection, answering every request ``307`` to ``elsewhere``."""
    api.redirect_to = elsewhere.base_url
    return api


def access_to(api: FakeApi, *, token: str | None = None) -> cancel_api.ApiAccess:
    return cancel_api.ApiAccess(
        conn_id="api", base_url=api.base_url, username=API_LOGIN, password=API_PASSWORD, token=token
    )


def run(exchange: cancel_api.Exchange[cancel_api.T], runner: str) -> cancel_api.T:
    if runner == "sync":
        return cancel_api.run_sync(exchange, seconds=5, per_request=2)
    return asyncio.run(cancel_api.run_async(exchange, seconds=5, per_request=2))


class TestNotFollowed:
    @pytest.mark.parametrize("runner", RUNNERS)
    def test_signing_in_the_password_is_not_sent_on(
        self, redirecting: FakeApi, elsewhere: FakeApi, runner: str
    ) -> None:
        # A 307 keeps the method and the body: followed, the password would go to the other server.
        with pytest.raises(cancel_api.ApiError, match="could not sign in: HTTP 307") as info:
            run(cancel_api.sign_in(access_to(redirecting)), runner)

        assert info.value.status == 307
        assert redirecting.routes() == [TOKEN]
        assert elsewhere.requests == []

    @pytest.mark.parametrize("runner", RUNNERS)
    def test_the_token_is_not_sent_on(self, redirecting: FakeApi, elsewhere: FakeApi, runner: str) -> None:
        # httpx would drop the Authorization header on its way to another host, not on a redirect to
        # another path of the same one; and the request itself (a PATCH and its body) would still go.
        access = access_to(redirecting, token="jwt-signed-in-before")

        with pytest.raises(cancel_api.ApiError, match="read the child Dag run: HTTP 307"):
            run(cancel_api.cancel_run(access, dag_id="child", run_id="r1", reason="r"), runner)

        assert elsewhere.requests == []

    def test_not_even_by_a_shared_client_that_would(self, redirecting: FakeApi, elsewhere: FakeApi) -> None:
        async def cancel() -> cancel_api.Outcome:
            async with httpx.AsyncClient(follow_redirects=True) as client:
                exchange = cancel_api.cancel_run(
                    access_to(redirecting), dag_id="child", run_id="r1", reason="r"
                )
                return await cancel_api.run_async(exchange, seconds=5, per_request=2, client=client)

        with pytest.raises(cancel_api.ApiError, match="HTTP 307"):
            asyncio.run(cancel())

        assert elsewhere.requests == []

    def test_nor_by_a_client_set_up_with_client_options(
        self, redirecting: FakeApi, elsewhere: FakeApi
    ) -> None:
        options = access_to(redirecting).client_options()

        with httpx.Client(**options) as client:
            response = client.post(f"{redirecting.base_url}/auth/token", json={"password": API_PASSWORD})

        assert response.status_code == 307
        assert elsewhere.requests == []

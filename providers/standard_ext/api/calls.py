"""The calls every conversation with the public REST API makes: signing in, an authorized request, its answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from airflow.sdk.log import mask_secret

from standard_ext.api.errors import ApiError
from standard_ext.api.exchange import Exchange, conversation
from standard_ext.api.redaction import server_reason

if TYPE_CHECKING:
    import standard_ext.api.access


@conversation
def sign_in(access: standard_ext.api.access.ApiAccess) -> Exchange[str]:
    """Get a token (``POST /auth/token``), keep it on ``access``, return it; a refusal raises ``ApiError``."""
    credentials = {"username": access.username, "password": access.password}
    response = yield httpx.Request("POST", access.url("auth", "token"), json=credentials)
    # 201 from the simple and FAB auth managers; 200 accepted from another one.
    expect(access, response, 201, 200, what="sign in")
    token = json_object(response).get("access_token")
    if not isinstance(token, str) or not token:
        raise ApiError(
            f"signing in at {access.base_url} returned no access_token", status=response.status_code
        )
    # Before anything else can print it: the first sign-in, and each after a 401, task or triggerer.
    if access.mask_tokens:
        mask_secret(token)
    access.token = token
    return token


def authorized(
    access: standard_ext.api.access.ApiAccess, method: str, url: str, *, body: dict[str, Any] | None = None
) -> Exchange[httpx.Response]:
    """Send one request with the bearer token, signing in first if needed and again after a 401."""
    if access.token is None:
        yield from sign_in(access)
    response = yield _bearer(access, method, url, body)
    if response.status_code == 401:
        # Tokens expire ([api_auth] jwt_expiration_time, a day by default): a long wait outlives one.
        yield from sign_in(access)
        response = yield _bearer(access, method, url, body)
    return response


def _bearer(
    access: standard_ext.api.access.ApiAccess, method: str, url: str, body: dict[str, Any] | None
) -> httpx.Request:
    return httpx.Request(method, url, json=body, headers={"Authorization": f"Bearer {access.token}"})


def expect(
    access: standard_ext.api.access.ApiAccess, response: httpx.Response, *statuses: int, what: str
) -> None:
    """Raise :class:`~standard_ext.api.errors.ApiError` (``could not {what}``, with the server's reason, no secret) unless the status is one of ``statuses``."""
    if response.status_code in statuses:
        return
    reason = server_reason(response, access.secrets())
    raise ApiError(
        f"could not {what}: HTTP {response.status_code} {reason}".rstrip(), status=response.status_code
    )


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; anything else raises :class:`~standard_ext.api.errors.ApiError`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(f"{response.request.url} answered something other than a JSON object")
    return body

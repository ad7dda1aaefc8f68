"""The credentials a test can know a task used, to check that none of them shows in a log."""

from __future__ import annotations

import httpx


def issued_token(base_url: str, username: str, password: str) -> str:
    """Sign in as the task's connection does (``POST /auth/token``) and return the access token."""
    resp = httpx.post(f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30)
    resp.raise_for_status()
    token: str = resp.json()["access_token"]
    return token


def known_secrets(base_url: str, username: str, password: str) -> dict[str, str]:
    """
    What must never show in a log, by what it is: the password, and a token issued for the same login.

    A token the task got is not the test's (each carries its own issue time), but every token the
    api-server issues starts with the same header segment (its algorithm and key id, base64url-encoded
    with sorted keys), so looking for that segment finds any of them, the task's included.
    """
    token, again = (issued_token(base_url, username, password) for _ in range(2))
    if token.split(".")[0] != again.split(".")[0]:
        raise RuntimeError("two tokens of this api-server start differently: their header finds no other")
    return {
        f"{username}'s password": password,
        f"a token issued to {username}": token,
        "the header every token of this api-server starts with": token.split(".")[0],
    }


def leaked(text: str, secrets: dict[str, str]) -> list[str]:
    """The names of the ``secrets`` that occur in ``text`` (names, never the values, for the failure message)."""
    return [name for name, value in secrets.items() if value and value in text]

"""The api-key check: a FastAPI dependency on every API route (``/v1/*``, ``/metrics``, the arena's API), so
pages and ``/health`` stay open and every router agrees on who may call.

    router.add_api_route(path, endpoint, dependencies=auth_dependencies(config))

Without ``api_key`` in the config everything is open. The key is compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any, Callable

from fastapi import Depends, Request

from gniazdo.serve.errors import ServeError


def api_key_check(api_key: str | None) -> Callable[[Request], Any]:
    expected = api_key.encode() if api_key else None

    async def check(request: Request) -> None:
        if expected is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            raise ServeError(401, "missing or wrong API key (send the header 'Authorization: Bearer KEY')")

    return check


def auth_dependencies(config: Any) -> list[Any]:
    """``dependencies=`` for routes behind the key of ``config`` (a ServeConfig, or anything with api_key)."""
    return [Depends(api_key_check(getattr(config, "api_key", None)))]

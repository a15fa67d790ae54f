"""The server's own OpenAPI document, served at ``GET /v0.4/openapi.json``."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

from aiohttp import web

from .openapi_spec import build_document


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    return build_document()


@lru_cache(maxsize=1)
def openapi_text() -> str:
    """The document as JSON text."""
    return json.dumps(_document())


def openapi_document() -> dict[str, Any]:
    """The document as a dict (a fresh copy)."""
    return copy.deepcopy(_document())


async def get_openapi(request: web.Request) -> web.Response:
    """``GET /v0.4/openapi.json``: the OpenAPI 3 document of this server."""
    del request
    return web.Response(text=openapi_text(), content_type="application/json")


__all__ = ["get_openapi", "openapi_document", "openapi_text"]

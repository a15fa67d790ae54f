"""``GET /whoami``: the identity of the key in use."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..state import json_response
from ..sessions_store import PROJECT_ID

# Constant on purpose: nothing about the key (not even a hash of it) is sent back.
KEY_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "qstore-local/api-key"))
PROJECT_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, f"qstore-local/{PROJECT_ID}"))


async def whoami(request: web.Request) -> web.Response:
    """``GET /whoami``: ``{key_id, key_name, project_id}`` (IonQ's ``Whoami`` schema)."""
    del request
    return json_response({"key_id": KEY_ID, "key_name": "local server key",
                          "project_id": PROJECT_UUID})


__all__ = ["whoami", "KEY_ID"]

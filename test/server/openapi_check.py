"""Validate the server's responses against its own OpenAPI document."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Iterator
from unittest import mock

from aiohttp import web
from jsonschema import Draft202012Validator

from qstore_qiskit.server import app as app_module
from qstore_qiskit.server.openapi import openapi_document

DOC = openapi_document()
_PREFIX = DOC["servers"][0]["url"]  # "/v0.4"
_TEMPLATES = [
    (re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path)
    for path in sorted(DOC["paths"], key=lambda p: p.count("{"))  # literal paths first
]


def operation_for(method: str, path: str) -> tuple[str, dict] | None:
    """The documented ``(template, operation)`` of a ``/v0.4`` request, else ``None``."""
    if not path.startswith(_PREFIX + "/"):
        return None
    rest = path[len(_PREFIX):]
    for pattern, template in _TEMPLATES:
        if pattern.match(rest):
            op = DOC["paths"][template].get(method.lower())
            if op is not None:  # else a templated path may take this method
                return template, op
    return None


def problems(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with a response to ``method path`` (empty: it conforms).

    Responses to undocumented paths/methods are not checked (``[]``).
    """
    found = operation_for(method, path)
    if found is None:
        return []
    template, op = found
    declared = op["responses"].get(str(status))
    if declared is None:
        return [f"{method} {template}: status {status} is not documented"]
    schema = declared["content"]["application/json"]["schema"]
    root = dict(schema, components=DOC["components"])
    return [f"{method} {template} {status}: {err.message} at {list(err.absolute_path)}"
            for err in Draft202012Validator(root).iter_errors(body)]


def assert_conforms(method: str, path: str, status: int, body: Any) -> None:
    """Raise ``AssertionError`` if the response does not match the document."""
    issues = problems(method, path, status, body)
    if issues:
        raise AssertionError("response does not match the OpenAPI document: "
                             + "; ".join(issues[:5]))


@contextlib.contextmanager
def validating_middleware() -> Iterator[list[str]]:
    """While active, servers created validate every response they send against the
    document; the yielded list collects the problems (assert it stays empty)."""
    found: list[str] = []
    original = app_module.api_middleware

    @web.middleware
    async def checking(request: web.Request, handler) -> web.StreamResponse:
        response = await original(request, handler)
        if isinstance(response, web.Response) and response.status != 499:
            try:
                body = json.loads(response.text) if response.text else None
            except (TypeError, ValueError):
                body = response.text
            found.extend(problems(request.method, request.path, response.status, body))
        return response

    with mock.patch.object(app_module, "api_middleware", checking):
        yield found

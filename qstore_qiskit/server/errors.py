"""IonQ-style API errors.

Every error leaves the server in the shape of IonQ's v0.4 document
(``components/schemas/Error`` and ``BadRequestError``)::

    {"statusCode": 400, "error": "Bad Request", "message": "...",
     "validation": {"keys": ["shots"], "source": "body"}}

``validation`` is only present on 400s. Both official clients parse this shape:
qiskit-ionq's ``IonQAPIError.from_response`` reads ``statusCode``/``error``/``message``,
cirq-ionq keeps the body in its exception text.
"""

from __future__ import annotations

import http
import json
from typing import Any, Sequence

from aiohttp import web

# HTTP status -> the short ``error`` text. IonQ's examples use the HTTP reason phrase
# ("Bad Request", "Internal Server Error") or it with " Error" ("Not Found Error",
# "Unauthorized Error"); the phrase is used here throughout.
ERROR_TYPES: dict[int, str] = {
    code: http.HTTPStatus(code).phrase
    for code in (400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500, 501, 502, 503,
                 504)
}


def error_name(status: int) -> str:
    """The ``error`` text of ``status``."""
    try:
        return ERROR_TYPES.get(status) or http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ApiError(Exception):
    """An error answered to the client as IonQ-style JSON.

    Args:
        status: HTTP status code.
        message: Human-readable message (must never contain secrets).
        error_type: The short ``error`` text; derived from ``status`` when omitted.
        headers: Extra response headers (e.g. ``Retry-After``).
        keys: For 400s, the request keys with bad values (``validation.keys``).
        source: For 400s, where those keys are (``"body"``, ``"query"``, ``"params"``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        keys: Sequence[str] | None = None,
        source: str = "body",
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or error_name(status)
        self.headers = headers or {}
        self.keys = list(keys or [])
        self.source = source


def bad_request(message: str, keys: Sequence[str] | None = None,
                source: str = "body") -> ApiError:
    """A 400 for a structurally invalid request."""
    return ApiError(400, message, keys=keys, source=source)


def unprocessable(message: str) -> ApiError:
    """A 422 for a well-formed request that exceeds a limit."""
    return ApiError(422, message)


def error_body(status: int, message: str, error_type: str | None = None,
               keys: Sequence[str] | None = None, source: str = "body") -> dict[str, Any]:
    """The JSON body of an error response."""
    body: dict[str, Any] = {
        "statusCode": status,
        "error": error_type or error_name(status),
        "message": message,
    }
    if status == 400:
        body["validation"] = {"keys": list(keys or []), "source": source}
    return body


def error_response(
    status: int,
    message: str,
    error_type: str | None = None,
    headers: dict[str, str] | None = None,
    keys: Sequence[str] | None = None,
    source: str = "body",
) -> web.Response:
    """Build an IonQ-style JSON error response."""
    return web.Response(
        status=status,
        text=json.dumps(error_body(status, message, error_type, keys, source)),
        content_type="application/json",
        headers=headers,
    )


def api_error_response(exc: ApiError) -> web.Response:
    """The response for a raised :class:`ApiError`."""
    return error_response(exc.status, exc.message, exc.error_type, exc.headers, exc.keys,
                          exc.source)


__all__ = ["ApiError", "ERROR_TYPES", "bad_request", "unprocessable", "error_body",
           "error_response", "api_error_response", "error_name"]

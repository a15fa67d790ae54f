"""IonQ-style API errors.

Every error leaves the server as ``{"error": {"type": ..., "message": ...}}``, the
shape :meth:`qiskit_ionq.exceptions.IonQAPIError.from_response` parses.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

# HTTP status -> IonQ error type.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable_entity",
    429: "rate_limit_exceeded",
    500: "internal_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """An error answered to the client as IonQ-style JSON.

    Args:
        status: HTTP status code.
        message: Human-readable message (must never contain secrets).
        error_type: IonQ error type; derived from ``status`` when omitted.
        headers: Extra response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "internal_error")
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    """A 400 for a structurally invalid request."""
    return ApiError(400, message)


def unprocessable(message: str) -> ApiError:
    """A 422 for a well-formed request that exceeds a limit."""
    return ApiError(422, message)


def error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"type": error_type or ERROR_TYPES.get(status, "internal_error"),
                      "message": message}}


def error_response(
    status: int,
    message: str,
    error_type: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    """Build an IonQ-style JSON error response."""
    body = error_body(status, message, error_type)
    if extra:
        body["error"].update(extra)
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


__all__ = ["ApiError", "ERROR_TYPES", "bad_request", "unprocessable", "error_body",
           "error_response"]

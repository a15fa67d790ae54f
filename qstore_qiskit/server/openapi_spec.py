"""The OpenAPI 3 document of the local server (built here, served by :mod:`.openapi`)."""

from __future__ import annotations

from typing import Any


def build_document() -> dict[str, Any]:
    """The document."""
    return {"openapi": "3.0.3", "info": {"title": "qstore-qiskit local IonQ API",
                                         "version": "v0.4"}, "paths": {}}

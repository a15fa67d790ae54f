"""Names and fingerprints of gateways: derived from the service URL and the API key.

Nothing here ever returns or stores the key itself. The fingerprint is a domain-separated
SHA-256 of the URL and the key (keys are long random tokens, so the digest reveals
nothing usable); the actor name is derived from the fingerprint, so two workers holding
the same key for the same service find the same gateway, and the key never appears in
Ray's actor table, logs or dashboards.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from urllib.parse import urlsplit

#: Ray namespace of every gateway actor (named actors are looked up per namespace, so a
#: fixed one lets separate drivers and jobs of one cluster share a gateway).
NAMESPACE = "qstore-qiskit"
#: Environment variable the gateway reads the API key from (like qiskit-ionq).
KEY_ENV = "IONQ_API_KEY"
#: Comma-separated extra service URLs a gateway may talk to (see :func:`check_url`).
ALLOWED_URLS_ENV = "QSTORE_GATEWAY_ALLOWED_URLS"
#: Fingerprint used when the worker has no key: "whatever key the gateway's environment holds".
ENV_KEY = "env"
DEFAULT_URL = "https://api.ionq.co/v0.4"
_DOMAIN = b"qstore-qiskit gateway v1\x00"


def normalize_url(url: str) -> str:
    """``url`` without a trailing slash (so ``.../v0.4`` and ``.../v0.4/`` name one gateway)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"gateway service URL must be a non-empty string, got {url!r}")
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"gateway service URL must be http(s)://host[:port]/..., got {url!r}")
    return url


def key_fingerprint(url: str, token: str | None) -> str:
    """Fingerprint of ``(url, token)``: 32 hex digits, or ``"env"`` without a token."""
    if token is None:
        return ENV_KEY
    if not isinstance(token, str) or not token:
        raise ValueError("API key must be a non-empty string")
    digest = hashlib.sha256(_DOMAIN + normalize_url(url).encode() + b"\x00" + token.encode()).hexdigest()
    return digest[:32]


def actor_name(url: str, fingerprint: str) -> str:
    """The gateway actor's name for ``(url, fingerprint)``: no URL, no key in it."""
    digest = hashlib.sha256(_DOMAIN + normalize_url(url).encode() + b"\x00" + fingerprint.encode()).hexdigest()
    return f"qstore-gateway-{digest[:24]}"


def _is_loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, environ: dict | None = None) -> str:
    """The normalized ``url`` if the gateway may send its key there; ``ValueError`` otherwise.

    A gateway holds the cluster's API key and any worker can ask for a gateway to any URL,
    so the gateway, not the worker, decides where the key may go: IonQ's service (the
    default URL), the ``IONQ_API_URL`` of the gateway's environment, URLs listed in
    ``QSTORE_GATEWAY_ALLOWED_URLS``, and loopback servers (tests, local servers).
    """
    env = os.environ if environ is None else environ
    url = normalize_url(url)
    allowed = {DEFAULT_URL}
    for value in [env.get("IONQ_API_URL", ""), *env.get(ALLOWED_URLS_ENV, "").split(",")]:
        if value.strip():
            allowed.add(normalize_url(value))
    if url in allowed or _is_loopback(urlsplit(url).hostname):
        return url
    raise ValueError(
        f"the gateway refuses to send the API key to {urlsplit(url).hostname!r}: not IonQ's service, "
        f"not IONQ_API_URL and not listed in {ALLOWED_URLS_ENV} of the gateway's environment"
    )


def request_digest(request_id: str) -> str:
    """What the gateway stores about a request id (on disk): its SHA-256, never the id."""
    return hashlib.sha256(b"qstore-qiskit request\x00" + request_id.encode()).hexdigest()


__all__ = [
    "NAMESPACE",
    "KEY_ENV",
    "ALLOWED_URLS_ENV",
    "ENV_KEY",
    "DEFAULT_URL",
    "normalize_url",
    "key_fingerprint",
    "actor_name",
    "check_url",
    "request_digest",
]

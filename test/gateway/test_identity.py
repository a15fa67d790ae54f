"""Gateway names, fingerprints and the URL policy (no Ray needed)."""

from __future__ import annotations

import pytest

from qstore_qiskit.gateway.identity import (
    ENV_KEY,
    actor_name,
    check_url,
    key_fingerprint,
    normalize_url,
    request_digest,
)

KEY = "secret-key-" + "ab12" * 8


def test_fingerprint_and_name_hide_the_key_and_url():
    url = "https://api.ionq.co/v0.4"
    fp = key_fingerprint(url, KEY)
    assert len(fp) == 32 and KEY not in fp
    name = actor_name(url, fp)
    assert KEY not in name and "ionq" not in name and name.startswith("qstore-gateway-")
    # Same (url, key): same gateway, whatever the trailing slash; another key or URL: another.
    assert actor_name(url + "/", key_fingerprint(url + "/", KEY)) == name
    assert key_fingerprint(url, KEY + "x") != fp
    assert key_fingerprint("http://127.0.0.1:9/v0.4", KEY) != fp
    assert key_fingerprint(url, None) == ENV_KEY
    assert actor_name(url, ENV_KEY) != name


def test_request_digest_is_one_way_and_distinct():
    assert request_digest("a" * 43) != request_digest("b" * 43)
    assert "a" * 43 not in request_digest("a" * 43)


def test_gateway_sends_the_key_only_to_allowed_urls():
    assert check_url("https://api.ionq.co/v0.4/", {}) == "https://api.ionq.co/v0.4"
    assert check_url("http://127.0.0.1:8123/v0.4", {}) == "http://127.0.0.1:8123/v0.4"
    assert check_url("https://ionq.example.org/v0.4", {"IONQ_API_URL": "https://ionq.example.org/v0.4"})
    allowed = {"QSTORE_GATEWAY_ALLOWED_URLS": "https://a.example/v0.4, https://b.example/v0.4"}
    assert check_url("https://b.example/v0.4", allowed)
    with pytest.raises(ValueError, match="refuses to send the API key to 'evil.example'"):
        check_url("https://evil.example/v0.4", {})


@pytest.mark.parametrize("url", ["", "ftp://x/y", "api.ionq.co", None])
def test_bad_urls_are_named(url):
    with pytest.raises(ValueError, match="gateway service URL"):
        normalize_url(url)


def test_provider_rejects_unknown_gateway_and_local_server():
    from qstore_qiskit import QStoreProvider

    with pytest.raises(ValueError, match="gateway must be None or 'ray'"):
        QStoreProvider(url="http://127.0.0.1:1/v0.4", gateway="dask")
    provider = QStoreProvider(gateway="ray")
    with pytest.raises(ValueError, match="needs a service URL"):
        provider._gateway_submitter(provider.get_backend("local"))

"""The cache tests never touch the user's cache directory.

The persistent template cache is off for every test here (``QSTORE_CACHE_DIR=off``);
the tests of the persistent cache pass their own temporary directories.
"""

from __future__ import annotations

import pytest

from qstore_qiskit.cache import CACHE_DIR_ENV


@pytest.fixture(autouse=True)
def _no_user_template_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, "off")

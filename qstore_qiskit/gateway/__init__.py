"""Scaling out with Ray: one batching gateway per (service URL, API key) in a cluster.

* :class:`~qstore_qiskit.gateway.client.GatewayClient`: what a backend created with
  ``QStoreProvider(..., gateway="ray")`` submits through (same interface as
  :class:`~qstore_qiskit.client.BatchSubmitter`).
* :class:`~qstore_qiskit.gateway.ray_gateway.QStoreGateway`: the named, detached actor
  owning the cluster's one submitter.
* :func:`~qstore_qiskit.gateway.client.start_gateway`: start it from the driver with
  chosen options and the key in its runtime environment.
* :func:`~qstore_qiskit.gateway.local_ray.init_local_ray`: ``ray.init`` for a local
  cluster without Ray's cloud-metadata lookups (tests, benchmarks, examples).

Needs ``pip install 'qstore-qiskit[ray]'``; only :mod:`.identity` imports without Ray.
See ``docs/scaling.rst``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .identity import actor_name, key_fingerprint

_LAZY = {
    "GatewayClient": "qstore_qiskit.gateway.client",
    "get_gateway": "qstore_qiskit.gateway.client",
    "start_gateway": "qstore_qiskit.gateway.client",
    "QStoreGateway": "qstore_qiskit.gateway.ray_gateway",
    "init_local_ray": "qstore_qiskit.gateway.local_ray",
}

__all__ = ["actor_name", "key_fingerprint", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qstore_qiskit.gateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

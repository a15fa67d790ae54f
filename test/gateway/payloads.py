"""Payload helpers shared by the in-process gateway tests."""

from __future__ import annotations

import secrets

#: Settings of every call in the in-process gateway tests (one settings group).
SETTINGS = {"backend": "simulator", "shots": 16, "gateset": "native", "sampler_seed": 5}


def body(value: int, qubits: int = 4) -> dict:
    """A circuit preparing basis state |value> (GPi(0) is a bit flip)."""
    gates = [{"gate": "gpi", "target": q, "phase": 0.0} for q in range(qubits) if value >> q & 1]
    return {"qubits": qubits, "circuit": gates, "name": f"v{value}"}


def rid() -> str:
    """A fresh request id, as a gateway client makes one per call."""
    return secrets.token_urlsafe(32)

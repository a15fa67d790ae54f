"""Shared helpers for the server tests: exact distributions, tolerant comparisons, HTTP."""

from __future__ import annotations

import json
import math
import os
import unittest
import urllib.error
import urllib.parse
import urllib.request
from typing import Any
from unittest import mock

from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector


def exact_counts_distribution(circuit: QuantumCircuit) -> dict[str, float]:
    """Exact distribution of ``circuit``'s classical bits (qiskit bitstrings, clbit 0
    rightmost), for circuits whose measurements are all terminal."""
    body = circuit.remove_final_measurements(inplace=False)
    probs = Statevector(body).probabilities()
    meas = {}
    for inst in circuit.data:
        if inst.operation.name == "measure":
            meas[circuit.find_bit(inst.clbits[0]).index] = circuit.find_bit(inst.qubits[0]).index
    out: dict[str, float] = {}
    width = circuit.num_clbits
    for index, p in enumerate(probs):
        if p < 1e-15:
            continue
        value = 0
        for clbit, qubit in meas.items():
            value |= ((index >> qubit) & 1) << clbit
        key = format(value, f"0{width}b")
        out[key] = out.get(key, 0.0) + float(p)
    return out


def map_to_clbits(raw: dict[str, float], circuit: QuantumCircuit) -> dict[str, float]:
    """Map a server distribution (decimal keys over qubits) onto ``circuit``'s clbits."""
    meas = {}
    for inst in circuit.data:
        if inst.operation.name == "measure":
            meas[circuit.find_bit(inst.clbits[0]).index] = circuit.find_bit(inst.qubits[0]).index
    out: dict[str, float] = {}
    for key, p in raw.items():
        index = int(key)
        value = 0
        for clbit, qubit in meas.items():
            value |= ((index >> qubit) & 1) << clbit
        bits = format(value, f"0{circuit.num_clbits}b")
        out[bits] = out.get(bits, 0.0) + p
    return out


def assert_counts_match(test: unittest.TestCase, counts: dict[str, int],
                        expected: dict[str, float], shots: int, sigmas: float = 5.0) -> None:
    """Every outcome's frequency within ``sigmas`` binomial standard deviations."""
    test.assertEqual(sum(counts.values()), shots)
    for key in set(counts) | set(expected):
        p = expected.get(key, 0.0)
        freq = counts.get(key, 0) / shots
        tol = sigmas * math.sqrt(max(p * (1 - p), 1e-12) / shots) + 2.0 / shots
        test.assertLessEqual(abs(freq - p), tol, f"outcome {key}: {freq} vs {p}")


def http(method: str, url: str, body: Any = None, key: str | None = "test-key",
         raw: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 60.0, validate: bool = True) -> tuple[int, dict[str, str], Any]:
    """A small JSON HTTP helper (stdlib only); returns ``(status, headers, json|text)``.

    The timeout only guards against a hang: on a loaded 2-core machine a server that
    starts its worker processes can take over 10 s to answer its first job, so it is
    generous; tests never assert on how long an answer took.

    Every answer to a ``/v0.4`` route is checked against the server's OpenAPI document
    (``validate=False`` skips that, for deliberately undocumented requests).
    """
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if key is not None:
        req.add_header("Authorization", f"apiKey {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, text = resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        status, hdrs, text = err.code, dict(err.headers), err.read().decode()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        payload = text
    if validate:
        from .openapi_check import assert_conforms  # pylint: disable=import-outside-toplevel

        assert_conforms(method, urllib.parse.urlsplit(url).path, status, payload)
    return status, hdrs, payload


def ionq_env(url: str) -> mock._patch:
    """Point qiskit-ionq's ``get_n_qubits`` (which reads ``IONQ_API_URL``) at ``url``."""
    return mock.patch.dict(os.environ, {"IONQ_API_URL": url})




def random_native_circuit(n: int, depth: int, rng) -> QuantumCircuit:
    """A random circuit of qiskit-ionq's GPi/GPi2/MS/ZZ gates (seeded by ``rng``)."""
    from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate, ZZGate  # pylint: disable=import-outside-toplevel

    qc = QuantumCircuit(n)
    for _ in range(depth):
        kind = rng.integers(4)
        if kind == 0 or n == 1:
            qc.append(GPIGate(float(rng.random())), [int(rng.integers(n))])
        elif kind == 1:
            qc.append(GPI2Gate(float(rng.random())), [int(rng.integers(n))])
        else:
            a, b = (int(x) for x in rng.choice(n, 2, replace=False))
            if kind == 2:
                qc.append(MSGate(float(rng.random()), float(rng.random()),
                                 float(rng.random() * 0.5)), [a, b])
            else:
                qc.append(ZZGate(float(rng.random() * 0.5)), [a, b])
    return qc

"""Tests of :mod:`qstore_qiskit.client`."""

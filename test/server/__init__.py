"""Tests of the local IonQ-API server (:mod:`qstore_qiskit.server`)."""

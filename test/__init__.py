"""qstore-qiskit tests."""

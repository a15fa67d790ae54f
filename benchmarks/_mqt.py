# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Shared helpers for the benchmarks: the MQT Bench circuit suite and the peer compilers.

The helpers in this module are deliberately independent of :mod:`qstore_qiskit` so that
the benchmarks can run (with the peers only) before or without our compiler.

* :func:`load_suite` generates the MQT Bench ``INDEP``-level circuits used by all the
  compile-quality benchmarks, with every random choice seeded.
* :func:`qiskit_ionq_backend` builds a ``qiskit-ionq`` native-gate backend **offline**.
* :func:`mqt_target` returns MQT Bench's hard-coded IonQ device target, with the gate
  equivalences Qiskit needs to translate to it.
* :func:`strip_measurements`, :func:`count_two_qubit`, :func:`count_native_1q` and
  :func:`unitary_equivalent` are the metrics shared by the benchmarks and tests.

Offline qiskit-ionq backends
----------------------------
``IonQProvider("dummy").get_backend("simulator", gateset="native")`` does not need an API
key, but building any ``IonQBackend`` calls ``qiskit_ionq.helpers.get_n_qubits``, which
issues ``GET {url}/backends/{name}`` to learn the device size. Without network access
that request fails and qiskit-ionq silently falls back to a **4-qubit** target (with a
``UserWarning``), which cannot hold the 6- and 8-qubit benchmarks. The provider and the
``with_name`` path used by ``get_backend`` both go through the same call, so
:func:`qiskit_ionq_backend` patches ``qiskit_ionq.ionq_backend.get_n_qubits`` for the
duration of the construction only, answering with the sizes IonQ publishes for its
devices (:data:`IONQ_DEVICE_QUBITS`). Everything else (target, gate set, transpilation)
is stock qiskit-ionq; transpiling never touches the network.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from unittest import mock

from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator
from qiskit.transpiler import Target

__all__ = [
    "SUITE",
    "DEFAULT_SIZES",
    "QUICK_SIZES",
    "SEED",
    "IONQ_DEVICE_QUBITS",
    "BenchmarkCircuit",
    "mqt_available",
    "load_suite",
    "strip_measurements",
    "count_two_qubit",
    "count_native_1q",
    "unitary_equivalent",
    "qiskit_ionq_backend",
    "mqt_target",
    "median",
]

#: MQT Bench benchmarks in the compile-quality suite, in display order.
SUITE: tuple[str, ...] = (
    "ghz",
    "qft",
    "qftentangled",
    "dj",
    "graphstate",
    "wstate",
    "vqe_real_amp",
    "vqe_su2",
    "qaoa",
    "grover",
    "randomcircuit",
    "qnn",
)

#: Circuit sizes (qubits) of the full suite and of ``--quick`` runs.
DEFAULT_SIZES: tuple[int, ...] = (4, 6, 8)
QUICK_SIZES: tuple[int, ...] = (4, 6)

#: Seed for every random choice made while generating the suite. MQT Bench already
#: seeds ``randomcircuit`` (10), ``qaoa``'s graph (10) and the random parameter values
#: (10); ``graphstate``'s random regular graph is unseeded unless ``seed`` is passed.
SEED: int = 10

#: Benchmarks whose generator accepts MQT Bench's ``seed`` configuration option.
_SEEDED: frozenset[str] = frozenset({"graphstate"})

#: Qubit counts IonQ publishes for its devices (what ``GET /backends/{name}`` returns).
IONQ_DEVICE_QUBITS: dict[str, int] = {
    "simulator": 29,
    "aria-1": 25,
    "aria-2": 25,
    "forte-1": 36,
    "forte-enterprise-1": 36,
}

#: Names of the native two-qubit (entangling) and single-qubit (physical) IonQ gates.
_TWO_QUBIT_NATIVE: frozenset[str] = frozenset({"ms", "zz"})
_ONE_QUBIT_NATIVE: frozenset[str] = frozenset({"gpi", "gpi2"})


@dataclass(frozen=True)
class BenchmarkCircuit:
    """One circuit of the suite.

    Attributes:
        name: MQT Bench benchmark name, e.g. ``"qft"``.
        size: The ``circuit_size`` passed to MQT Bench (the qubit count for this suite).
        circuit: The ``INDEP``-level circuit, final measurements removed unless the suite
            was loaded with ``keep_measurements=True``.
    """

    name: str
    size: int
    circuit: QuantumCircuit

    @property
    def label(self) -> str:
        """Short unique label, e.g. ``"qft_6"``."""
        return f"{self.name}_{self.size}"


def mqt_available() -> bool:
    """Whether MQT Bench (a ``test``/``bench`` extra) can be imported."""
    try:
        import mqt.bench  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return False
    return True


def strip_measurements(circuit: QuantumCircuit) -> QuantumCircuit:
    """Return a copy of ``circuit`` without its final measurements.

    Uses :meth:`.QuantumCircuit.remove_final_measurements`, which also drops the barrier
    that ``measure_all`` puts in front of the measurements and the classical registers
    left idle. The qubit count is unchanged.

    Args:
        circuit: Any circuit.

    Returns:
        A new, measurement-free circuit (``circuit`` is not modified).
    """
    return circuit.remove_final_measurements(inplace=False)


def load_suite(
    sizes: Iterable[int] = DEFAULT_SIZES,
    names: Iterable[str] = SUITE,
    *,
    keep_measurements: bool = False,
) -> list[BenchmarkCircuit]:
    """Generate the MQT Bench ``INDEP``-level circuits of the suite.

    Args:
        sizes: Circuit sizes (qubit counts) to generate for every benchmark.
        names: MQT Bench benchmark names.
        keep_measurements: Keep the final ``measure_all`` of the MQT circuits. By default
            they are removed (:func:`strip_measurements`), so that every compiler sees the
            same unitary circuit and the outputs can be compared as unitaries.

    Returns:
        One :class:`BenchmarkCircuit` per ``(name, size)``, names outer, sizes inner.

    Raises:
        ImportError: If MQT Bench is not installed.
    """
    # pylint: disable=import-outside-toplevel
    from mqt.bench import BenchmarkLevel, get_benchmark

    suite = []
    for name in names:
        for size in sizes:
            kwargs: dict[str, Any] = {"seed": SEED} if name in _SEEDED else {}
            circuit = get_benchmark(name, BenchmarkLevel.INDEP, size, **kwargs)
            if not keep_measurements:
                circuit = strip_measurements(circuit)
            circuit.name = f"{name}_{size}"
            suite.append(BenchmarkCircuit(name, size, circuit))
    return suite


def count_two_qubit(circuit: QuantumCircuit) -> int:
    """Number of native entangling gates (``ms`` and ``zz``) in ``circuit``."""
    ops = circuit.count_ops()
    return sum(ops.get(name, 0) for name in _TWO_QUBIT_NATIVE)


def count_native_1q(circuit: QuantumCircuit) -> int:
    """Number of physical native single-qubit gates (``gpi`` and ``gpi2``).

    ``rz`` is a virtual (frame) rotation on IonQ hardware and is not counted.
    """
    ops = circuit.count_ops()
    return sum(ops.get(name, 0) for name in _ONE_QUBIT_NATIVE)


def _compact_to_virtual(native: QuantumCircuit, num_virtual: int) -> QuantumCircuit | None:
    """Undo the initial layout of a widened (ancilla-expanded) compiled circuit.

    Returns ``native`` re-expressed on ``num_virtual`` qubits in the order of the
    original circuit, or ``None`` if that is impossible (an operation acts on an
    ancilla, or the routing permuted the qubits).
    """
    layout = native.layout
    if layout is None or layout.initial_layout is None:
        return None
    if layout.final_layout is not None:
        routing = layout.routing_permutation()
        if list(routing) != list(range(len(routing))):
            return None
    # physical index -> index of the virtual qubit in the original circuit
    phys_to_virt: dict[int, int] = {}
    for virt_qubit, virt_index in layout.input_qubit_mapping.items():
        if virt_index < num_virtual:
            phys_to_virt[layout.initial_layout[virt_qubit]] = virt_index
    compact = QuantumCircuit(num_virtual, global_phase=native.global_phase)
    for instruction in native.data:
        try:
            qargs = [phys_to_virt[native.find_bit(q).index] for q in instruction.qubits]
        except KeyError:
            if instruction.operation.name == "barrier":
                continue
            return None
        if instruction.clbits:
            return None
        compact.append(instruction.operation, qargs)
    return compact


def unitary_equivalent(original: QuantumCircuit, native: QuantumCircuit) -> bool:
    """Whether ``native`` implements the same unitary as ``original`` up to global phase.

    This is ``Operator(strip_measurements(original)).equiv(Operator(strip_measurements(
    native)))``. If the compiler widened the circuit to the device size or recorded a
    layout, the compiled circuit is first mapped back to the original qubits (see
    :meth:`.Operator.from_circuit`), so a relabelling recorded in ``native.layout`` is
    not reported as a difference.

    Args:
        original: The circuit before compilation.
        native: The compiled circuit.

    Returns:
        ``True`` if the unitaries agree up to a global phase.
    """
    expected = Operator(strip_measurements(original))
    compiled = strip_measurements(native)
    if compiled.num_qubits != original.num_qubits:
        compact = _compact_to_virtual(compiled, original.num_qubits)
        if compact is None:
            return False
        return expected.equiv(Operator(compact))
    if compiled.layout is not None:
        return expected.equiv(Operator.from_circuit(compiled))
    return expected.equiv(Operator(compiled))


def qiskit_ionq_backend(device: str = "simulator", gateset: str = "native") -> Any:
    """Build ``IonQProvider("dummy").get_backend(device, gateset=gateset)`` offline.

    See the module docstring: the only network access qiskit-ionq makes while building a
    backend is the device-size lookup, which is answered from :data:`IONQ_DEVICE_QUBITS`.

    Args:
        device: ``"simulator"`` or an IonQ QPU name such as ``"qpu.aria-1"`` or
            ``"forte-1"`` (the ``qpu.`` prefix is added when missing).
        gateset: ``"native"`` or ``"qis"``.

    Returns:
        The ``qiskit_ionq`` backend (a Qiskit ``BackendV2``).
    """
    # pylint: disable=import-outside-toplevel
    import qiskit_ionq.ionq_backend as ionq_backend_module
    from qiskit_ionq import IonQProvider

    name = device.removeprefix("ionq_")
    if name != "simulator" and not name.startswith("qpu"):
        name = f"qpu.{name}"

    def offline_n_qubits(backend: str, fallback: int = 4) -> int:
        # Called with e.g. "simulator", "ionq_simulator", "ionq_qpu", "ionq_qpu.aria-1".
        short = backend.removeprefix("ionq_").removeprefix("qpu").removeprefix(".")
        if not short:  # the provider's generic, not-yet-named QPU backend
            return max(IONQ_DEVICE_QUBITS.values())
        return IONQ_DEVICE_QUBITS.get(short, fallback)

    with warnings.catch_warnings():
        # qiskit-ionq warns that Qiskit's default optimization level is 2; we pass 1.
        warnings.simplefilter("ignore")
        with mock.patch.object(ionq_backend_module, "get_n_qubits", offline_n_qubits):
            backend = IonQProvider("dummy").get_backend(name, gateset=gateset)
            # Build (and cache) the target now, still without network access.
            _ = backend.target
    return backend


def mqt_target(device: str = "aria-1") -> Target:
    """MQT Bench's IonQ target for ``device`` (``ionq_aria_25`` or ``ionq_forte_36``).

    Also registers MQT Bench's IonQ gate equivalences (U and CX into GPI/GPI2/MS/ZZ) in
    Qiskit's global ``SessionEquivalenceLibrary``, exactly as MQT Bench does before it
    compiles to these targets; without them Qiskit cannot translate to the target.

    .. warning::

        The MQT gates share their names (``gpi``, ``gpi2``, ``ms``, ``zz``) with the
        qiskit-ionq gates, so after this call Qiskit's basis translator may pick the MQT
        equivalences when compiling for other IonQ targets in the same process. Compile
        with the other compilers first, or use a separate process.

    Args:
        device: An IonQ device name; Forte-class names select ``ionq_forte_36``.

    Returns:
        The MQT Bench :class:`~qiskit.transpiler.Target`.
    """
    # pylint: disable=import-outside-toplevel
    from qiskit.circuit import SessionEquivalenceLibrary
    from mqt.bench.targets import get_device
    from mqt.bench.targets.gatesets import ionq as mqt_ionq

    name = "ionq_forte_36" if "forte" in device else "ionq_aria_25"
    mqt_ionq.add_equivalences(SessionEquivalenceLibrary)
    return get_device(name)


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence (``nan`` for an empty one)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return 0.5 * (ordered[mid - 1] + ordered[mid])

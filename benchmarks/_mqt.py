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
    "SCALE_SUITE",
    "SCALE_SIZES",
    "TKET_CASES",
    "load_cases",
    "random_cases",
    "tket_available",
    "tket_compile",
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

#: Benchmarks of the "compiler at scale" suite (issue 15), at :data:`SCALE_SIZES` qubits.
SCALE_SUITE: tuple[str, ...] = (
    "ghz",
    "qft",
    "qftentangled",
    "qpeexact",
    "qpeinexact",
    "ae",
    "dj",
    "graphstate",
    "wstate",
    "vqe_real_amp",
    "vqe_su2",
    "vqe_two_local",
    "qaoa",
    "grover",
    "randomcircuit",
    "qnn",
    "qwalk",
)
#: Sizes of the scale suite per device class (Aria has 25 qubits, Forte 36).
SCALE_SIZES: dict[str, tuple[int, ...]] = {
    "aria": (10, 12, 16, 20, 25),
    "forte": (10, 12, 16, 20, 25, 30, 36),
}
#: Grover's MQT circuit grows exponentially (11k MS at 12 qubits): larger sizes are
#: left out of the scale suite.
GROVER_MAX_QUBITS = 12

#: The 13 circuits (6-10 qubits) on which level 3 is compared with TKET (issue 15).
TKET_CASES: tuple[tuple[str, int], ...] = (
    ("qft", 8),
    ("qftentangled", 8),
    ("qpeinexact", 8),
    ("ae", 8),
    ("qaoa", 8),
    ("vqe_two_local", 8),
    ("randomcircuit", 8),
    ("randomcircuit", 10),
    ("wstate", 8),
    ("graphstate", 8),
    ("grover", 6),
    ("qwalk", 6),
    ("qnn", 8),
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


def load_cases(
    cases: Iterable[tuple[str, int]], *, keep_measurements: bool = False
) -> list[BenchmarkCircuit]:
    """Like :func:`load_suite` for an explicit list of ``(benchmark, size)`` pairs."""
    out: list[BenchmarkCircuit] = []
    for name, size in cases:
        out += load_suite((size,), (name,), keep_measurements=keep_measurements)
    return out


def random_cases(sizes: Sequence[int], count: int = 20, depth: int = 20) -> list[BenchmarkCircuit]:
    """``count`` seeded random circuits (gates on up to three qubits), widths cycling
    through ``sizes``: the "plus 20 random circuits" of the scale suite."""
    # pylint: disable=import-outside-toplevel
    from qiskit.circuit.random import random_circuit

    out = []
    for index in range(count):
        width = sizes[index % len(sizes)]
        circuit = random_circuit(width, depth, max_operands=3, seed=SEED + index)
        circuit.name = f"random{index}_{width}"
        out.append(BenchmarkCircuit(f"random{index}", width, circuit))
    return out


def tket_available() -> bool:
    """Whether pytket and pytket-qiskit can be imported."""
    try:
        import pytket.extensions.qiskit  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return False
    return True


def tket_compile(circuit: QuantumCircuit) -> QuantumCircuit:
    """TKET's best partial-angle flow, reported as an IonQ native gate count circuit.

    ``FullPeepholeOptimise(allow_swaps=False, target_2qb_gate=TK2)`` then
    ``AutoRebase({ZZPhase, PhasedX, Rz})``, as in issue 15. Gates that pytket-qiskit
    cannot convert are decomposed one level at a time first, and boxes are decomposed.

    The result is re-expressed for counting and pricing only (it is *not* the same
    unitary): each ``ZZPhase(a)`` (``exp(-i pi a/2 ZZ)``, a partial-angle two-qubit
    gate like MS) becomes an ``MS`` of the same interaction angle (``a/2`` turns, folded
    into ``[0, 1/4]``); each ``PhasedX(a, b)`` becomes what IonQ needs for it: nothing
    for ``a = 0``, one ``GPi2`` for ``a = 1/2``, one ``GPi`` for ``a = 1``, else two
    ``GPi2``; ``Rz`` is virtual. Use :func:`tket_unitary_circuit` to check equivalence.
    """
    # pylint: disable=import-outside-toplevel
    from qiskit_ionq.ionq_gates import GPI2Gate, GPIGate, MSGate
    from pytket import OpType

    tk = _tket_optimise(circuit)
    out = QuantumCircuit(circuit.num_qubits)
    index = {qubit: i for i, qubit in enumerate(tk.qubits)}
    for command in tk.get_commands():
        optype = command.op.type
        qubits = [index[q] for q in command.qubits]
        if optype == OpType.ZZPhase:
            turns = (float(command.op.params[0]) / 2.0) % 0.5
            turns = min(turns, 0.5 - turns)
            if turns > 1e-12:
                out.append(MSGate(0.0, 0.0, turns), qubits)
        elif optype == OpType.PhasedX:
            angle = float(command.op.params[0]) % 2.0
            angle = min(angle, 2.0 - angle)  # PhasedX(-a, b) = PhasedX(a, b + 1)
            if angle < 1e-12:
                continue
            if abs(angle - 0.5) < 1e-12:
                out.append(GPI2Gate(0.0), qubits)
            elif abs(angle - 1.0) < 1e-12:
                out.append(GPIGate(0.0), qubits)
            else:
                out.append(GPI2Gate(0.0), qubits)
                out.append(GPI2Gate(0.0), qubits)
    return out


def tket_unitary_circuit(circuit: QuantumCircuit) -> QuantumCircuit:
    """TKET's output (see :func:`tket_compile`) as a Qiskit circuit with its unitary."""
    # pylint: disable=import-outside-toplevel
    from pytket.extensions.qiskit import tk_to_qiskit

    return tk_to_qiskit(_tket_optimise(circuit))


def _tket_optimise(circuit: QuantumCircuit) -> Any:
    # pylint: disable=import-outside-toplevel
    from pytket import OpType
    from pytket.extensions.qiskit import qiskit_to_tk
    from pytket.passes import AutoRebase, DecomposeBoxes, FullPeepholeOptimise

    for _ in range(8):
        try:
            tk = qiskit_to_tk(circuit)
            break
        except NotImplementedError:  # e.g. rccx: unroll one level and retry
            circuit = circuit.decompose()
    else:
        raise RuntimeError(f"pytket-qiskit cannot convert {circuit.name}")
    DecomposeBoxes().apply(tk)
    FullPeepholeOptimise(allow_swaps=False, target_2qb_gate=OpType.TK2).apply(tk)
    AutoRebase({OpType.ZZPhase, OpType.PhasedX, OpType.Rz}).apply(tk)
    return tk


def transpile_with_qstore_stages(circuit: QuantumCircuit, target: Target, level: int) -> QuantumCircuit:
    """Qiskit's ``transpile`` with the ``qstore`` init, translation and optimization stage
    plugins (the path issue 15 measures), seeded. The plugins are found by name, through
    Qiskit's entry points, so this module still does not import :mod:`qstore_qiskit`."""
    from qiskit import transpile  # pylint: disable=import-outside-toplevel

    return transpile(
        circuit,
        target=target,
        init_method="qstore",
        translation_method="qstore",
        optimization_method="qstore",
        optimization_level=level,
        seed_transpiler=SEED,
    )


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

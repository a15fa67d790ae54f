"""Simulation of parsed IonQ circuits on qiskit-aer, ideal or with IonQ's noise models.

Every gate becomes an Aer ``unitary`` instruction with exactly the matrix the numpy
simulator uses (qiskit-ionq's GPI/GPI2/MS/ZZ definitions and the qis gates), so both agree
to rounding, or the Qiskit standard gate with that matrix when the parser's recipe names
one (Aer's kernels for those are faster, and a circuit of Clifford standard gates, also
with Pauli errors inserted, runs on Aer's stabilizer method). The method follows the model
and the width:

* **ideal, up to** :data:`DENSE_PROBABILITY_MAX_QUBITS` **qubits**: the state vector's
  exact probabilities (``save_probabilities``); the histogram is sampled from them with the
  job's seeded generator.
* **ideal, wider** (up to 29 qubits): Aer samples the shots from one state-vector run
  (measurement sampling), so no ``2**n`` array reaches Python. See "Bounded results" below
  for the probabilities reported.
* **noisy, up to** :data:`DENSITY_MATRIX_MAX_QUBITS` **qubits**: the density matrix with
  an Aer noise model (IonQ's depolarizing channel after every gate, see
  :mod:`.noise_models`), whose exact noisy distribution is then sampled ``shots`` times.
* **noisy, wider** (up to the model's QPU width): quantum trajectories on the state vector,
  one per shot, as IonQ's noisy simulator does ("it will run one simulation for each shot").
  The Pauli errors are drawn here from the job's seeded generator: the number of shots
  without any error is binomial and those shots share one ideal run; every other shot is
  conditioned on its first error, gets its later errors independently, and the shots with
  the same error pattern share one Aer run (measurement sampling again). This is the
  channel exactly, and much cheaper than one full simulation per shot at low error rates.

Bounded results (issue #12): a dense ``2**n`` probability map is never built for more than
``2**DENSE_PROBABILITY_MAX_QUBITS`` outcomes. For wider ideal circuits the exact
probabilities are reported only when the sampled outcomes are the whole support: if at
most :data:`MAX_EXACT_OUTCOMES` distinct outcomes were sampled (and at most half the shots,
since a support that shots cover fully shows repeats; with fewer than 64 shots always), a
second run saves their exact
probabilities (``save_amplitudes_squared``); if those sum to 1 (within rounding), they are
the exact distribution (e.g. GHZ-25 gives ``{0: 0.5, 2**25-1: 0.5}``). Otherwise the
reported probabilities are the sampled frequencies (``count / shots``), as for noisy jobs,
so a result never holds more than ``shots`` entries.

Noisy OpenQASM programs (mid-circuit measurement, reset, ``if``/``else``) run as one Aer
trajectory per shot with the same per-gate channels (:func:`simulate_program`).

Memory: the state vector is the only ``2**n`` object (16 bytes an amplitude, 8 in single
precision, which Aer uses from :data:`SINGLE_PRECISION_MIN_QUBITS` qubits); Aer refuses a
run above :data:`MEMORY_BUDGET_MB` (a clear job failure instead of an exhausted server).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import qiskit_aer  # noqa: F401  pylint: disable=unused-import  (adds QuantumCircuit.save_*)

from . import simulator as sim
from .circuits import ParsedCircuit, build_matrix
from .noise_models import (
    LABEL_1Q,
    LABEL_2Q,
    NoiseModel,
    apply_readout_to_histogram,
    apply_readout_to_probabilities,
)

# Up to this width the exact (dense) probabilities are computed and kept (<= 16,384 entries).
DENSE_PROBABILITY_MAX_QUBITS = 14
# Noisy circuits up to this width use the density matrix (4**n entries: 16 MiB at 10).
DENSITY_MATRIX_MAX_QUBITS = 10
# From this width Aer runs in single precision (29 qubits: 4 GiB instead of 8 GiB).
SINGLE_PRECISION_MIN_QUBITS = 25
# Most distinct sampled outcomes whose exact probabilities a wide ideal job looks up.
MAX_EXACT_OUTCOMES = 4096
# Aer's ``max_memory_mb``: a run needing more fails instead of exhausting the server.
MEMORY_BUDGET_MB = 4608
# Below this width Aer runs on one thread: its OpenMP threads cost more than they save on
# small states, and they busy-wait when the server's two simulation workers share cores.
PARALLEL_MIN_QUBITS = 20
# Error-pattern circuits per Aer call on the trajectory path.
_TRAJECTORY_CHUNK = 64
_CUTOFF = 1e-14
# Below this many shots the support check runs whatever the number of distinct outcomes.
_FEW_SHOTS = 64

# A gate: its matrix (``qubits[0]`` the least significant bit), its qubits, and the
# equivalent Qiskit standard gate when there is one (Aer has fast kernels for those, and a
# circuit of Clifford standard gates runs on Aer's stabilizer method), else ``None``.
Op = tuple[np.ndarray, tuple[int, ...], Any]

# Standard gates whose circuits (also with Pauli errors inserted) are Clifford.
_CLIFFORD = frozenset({"id", "x", "y", "z", "h", "s", "sdg", "sx", "sxdg", "cx", "cy", "cz",
                       "swap"})


@dataclass
class CircuitResult:
    """What one circuit's simulation yields.

    Attributes:
        histogram: ``{basis index: count}`` of the shots (qubit 0 = least significant bit).
        probabilities: Exact probabilities of the non-zero outcomes when known and bounded,
            else ``None`` (then the sampled frequencies are the job's probabilities).
        method: The Aer method used (for the record and the tests).
        required_memory_mb: The most memory Aer reported needing for one of its runs.
    """

    histogram: dict[int, int]
    probabilities: dict[int, float] | None
    method: str
    required_memory_mb: int = 0

    def probabilities_or_frequencies(self, shots: int) -> dict[int, float]:
        """The probabilities to report: exact if known, else ``count / shots``."""
        if self.probabilities is not None:
            return self.probabilities
        return {k: v / shots for k, v in sorted(self.histogram.items())}


# -- circuits ----------------------------------------------------------------------------


_EYES: dict[int, np.ndarray] = {}


def _is_identity(matrix: np.ndarray) -> bool:
    # Called once per gate: most gates differ from the identity in their first entry,
    # which is read without building an identity matrix (the full check ran 20 us a
    # gate, the second most expensive step of a 90,000-gate circuit).
    if matrix[0, 0] != 1:
        return False
    size = matrix.shape[0]
    eye = _EYES.get(size)
    if eye is None:
        eye = _EYES[size] = np.eye(size)
    return bool(np.array_equal(matrix, eye))


_DECOMPOSED: dict[tuple, list[tuple[np.ndarray, tuple[int, ...]]]] = {}


def _decompose(recipe, num_controls: int, num_qubits: int
               ) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """A gate on more than two qubits as one- and two-qubit gates (on local qubits
    ``0..num_qubits-1``, qubit order ``targets + controls`` as the parser's), by Qiskit's
    synthesis: controlled gates through ``.control()``, others from the full unitary."""
    fn, args = recipe
    key = (id(args[0]) if fn is None else (fn, args), num_controls, num_qubits)
    cached = _DECOMPOSED.get(key)
    if cached is not None:
        return cached
    # pylint: disable=import-outside-toplevel
    from qiskit import QuantumCircuit, transpile
    from qiskit.circuit.library import UnitaryGate

    base = build_matrix(recipe)
    num_targets = num_qubits - num_controls
    qc = QuantumCircuit(num_qubits)
    if num_controls:
        gate = UnitaryGate(base, check_input=False).control(num_controls)
        # ``control()`` puts the controls first; ours follow the targets.
        qc.append(gate, list(range(num_targets, num_qubits)) + list(range(num_targets)))
    else:
        qc.append(UnitaryGate(base, check_input=False), list(range(num_qubits)))
    out = transpile(qc, basis_gates=["u", "cx"], optimization_level=1)
    ops = []
    for inst in out.data:
        qubits = tuple(out.find_bit(q).index for q in inst.qubits)
        ops.append((np.asarray(inst.operation.to_matrix(), dtype=complex), qubits))
    if len(_DECOMPOSED) > 256:  # bounded: recipes with arrays are per request
        _DECOMPOSED.clear()
    _DECOMPOSED[key] = ops
    return ops


_STANDARD: dict | None = None


def _standard_tables() -> dict:
    global _STANDARD  # pylint: disable=global-statement
    if _STANDARD is None:
        from qiskit.circuit import library as lib  # pylint: disable=import-outside-toplevel

        fixed = {id(sim.X): lib.XGate, id(sim.Y): lib.YGate, id(sim.Z): lib.ZGate,
                 id(sim.H): lib.HGate, id(sim.S): lib.SGate, id(sim.SDG): lib.SdgGate,
                 id(sim.T): lib.TGate, id(sim.TDG): lib.TdgGate, id(sim.SX): lib.SXGate,
                 id(sim.SXDG): lib.SXdgGate, id(sim.SWAP): lib.SwapGate}
        rotations = {sim.rx: lib.RXGate, sim.ry: lib.RYGate, sim.rz: lib.RZGate,
                     sim.phase: lib.PhaseGate, sim.rxx: lib.RXXGate, sim.ryy: lib.RYYGate,
                     sim.rzz: lib.RZZGate,
                     sim.zz: lambda turns: lib.RZZGate(2 * math.pi * turns)}
        _STANDARD = {"fixed": fixed, "rotations": rotations}
    return _STANDARD


def _standard_gate(recipe, num_controls: int):
    """The Qiskit standard gate with exactly the recipe's matrix (controls first), if any."""
    tables = _standard_tables()
    fn, args = recipe
    if fn is None:
        cls = tables["fixed"].get(id(args[0]))
        gate = cls() if cls is not None else None
    else:
        cls = tables["rotations"].get(fn)
        gate = cls(*args) if cls is not None else None
    if gate is not None and num_controls:
        gate = gate.control(num_controls)
    return gate


def circuit_ops(circuit: ParsedCircuit, decompose_wide: bool) -> list[Op]:
    """The circuit's gates as :data:`Op` tuples, identity gates dropped; gates on more
    than two qubits decomposed into one- and two-qubit gates if ``decompose_wide`` (for
    per-gate noise)."""
    ops: list[Op] = []
    for unitary, (recipe, num_controls, qubits) in zip(circuit.unitaries(), circuit.gates):
        if _is_identity(unitary.matrix):
            continue
        if decompose_wide and len(qubits) > 2:
            for matrix, local in _decompose(recipe, num_controls, len(qubits)):
                ops.append((matrix, tuple(qubits[q] for q in local), None))
        else:
            ops.append((unitary.matrix, tuple(unitary.qubits),
                        _standard_gate(recipe, num_controls)))
    return ops


def permute_ops(ops: Iterable[Op], layout: Sequence[int]) -> list[Op]:
    """``ops`` with logical qubit ``q`` moved to ``layout[q]``."""
    return [(matrix, tuple(layout[q] for q in qubits), std) for matrix, qubits, std in ops]


def is_clifford(ops: Sequence[Op]) -> bool:
    """Whether every op is a Clifford standard gate (Aer's stabilizer method applies)."""
    return all(std is not None and std.name in _CLIFFORD for _, _, std in ops)


_PAULI_NAMES = ("id", "x", "y", "z")


def aer_circuit(num_qubits: int, ops: Sequence[Op], *, labels: bool = False,
                measure: bool = False, paulis: dict[int, int] | None = None):
    """An Aer circuit of ``ops`` (``unitary`` instructions).

    Args:
        num_qubits: Register width.
        ops: ``(matrix, qubits)`` gates.
        labels: Label gates :data:`LABEL_1Q` / :data:`LABEL_2Q` (for an Aer noise model);
            all gates are then ``unitary`` instructions. Without, standard gates are used
            where an op has one.
        measure: Measure every qubit into the clbit of the same index at the end.
        paulis: ``{op index: Pauli index}`` errors to insert after those ops (the Pauli
            index's base-4 digits, least significant first, are the Paulis ``I, X, Y, Z``
            on the op's qubits in order).
    """
    # pylint: disable=import-outside-toplevel
    from qiskit import QuantumCircuit
    from qiskit.circuit import CircuitInstruction
    from qiskit.circuit.library import UnitaryGate

    qc = QuantumCircuit(num_qubits, num_qubits if measure else 0)
    bits = qc.qubits
    # ``_append`` is Qiskit's documented fast path for a circuit built by the caller
    # itself: ``append`` broadcasts and checks every argument (about 45 us a gate);
    # here the parser has already checked the qubits (in range, distinct).
    add = qc._append  # pylint: disable=protected-access
    for index, (matrix, qubits, std) in enumerate(ops):
        if labels or std is None:
            label = (LABEL_1Q if len(qubits) == 1 else LABEL_2Q) if labels else None
            add(CircuitInstruction(UnitaryGate(matrix, check_input=False, label=label),
                                   tuple(bits[q] for q in qubits), ()))
        else:
            num_controls = getattr(std, "num_ctrl_qubits", 0)
            if num_controls:  # Qiskit's controlled gates take the controls first
                split = len(qubits) - num_controls
                qubits = tuple(qubits[split:]) + tuple(qubits[:split])
            add(CircuitInstruction(std, tuple(bits[q] for q in qubits), ()))
        if paulis and index in paulis:
            code = paulis[index]
            for q in qubits:
                name = _PAULI_NAMES[code & 3]
                code >>= 2
                if name != "id":
                    getattr(qc, name)(q)
    if measure:
        qc.measure(range(num_qubits), range(num_qubits))
    return qc


def _with_paulis(base, ops: Sequence[Op], pattern: tuple[tuple[int, int], ...]):
    """A copy of ``base`` (``aer_circuit(..., measure=True)`` of ``ops``: op ``i`` is
    instruction ``i``) with the Pauli errors of ``pattern`` inserted after their ops.

    Same circuit as ``aer_circuit(..., paulis=dict(pattern))``, but the copy and the
    inserts run in Qiskit's native circuit data instead of re-appending every gate.
    """
    # pylint: disable=import-outside-toplevel
    from qiskit.circuit import CircuitInstruction
    from qiskit.circuit.library import XGate, YGate, ZGate

    gates = (None, XGate(), YGate(), ZGate())
    qc = base.copy()
    data = qc.data
    for index, code in sorted(pattern, reverse=True):  # back to front: indices stay valid
        inserts = []
        for q in ops[index][1]:
            if code & 3:
                inserts.append(CircuitInstruction(gates[code & 3], (qc.qubits[q],), ()))
            code >>= 2
        for inst in reversed(inserts):
            data.insert(index + 1, inst)
    return qc


def _simulator(method: str, num_qubits: int, noise_model=None):
    from qiskit_aer import AerSimulator  # pylint: disable=import-outside-toplevel

    precision = "single" if num_qubits >= SINGLE_PRECISION_MIN_QUBITS else "double"
    threads = 0 if num_qubits >= PARALLEL_MIN_QUBITS else 1
    return AerSimulator(method=method, precision=precision, noise_model=noise_model,
                        max_memory_mb=MEMORY_BUDGET_MB, max_parallel_threads=threads)


def _check(result) -> None:
    if not result.success:
        raise RuntimeError(f"Aer simulation failed: {result.status}")


def _memory(result) -> int:
    return max((int(r.metadata.get("required_memory_mb", 0)) for r in result.results),
               default=0)


def _counts(result, index: int) -> dict[int, int]:
    counts = result.data(index).get("counts", {})
    return {int(k, 16): int(v) for k, v in counts.items()}


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


# -- simulation ----------------------------------------------------------------------------


def _dense_probabilities(num_qubits: int, ops: Sequence[Op], method: str,
                         noise_model=None) -> tuple[np.ndarray, int]:
    qc = aer_circuit(num_qubits, ops, labels=noise_model is not None)
    qc.save_probabilities()
    result = _simulator(method, num_qubits, noise_model).run(qc).result()
    _check(result)
    probs = np.asarray(result.data(0)["probabilities"], dtype=float)
    probs = np.clip(probs, 0.0, None)
    return probs / probs.sum(), _memory(result)


def _sparse(probs: np.ndarray) -> dict[int, float]:
    nonzero = np.flatnonzero(probs > _CUTOFF)
    return dict(zip(nonzero.tolist(), probs[nonzero].tolist()))


def simulate_ideal(num_qubits: int, ops: Sequence[Op], shots: int,
                   rng: np.random.Generator) -> CircuitResult:
    """An ideal circuit's histogram and (when bounded) exact probabilities."""
    method = "stabilizer" if is_clifford(ops) else "statevector"
    if num_qubits <= DENSE_PROBABILITY_MAX_QUBITS:
        probs, memory = _dense_probabilities(num_qubits, ops, method)
        return CircuitResult(sim.sample_histogram(probs, shots, rng), _sparse(probs),
                             method, memory)
    backend = _simulator(method, num_qubits)
    qc = aer_circuit(num_qubits, ops, measure=True)
    result = backend.run(qc, shots=shots, seed_simulator=_seed(rng)).result()
    _check(result)
    histogram = _counts(result, 0)
    memory = _memory(result)
    exact = None
    distinct = len(histogram)
    if distinct <= MAX_EXACT_OUTCOMES and (2 * distinct <= shots or shots < _FEW_SHOTS):
        # Are the sampled outcomes the whole support? Look their probabilities up.
        outcomes = sorted(histogram)
        qc = aer_circuit(num_qubits, ops)
        qc.save_amplitudes_squared(outcomes)
        result = backend.run(qc).result()
        _check(result)
        values = np.asarray(result.data(0)["amplitudes_squared"], dtype=float)
        tolerance = 1e-5 if num_qubits >= SINGLE_PRECISION_MIN_QUBITS else 1e-9
        if abs(values.sum() - 1.0) <= tolerance:
            values = values / values.sum()
            exact = {k: v for k, v in zip(outcomes, values.tolist()) if v > _CUTOFF}
    return CircuitResult(histogram, exact, method, memory)


def _sample_error_patterns(probabilities: np.ndarray, num_qubits_per_op: Sequence[int],
                           shots: int, rng: np.random.Generator
                           ) -> tuple[int, Counter]:
    """Draw the Pauli errors of ``shots`` trajectories.

    Returns:
        The number of error-free shots and a ``Counter`` of the other shots' error
        patterns, each a tuple of ``(op index, Pauli index)``.
    """
    num_ops = len(probabilities)
    if num_ops == 0 or not np.any(probabilities > 0):
        return shots, Counter()
    log_keep = np.log1p(-probabilities)
    p_clean = math.exp(float(log_keep.sum()))
    clean = int(rng.binomial(shots, p_clean))
    rest = shots - clean
    patterns: Counter = Counter()
    if rest == 0:
        return clean, patterns
    # P(first error at j | at least one error) = p_j prod_{i<j} (1 - p_i) / (1 - p_clean)
    prefix = np.concatenate([[0.0], np.cumsum(log_keep)[:-1]])
    first_weights = probabilities * np.exp(prefix)
    first_weights /= first_weights.sum()
    firsts = rng.choice(num_ops, size=rest, p=first_weights)
    for first in firsts.tolist():
        later = np.flatnonzero(rng.random(num_ops - first - 1) < probabilities[first + 1:])
        where = [first, *(later + first + 1).tolist()]
        pattern = tuple(
            (j, int(rng.integers(1, 4 ** num_qubits_per_op[j]))) for j in where
        )
        patterns[pattern] += 1
    return clean, patterns


def simulate_noisy(num_qubits: int, ops: Sequence[Op], shots: int, model: NoiseModel,
                   rng: np.random.Generator) -> CircuitResult:
    """A noisy circuit's histogram (``shots`` samples of IonQ's per-gate model)."""
    if num_qubits <= DENSITY_MATRIX_MAX_QUBITS:
        probs, memory = _dense_probabilities(num_qubits, ops, "density_matrix",
                                             noise_model=model.aer_noise_model(readout=False))
        if model.readout > 0:
            probs = apply_readout_to_probabilities(probs, num_qubits, model.readout)
        return CircuitResult(sim.sample_histogram(probs, shots, rng), None, "density_matrix",
                             memory)
    sizes = [len(qubits) for _, qubits, _ in ops]
    probabilities = np.array([model.pauli_error_probability(k) for k in sizes], dtype=float)
    clean, patterns = _sample_error_patterns(probabilities, sizes, shots, rng)
    # Pauli errors keep a Clifford circuit Clifford.
    method = "stabilizer" if is_clifford(ops) else "statevector"
    backend = _simulator(method, num_qubits)
    histogram: Counter = Counter()
    memory = 0
    base = aer_circuit(num_qubits, ops, measure=True)
    if clean:
        result = backend.run(base, shots=clean, seed_simulator=_seed(rng)).result()
        _check(result)
        histogram.update(_counts(result, 0))
        memory = _memory(result)
    # Shots with the same pattern share a run; runs with the same shot count share a call.
    by_count: dict[int, list[tuple]] = {}
    for pattern, count in sorted(patterns.items()):
        by_count.setdefault(count, []).append(pattern)
    for count, group in sorted(by_count.items()):
        for start in range(0, len(group), _TRAJECTORY_CHUNK):
            chunk = group[start:start + _TRAJECTORY_CHUNK]
            circuits = [_with_paulis(base, ops, pattern) for pattern in chunk]
            result = backend.run(circuits, shots=count, seed_simulator=_seed(rng)).result()
            _check(result)
            for index in range(len(chunk)):
                histogram.update(_counts(result, index))
            memory = max(memory, _memory(result))
    out = dict(histogram)
    if model.readout > 0:
        out = apply_readout_to_histogram(out, num_qubits, model.readout, rng)
    return CircuitResult(out, None, f"{method}-trajectories", memory)


def estimate_work(circuit: ParsedCircuit, shots: int, model: NoiseModel) -> float:
    """Expected amplitude updates (gates x state size x runs) of :func:`simulate_circuit`.

    For a work cap checked before any simulation (a 4xx instead of hours of CPU): the
    ideal path is one run (two for wide circuits), the density matrix one run on ``4**n``
    entries, the trajectories one run plus one per shot with an error (the expected
    number, from the model's rates and the gate counts). Gates on more than two qubits
    are counted once (their decomposition is not built here). Clifford circuits, which
    Aer runs far cheaper on its stabilizer method, are not discounted.
    """
    n = circuit.num_qubits
    gates = max(len(circuit.gates), 1)
    if model.is_ideal:
        return gates * float(2**n) * (1 if n <= DENSE_PROBABILITY_MAX_QUBITS else 2)
    if n <= DENSITY_MATRIX_MAX_QUBITS:
        return gates * float(4**n)
    p_clean = ((1.0 - model.pauli_error_probability(1)) ** circuit.gates_1q
               * (1.0 - model.pauli_error_probability(2)) ** circuit.gates_2q)
    return gates * float(2**n) * (1.0 + shots * (1.0 - p_clean))


def simulate_circuit(circuit: ParsedCircuit, shots: int, model: NoiseModel,
                     rng: np.random.Generator, layout: Sequence[int] | None = None
                     ) -> CircuitResult:
    """Simulate one parsed circuit on Aer.

    Args:
        circuit: The parsed circuit.
        shots: Number of shots.
        model: The noise model (``ideal`` for none).
        rng: The job's seeded generator (all randomness comes from it).
        layout: Optional permutation: logical qubit ``q`` is simulated on qubit
            ``layout[q]`` (a debiasing variant); outcomes are mapped back to logical
            qubits, so the result does not depend on it on a noiseless machine.

    Returns:
        The histogram (and exact probabilities where bounded), in logical qubit order.
    """
    n = circuit.num_qubits
    ops = circuit_ops(circuit, decompose_wide=not model.is_ideal)
    if layout is not None:
        ops = permute_ops(ops, layout)
    if model.is_ideal:
        result = simulate_ideal(n, ops, shots, rng)
    else:
        result = simulate_noisy(n, ops, shots, model, rng)
    if layout is not None and list(layout) != list(range(n)):
        result = CircuitResult(
            _unpermute(result.histogram, layout),
            None if result.probabilities is None else _unpermute(result.probabilities,
                                                                 layout),
            result.method,
            result.required_memory_mb,
        )
    return result


def _program_circuit(num_qubits: int, num_clbits: int, prefix, terminal):
    """An Aer circuit of a lowered OpenQASM program: labelled gates (wider ones
    decomposed), measurements, resets and ``if``/``else`` on classical bits."""
    # pylint: disable=import-outside-toplevel
    from qiskit import QuantumCircuit
    from qiskit.circuit.classical import expr
    from qiskit.circuit.library import UnitaryGate

    qc = QuantumCircuit(num_qubits, max(num_clbits, 1))

    def emit(ops) -> None:
        for op in ops:
            if isinstance(op, sim.Unitary):
                if _is_identity(op.matrix):
                    continue
                parts = ([(op.matrix, tuple(range(len(op.qubits))))] if len(op.qubits) <= 2
                         else _decompose((None, (op.matrix,)), 0, len(op.qubits)))
                for matrix, local in parts:
                    qubits = [op.qubits[q] for q in local]
                    label = LABEL_1Q if len(qubits) == 1 else LABEL_2Q
                    qc.append(UnitaryGate(matrix, check_input=False, label=label), qubits)
            elif isinstance(op, sim.Measure):
                qc.measure(op.qubit, op.clbit)
            elif isinstance(op, sim.Reset):
                qc.reset(op.qubit)
            elif isinstance(op, sim.Conditional):
                condition = None
                for i, c in enumerate(op.clbits):
                    bit = expr.lift(qc.clbits[c])
                    term = bit if (op.value >> i) & 1 else expr.logic_not(bit)
                    condition = term if condition is None else expr.logic_and(condition, term)
                with qc.if_test(condition) as otherwise:
                    emit(op.true_body)
                if op.false_body:
                    with otherwise:
                        emit(op.false_body)
            else:  # pragma: no cover - guarded by the parser
                raise TypeError(f"unknown operation {op!r}")

    emit(prefix)
    for qubit, clbit in terminal:
        qc.measure(qubit, clbit)
    return qc


def simulate_program(program, shots: int, model: NoiseModel, rng: np.random.Generator
                     ) -> list[int]:
    """Per-shot classical outcomes (clbit 0 = least significant bit) of a lowered OpenQASM
    program under ``model``: Aer's state vector, one trajectory per shot, IonQ's channel
    after every gate and ``model.readout`` on every measurement."""
    qc = _program_circuit(program.num_qubits, program.num_clbits, program.prefix,
                          program.terminal)
    backend = _simulator("statevector", program.num_qubits, model.aer_noise_model())
    result = backend.run(qc, shots=shots, seed_simulator=_seed(rng), memory=True).result()
    _check(result)
    return [int(bits.replace(" ", ""), 2) for bits in result.get_memory(0)]


def _unpermute(values: dict, layout: Sequence[int]) -> dict:
    """Re-key ``{simulated index: value}`` to logical indices (bit ``layout[q]`` -> ``q``)."""
    out: dict = {}
    for index, value in values.items():
        logical = 0
        for q, p in enumerate(layout):
            logical |= ((index >> p) & 1) << q
        out[logical] = out.get(logical, 0) + value
    return out


__all__ = [
    "CircuitResult",
    "simulate_circuit",
    "simulate_ideal",
    "simulate_noisy",
    "simulate_program",
    "estimate_work",
    "circuit_ops",
    "permute_ops",
    "aer_circuit",
    "DENSE_PROBABILITY_MAX_QUBITS",
    "DENSITY_MATRIX_MAX_QUBITS",
    "SINGLE_PRECISION_MIN_QUBITS",
    "MAX_EXACT_OUTCOMES",
    "MEMORY_BUDGET_MB",
]

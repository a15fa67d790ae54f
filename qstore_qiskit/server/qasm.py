"""OpenQASM input (``ionq.qasm3.v1``): parse with Qiskit, lower to simulator operations.

Mid-circuit measurement, reset and ``if``/``else`` on classical bits are supported;
other control flow (loops, ``switch``) is rejected with a 400.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import simulator as sim
from .errors import ApiError, bad_request, unprocessable


def qasm3_available() -> bool:
    """Whether OpenQASM 3 parsing is possible (``qiskit.qasm3.loads`` needs the
    ``qiskit-qasm3-import`` package)."""
    return importlib.util.find_spec("qiskit_qasm3_import") is not None

_SKIP = {"barrier", "delay", "id", "global_phase"}


@dataclass(frozen=True)
class QasmProgram:
    """A lowered OpenQASM program.

    Attributes:
        num_qubits: Qubits in the program.
        num_clbits: Classical bits in the program.
        registers: ``(name, [clbit index, ...])`` for each classical register.
        prefix: Operations up to the last non-terminal measurement (branch-simulated).
        terminal: ``(qubit, clbit)`` measurements at the very end (sampled directly).
        gates_1q: Single-qubit gate count.
        gates_2q: Multi-qubit gate count.
        branch_points: Measurements and resets in ``prefix`` (each may split a branch).
    """

    num_qubits: int
    num_clbits: int
    registers: tuple[tuple[str, tuple[int, ...]], ...]
    prefix: tuple[sim.Operation, ...]
    terminal: tuple[tuple[int, int], ...]
    gates_1q: int
    gates_2q: int
    branch_points: int = 0

    def max_branch_amplitudes(self, shots: int) -> int:
        """Upper bound on the amplitudes held at once by the branching sampler."""
        branches = min(shots, 1 << min(self.branch_points, 62))
        return branches << self.num_qubits


def _count_branch_points(ops) -> int:
    count = 0
    for op in ops:
        if isinstance(op, (sim.Measure, sim.Reset)):
            count += 1
        elif isinstance(op, sim.Conditional):
            count += max(_count_branch_points(op.true_body), _count_branch_points(op.false_body))
    return count


class _Lowering:
    def __init__(self) -> None:
        self.cache: dict[Any, np.ndarray] = {}
        self.n1 = 0
        self.n2 = 0

    def matrix(self, operation) -> np.ndarray:
        try:
            key = (operation.name, tuple(float(p) for p in operation.params),
                   operation.num_qubits)
        except (TypeError, ValueError):
            key = None
        if key is not None and key in self.cache:
            return self.cache[key]
        try:
            mat = np.asarray(operation.to_matrix(), dtype=complex)
        except Exception:  # pylint: disable=broad-except
            from qiskit.quantum_info import Operator  # pylint: disable=import-outside-toplevel

            try:
                mat = np.asarray(Operator(operation).data, dtype=complex)
            except Exception as exc:  # pylint: disable=broad-except
                raise bad_request(f"cannot simulate instruction '{operation.name}': {exc}")
        if key is not None:
            self.cache[key] = mat
        return mat

    def lower(self, circuit, qmap: list[int], cmap: list[int]) -> list[sim.Operation]:
        from qiskit.circuit import ClassicalRegister, Clbit, IfElseOp  # pylint: disable=C0415
        from qiskit.circuit import ControlFlowOp  # pylint: disable=C0415

        out: list[sim.Operation] = []
        for inst in circuit.data:
            op = inst.operation
            qubits = [qmap[circuit.find_bit(q).index] for q in inst.qubits]
            clbits = [cmap[circuit.find_bit(c).index] for c in inst.clbits]
            if op.name in _SKIP:
                continue
            if op.name == "measure":
                out.append(sim.Measure(qubits[0], clbits[0]))
            elif op.name == "reset":
                out.append(sim.Reset(qubits[0]))
            elif isinstance(op, IfElseOp):
                cond = op.condition
                if not isinstance(cond, tuple):
                    raise bad_request("only 'if' conditions comparing bits/registers to an "
                                      "integer are supported")
                target, value = cond
                if isinstance(target, Clbit):
                    cbits = (cmap[circuit.find_bit(target).index],)
                elif isinstance(target, ClassicalRegister):
                    cbits = tuple(cmap[circuit.find_bit(b).index] for b in target)
                else:  # pragma: no cover - qiskit only builds the two above
                    raise bad_request("unsupported 'if' condition")
                bodies = []
                for block in op.blocks:
                    inner_q = qubits
                    inner_c = clbits
                    bodies.append(tuple(self.lower(block, inner_q, inner_c)))
                out.append(sim.Conditional(cbits, int(value), bodies[0],
                                           bodies[1] if len(bodies) > 1 else ()))
            elif isinstance(op, ControlFlowOp):
                raise bad_request(f"control flow '{op.name}' is not supported")
            else:
                if getattr(op, "_directive", False):
                    continue
                if len(qubits) == 1:
                    self.n1 += 1
                else:
                    self.n2 += 1
                out.append(sim.Unitary(self.matrix(op), tuple(qubits)))
        return out


# Every ``include`` statement, with its file name when it has the quoted form. The
# text is scanned before any parser sees it, so no include reaches the file system.
_INCLUDE = re.compile(r'\binclude\b\s*(?:"([^"\n]*)"|(\S*))')
# The only includes accepted, per OpenQASM version; both are built into the parsers.
_ALLOWED_INCLUDES = {2: frozenset({"qelib1.inc"}), 3: frozenset({"stdgates.inc"})}


def check_includes(source: str, version: int) -> None:
    """Refuse any ``include`` but the standard library of OpenQASM ``version``.

    The check reads nothing from disk and its message never depends on the named file
    (so it is not an existence oracle).

    Raises:
        ApiError: 400 naming the allowed include.
    """
    allowed = _ALLOWED_INCLUDES[version]
    for match in _INCLUDE.finditer(source):
        if match.group(1) not in allowed:
            raise bad_request(
                f"OpenQASM {version} programs may only include "
                f"{' or '.join(repr(a) for a in sorted(allowed))}; other includes are "
                "not supported", keys=["input.data"])


def load_program(source: str, max_qubits: int, declared_qubits: int | None = None
                 ) -> QasmProgram:
    """Parse OpenQASM 3 (or 2) text into a :class:`QasmProgram`.

    Raises:
        ApiError: 400 on a parse error or unsupported construct, 422 if too wide.
    """
    if not isinstance(source, str) or not source.strip():
        raise bad_request("input.data must be a non-empty OpenQASM string")
    try:
        if source.lstrip().startswith("OPENQASM 2"):
            check_includes(source, 2)
            from qiskit import qasm2  # pylint: disable=import-outside-toplevel

            # No include path: ``qelib1.inc`` is built in, nothing else may be read.
            circuit = qasm2.loads(source, include_path=(),
                                  custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        else:
            check_includes(source, 3)
            if not qasm3_available():
                raise ApiError(501, "OpenQASM 3 input needs the 'qiskit-qasm3-import' package "
                                    "on the server")
            from qiskit import qasm3  # pylint: disable=import-outside-toplevel

            circuit = qasm3.loads(source)
    except ApiError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        raise bad_request(f"could not parse OpenQASM: {exc}") from None
    if circuit.num_qubits > max_qubits:
        raise unprocessable(
            f"circuit uses {circuit.num_qubits} qubits; this backend supports at most "
            f"{max_qubits}"
        )
    if declared_qubits is not None and declared_qubits < circuit.num_qubits:
        raise bad_request(
            f"input.qubits is {declared_qubits} but the program declares {circuit.num_qubits}"
        )
    lowering = _Lowering()
    ops = lowering.lower(circuit, list(range(circuit.num_qubits)),
                         list(range(circuit.num_clbits)))
    # Split off the trailing measurements: they can be sampled from the final
    # distribution instead of branching the state once per measured qubit.
    cut = len(ops)
    while cut > 0 and isinstance(ops[cut - 1], sim.Measure):
        cut -= 1
    terminal = tuple((m.qubit, m.clbit) for m in ops[cut:])  # type: ignore[union-attr]
    registers = tuple(
        (reg.name, tuple(circuit.find_bit(b).index for b in reg)) for reg in circuit.cregs
    )
    return QasmProgram(
        num_qubits=max(circuit.num_qubits, 1),
        num_clbits=circuit.num_clbits,
        registers=registers,
        prefix=tuple(ops[:cut]),
        terminal=terminal,
        gates_1q=lowering.n1,
        gates_2q=lowering.n2,
        branch_points=_count_branch_points(ops[:cut]),
    )


def sample_program(program: QasmProgram, shots: int, rng: np.random.Generator,
                   noise: sim.NoiseModel | None = None) -> list[int]:
    """Sample ``shots`` classical outcomes (clbit 0 = LSB) of ``program``."""
    n = program.num_qubits
    branches = sim.run_branches(program.prefix, [sim.Branch(sim.zero_state(n), 0, shots)], n,
                                rng)
    outcomes: list[int] = []
    for br in branches:
        if not program.terminal:
            outcomes.extend([br.clbits] * br.shots)
            continue
        probs = sim.probabilities(br.state)
        if noise is not None:
            probs = noise.apply(probs, n, program.gates_1q, program.gates_2q)
        draws = rng.choice(probs.size, size=br.shots, p=probs / probs.sum()).astype(np.int64)
        values = np.full(br.shots, br.clbits, dtype=np.int64)
        # Later measurements into the same clbit win, as in sequential execution.
        for qubit, clbit in program.terminal:
            values = (values & ~(1 << clbit)) | (((draws >> qubit) & 1) << clbit)
        outcomes.extend(int(v) for v in values)
    order = rng.permutation(len(outcomes))
    return [outcomes[i] for i in order]


def shots_artifact(program: QasmProgram, outcomes: list[int]) -> dict[str, Any]:
    """The ``ionq.result.shots.json.v2`` payload: one ``{"registers": ...}`` per shot.

    Each register maps to a list of its bit values indexed by bit position (bit 0
    first), which is how qiskit-ionq's ``_format_result_qasm3`` reads them.
    """
    shots = []
    for value in outcomes:
        shots.append({"registers": {
            name: [(value >> c) & 1 for c in bits] for name, bits in program.registers
        }})
    return {"shots": shots}


__all__ = ["QasmProgram", "qasm3_available", "load_program", "sample_program", "shots_artifact"]

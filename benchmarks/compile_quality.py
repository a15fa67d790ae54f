#!/usr/bin/env python
# This code is part of qstore-qiskit.
#
# Licensed under the Apache License, Version 2.0.

"""Compile quality of the qstore native-gate compiler against its peers on MQT Bench.

For every circuit of the MQT Bench ``INDEP``-level suite (see :mod:`_mqt`) this prints,
side by side, for each compiler:

* the number of native two-qubit gates (MS, or ZZ on Forte-class devices),
* the number of native single-qubit gates (GPi + GPi2; RZ is a virtual frame change
  and is not counted),
* the estimated success probability, ``estimated_fidelity(output, ionq_target(device))``
  applied to **all** outputs (same error model for everybody),
* the compile time,

and, for our compiler, whether the output is unitary-equivalent to the input (✓/✗).

Compilers:

``qiskit-ionq``
    ``transpile(qc, IonQProvider("dummy").get_backend("simulator", gateset="native"),
    optimization_level=1)`` (``qpu.forte-1`` etc. for Forte devices, whose native
    entangler is ZZ). The backend is built offline, see :func:`_mqt.qiskit_ionq_backend`.
``qiskit-mqt``
    ``transpile(qc, target=<MQT Bench ionq_aria_25 / ionq_forte_36>, optimization_level=3)``.
``ours-L2`` / ``ours-L3``
    ``generate_ionq_pass_manager(device=device, optimization_level=2|3).run(qc)``
    (level 3 only if our compiler accepts it): exact, unitary-equivalent output.
``ours-L2z``
    The same with ``qubits_initially_zero=True``, which is what Qiskit's ``transpile``
    assumes by default and what our backends run: the compiler may use that qubits
    start in ``|0>``, so the output is checked for the same *state* from ``|0...0>``
    (same measurement statistics) instead of the same unitary. Circuits whose state is
    a product state (e.g. ``qft`` on ``|0...0>``) then need no MS at all.

Methodology:

* Final measurements are removed from every input circuit before compiling (for all
  compilers alike), so that outputs can be compared as unitaries; the estimated
  success therefore excludes readout error.
* Compile time is wall-clock time of the whole call, including building the pass
  manager (``transpile`` builds one per call too), best of ``--repeat`` runs (a
  compiler taking over 1 s on a circuit is timed once). The runs of the compilers are
  interleaved circuit by circuit, so that load on a shared machine affects them alike.
  Every compiler compiles a small circuit once, untimed, before it is measured.
* The peers get ``seed_transpiler=10`` so the runs are reproducible.
* MQT Bench registers its IonQ gate equivalences in Qiskit's process-global
  ``SessionEquivalenceLibrary`` under the same gate names as qiskit-ionq's, so the
  MQT-target compilations run last, after all the other compilers are done.
* Unitary equivalence (not timed) is checked for our outputs on circuits of at most
  ``--max-verify-qubits`` qubits with ``Operator(...).equiv(...)``.

Until :mod:`qstore_qiskit.transpiler` exists, the script runs with the two peers only and
estimates success probability with MQT Bench's IonQ error rates (this is printed).

The exit code is always 0: this is a report. The pass/fail lines at the end say whether
our compiler meets its targets.

Usage::

    python benchmarks/compile_quality.py [--quick] [--device aria-1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from qiskit import QuantumCircuit, transpile
from qiskit.converters import circuit_to_dag, dag_to_circuit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
from _mqt import (  # noqa: E402
    DEFAULT_SIZES,
    GROVER_MAX_QUBITS,
    QUICK_SIZES,
    SCALE_SIZES,
    SCALE_SUITE,
    SEED,
    SUITE,
    TKET_CASES,
    BenchmarkCircuit,
    count_native_1q,
    count_two_qubit,
    load_cases,
    load_suite,
    median,
    mqt_available,
    mqt_target,
    qiskit_ionq_backend,
    random_cases,
    tket_available,
    tket_compile,
    transpile_with_qstore_stages,
    unitary_equivalent,
)
from _mqt import _compact_to_virtual  # noqa: E402  pylint: disable=wrong-import-position

DEVICES: tuple[str, ...] = ("simulator", "aria-1", "aria-2", "forte-1", "forte-enterprise-1")
PEER_IONQ = "qiskit-ionq"
PEER_MQT = "qiskit-mqt"
PEER_TKET = "tket"
#: Benchmarks on which our two-qubit count must be at most ``STRUCTURED_MS_RATIO`` x.
STRUCTURED: tuple[str, ...] = ("qft", "qftentangled", "qaoa")
STRUCTURED_MS_RATIO = 0.55
SUITE_MS_RATIO = 0.8
SUITE_1Q_RATIO = 0.5
#: Relative tolerance when comparing estimated success probabilities.
FIDELITY_RTOL = 1e-9
#: A compiler slower than this on a circuit is timed once instead of ``--repeat`` times.
SLOW_SECONDS = 1.0


@dataclass
class CompileResult:
    """What one compiler produced for one circuit.

    Attributes:
        two_qubit: Native entangling gates (MS + ZZ).
        one_qubit: Native single-qubit gates (GPi + GPi2).
        fidelity: Estimated success probability.
        seconds: Compile time (best of the timed runs).
        equivalent: Unitary equivalence with the input, ``None`` if not checked.
        error: ``"ExceptionType: message"`` if compilation failed, else ``None``.
    """

    two_qubit: int | None = None
    one_qubit: int | None = None
    fidelity: float | None = None
    seconds: float | None = None
    equivalent: bool | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the compilation succeeded."""
        return self.error is None


@dataclass
class Compiler:
    """A compiler under test.

    Attributes:
        name: Column name.
        description: What is run, for the report header.
        compile: ``QuantumCircuit -> QuantumCircuit``.
        verify: Check unitary equivalence of the outputs.
        ours: This is our compiler (subject to the targets).
        short: Column label in the table (defaults to ``name``).
    """

    name: str
    description: str
    compile: Callable[[QuantumCircuit], QuantumCircuit]
    short: str = ""
    verify: bool = False
    ours: bool = False
    verify_state: bool = False
    results: dict[str, CompileResult] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Compilers and metrics
# --------------------------------------------------------------------------------------


def _peer_ionq_device(device: str) -> str:
    """qiskit-ionq backend used as the peer for ``device``.

    The reference is the native-gate ``simulator`` backend (MS entangler); Forte-class
    devices use their own QPU backend so that the peer targets ZZ like we do.
    """
    return device if "forte" in device else "simulator"


def _make_ionq_peer(device: str) -> Compiler:
    backend_name = _peer_ionq_device(device)
    backend = qiskit_ionq_backend(backend_name, gateset="native")

    def run(circuit: QuantumCircuit) -> QuantumCircuit:
        return transpile(circuit, backend, optimization_level=1, seed_transpiler=SEED)

    return Compiler(
        PEER_IONQ,
        f"qiskit-ionq: transpile(qc, IonQProvider('dummy').get_backend('{backend_name}', "
        f"gateset='native'), optimization_level=1)  [{backend.num_qubits}-qubit target, "
        "built offline]",
        run,
        short="ionq",
    )


def _make_mqt_peer(device: str) -> Compiler:
    holder: dict[str, Any] = {}

    def run(circuit: QuantumCircuit) -> QuantumCircuit:
        # Built on first use only: it registers equivalences process-wide (see _mqt).
        if "target" not in holder:
            holder["target"] = mqt_target(device)
        return transpile(
            circuit, target=holder["target"], optimization_level=3, seed_transpiler=SEED
        )

    name = "ionq_forte_36" if "forte" in device else "ionq_aria_25"
    return Compiler(
        PEER_MQT,
        f"qiskit + MQT Bench: transpile(qc, target=get_device('{name}'), optimization_level=3)",
        run,
        short="mqt",
    )


def _make_tket_peer() -> Compiler:
    return Compiler(
        PEER_TKET,
        "pytket: FullPeepholeOptimise(allow_swaps=False, target_2qb_gate=TK2) + "
        "AutoRebase({ZZPhase, PhasedX, Rz}); ZZPhase counted/priced as a partial MS, "
        "PhasedX as the GPi/GPi2 it needs (see _mqt.tket_compile)",
        tket_compile,
        short="tket",
    )


def _make_ours_transpile(device: str, levels: Sequence[int]) -> list[Compiler]:
    """Our compiler through Qiskit's ``transpile`` and the ``qstore`` stage plugins
    (the path issue 15 measured; qubits start in |0>, so outputs are state-checked)."""
    # pylint: disable=import-outside-toplevel
    from qstore_qiskit.transpiler import ionq_target

    target = ionq_target(device)
    compilers = []
    for level in levels:

        def run(circuit: QuantumCircuit, level: int = level) -> QuantumCircuit:
            return transpile_with_qstore_stages(circuit, target, level)

        compilers.append(
            Compiler(
                f"ours-T{level}",
                f"qstore via transpile(qc, target=ionq_target('{device}'), init_method="
                f"translation_method=optimization_method='qstore', optimization_level={level})"
                "  [state-equivalent from |0...0>]",
                run,
                short=f"oursT{level}",
                verify=True,
                ours=True,
                verify_state=True,
            )
        )
    return compilers


def _load_ours() -> tuple[Any, Any, Any] | str:
    """Import our compiler API, or return why it cannot be imported."""
    try:
        # pylint: disable=import-outside-toplevel
        from qstore_qiskit.transpiler import (
            estimated_fidelity,
            generate_ionq_pass_manager,
            ionq_target,
        )
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return generate_ionq_pass_manager, ionq_target, estimated_fidelity


def _make_ours(
    generate: Any, device: str, levels: Sequence[int], with_zero: bool = True
) -> tuple[list[Compiler], str]:
    """Our compiler at each requested optimization level that exists."""
    compilers = []
    notes = []
    for level in levels:
        try:
            generate(device=device, optimization_level=level)
        except Exception as exc:  # pylint: disable=broad-except
            notes.append(f"level {level} not available ({type(exc).__name__}: {exc})")
            continue

        def run(circuit: QuantumCircuit, level: int = level) -> QuantumCircuit:
            return generate(device=device, optimization_level=level).run(circuit)

        compilers.append(
            Compiler(
                f"ours-L{level}",
                f"qstore: generate_ionq_pass_manager(device='{device}', "
                f"optimization_level={level}).run(qc)",
                run,
                short=f"ours{level}",
                verify=True,
                ours=True,
            )
        )
    if 2 in levels and with_zero:

        def run_zero(circuit: QuantumCircuit) -> QuantumCircuit:
            return generate(device=device, optimization_level=2, qubits_initially_zero=True).run(circuit)

        compilers.append(
            Compiler(
                "ours-L2z",
                f"qstore: generate_ionq_pass_manager(device='{device}', optimization_level=2, "
                "qubits_initially_zero=True).run(qc)  [state-equivalent from |0...0>]",
                run_zero,
                short="ours2z",
                verify=True,
                ours=True,
                verify_state=True,
            )
        )
    return compilers, "; ".join(notes)


def _drop_idle_qubits(circuit: QuantumCircuit) -> QuantumCircuit:
    """``circuit`` without its idle wires (e.g. the ancillas of a device-wide layout)."""
    dag = circuit_to_dag(circuit)
    idle = [wire for wire in dag.idle_wires() if wire in dag.qubits]
    if not idle:
        return circuit
    dag.remove_qubits(*idle)
    return dag_to_circuit(dag)


def _make_fidelity(ours_api: tuple[Any, Any, Any] | None, device: str) -> tuple[Callable, str]:
    """Success-probability estimator shared by all compilers, and its description."""
    if ours_api is not None:
        _, ionq_target, estimated_fidelity = ours_api
        target = ionq_target(device)

        def ours_fidelity(circuit: QuantumCircuit) -> float:
            try:
                return float(estimated_fidelity(circuit, target))
            except Exception:  # pylint: disable=broad-except
                # e.g. a device-wide output wider than the target: gates are scored by
                # name, so idle ancillas do not matter.
                return float(estimated_fidelity(_drop_idle_qubits(circuit), target))

        return ours_fidelity, f"qstore estimated_fidelity(output, ionq_target('{device}'))"

    # Fallback while our compiler does not exist: MQT Bench's IonQ error rates, by name.
    errors: dict[str, float] = {}
    if mqt_available():
        # pylint: disable=import-outside-toplevel
        from mqt.bench.targets import get_device

        name = "ionq_forte_36" if "forte" in device else "ionq_aria_25"
        mqt_tgt = get_device(name)
        for op_name in mqt_tgt.operation_names:
            props = mqt_tgt[op_name]
            values = [p.error for p in props.values() if p is not None and p.error is not None]
            if values:
                errors[op_name] = max(values)
        if "ms" in errors:
            errors.setdefault("zz", errors["ms"])
        if "zz" in errors:
            errors.setdefault("ms", errors["zz"])
    else:
        errors = {"gpi": 2e-4, "gpi2": 2e-4, "ms": 1.28e-2, "zz": 1.28e-2, "measure": 6.3e-3}

    def fallback(circuit: QuantumCircuit) -> float:
        prob = 1.0
        for instruction in circuit.data:
            prob *= 1.0 - errors.get(instruction.operation.name, 0.0)
        return prob

    return fallback, (
        "FALLBACK (our compiler not importable): product of (1 - error) by gate name with "
        "MQT Bench's IonQ error rates"
    )


#: The clock of the timed runs: wall-clock by default; ``--cpu-time`` switches to the
#: process's CPU time, which other processes on a shared machine do not inflate.
_CLOCK: list[Callable[[], float]] = [time.perf_counter]


def _time_phase(
    compilers: Sequence[Compiler], case: BenchmarkCircuit, repeat: int
) -> dict[str, tuple[QuantumCircuit | None, float, str | None]]:
    """Compile ``case`` with every compiler, interleaving their timed runs.

    Round ``r`` runs each compiler once, so that load spikes on a shared machine hit all
    compilers alike; each keeps its best time. A compiler that fails or takes more than
    :data:`SLOW_SECONDS` is not run again.

    Returns:
        ``name -> (output or None, best seconds, error or None)``.
    """
    outcome: dict[str, tuple[QuantumCircuit | None, float, str | None]] = {
        comp.name: (None, math.inf, None) for comp in compilers
    }
    active = list(compilers)
    for _ in range(max(1, repeat)):
        for comp in list(active):
            _, best, _ = outcome[comp.name]
            try:
                clock = _CLOCK[0]
                start = clock()
                output = comp.compile(case.circuit)
                elapsed = clock() - start
            except Exception as exc:  # pylint: disable=broad-except
                error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                outcome[comp.name] = (None, math.inf, error)
                active.remove(comp)
                continue
            outcome[comp.name] = (output, min(best, elapsed), None)
            if elapsed > SLOW_SECONDS:
                active.remove(comp)
    return outcome


def _evaluate(
    compiler: Compiler,
    case: BenchmarkCircuit,
    output: QuantumCircuit | None,
    seconds: float,
    error: str | None,
    fidelity: Callable[[QuantumCircuit], float],
    max_verify_qubits: int,
) -> CompileResult:
    """Metrics of one (untimed) compiled output."""
    if output is None:
        return CompileResult(error=error or "no output")
    result = CompileResult(
        two_qubit=count_two_qubit(output),
        one_qubit=count_native_1q(output),
        seconds=seconds,
    )
    try:
        result.fidelity = fidelity(output)
    except Exception as exc:  # pylint: disable=broad-except
        result.error = f"fidelity: {type(exc).__name__}: {exc}".splitlines()[0][:200]
    if compiler.verify and case.circuit.num_qubits <= max_verify_qubits:
        try:
            if compiler.verify_state:
                from qiskit.quantum_info import Statevector

                compiled = output
                if output.num_qubits != case.circuit.num_qubits:
                    # transpile widened it to the device: back to the input's qubits
                    compiled = _compact_to_virtual(output, case.circuit.num_qubits)
                elif output.layout is not None and output.layout.initial_layout is not None:
                    compiled = _compact_to_virtual(output, case.circuit.num_qubits)
                result.equivalent = compiled is not None and Statevector(case.circuit).equiv(
                    Statevector(compiled)
                )
            else:
                result.equivalent = unitary_equivalent(case.circuit, output)
        except Exception:  # pylint: disable=broad-except
            traceback.print_exc()
            result.equivalent = False
    return result


def _warm_up(compiler: Compiler) -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.rz(0.3, 1)
    try:
        compiler.compile(circuit)
    except Exception:  # pylint: disable=broad-except
        pass


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _fmt_int(value: int | None) -> str:
    return "-" if value is None else str(value)


def _fmt_prob(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if value >= 1e-3 else f"{value:.2e}"


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.1f}"


def _fmt_equiv(value: bool | None, ok: bool) -> str:
    if not ok:
        return "ERR"
    if value is None:
        return "n/a"
    return "✓" if value else "✗"


def _render_table(groups: list[tuple[str, list[str]]], rows: list[list[str] | None]) -> str:
    """Render a two-level-header text table; ``None`` rows are separators."""
    headers = [label for _, labels in groups for label in labels]
    widths = [len(h) for h in headers]
    for row in rows:
        if row is not None:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row)]
    # widen groups so the group title fits
    col = 0
    spans = []
    for title, labels in groups:
        idx = list(range(col, col + len(labels)))
        span = sum(widths[i] for i in idx) + 2 * (len(idx) - 1)
        if span < len(title):
            widths[idx[-1]] += len(title) - span
            span = len(title)
        spans.append(span)
        col += len(labels)

    def line(cells: list[str], first_left: int = 1) -> str:
        out = []
        i = 0
        for (_, labels), _span in zip(groups, spans):
            parts = []
            for _ in labels:
                cell = cells[i]
                parts.append(cell.ljust(widths[i]) if i < first_left else cell.rjust(widths[i]))
                i += 1
            out.append("  ".join(parts))
        return " | ".join(out)

    title_line = " | ".join(title.center(span) for (title, _), span in zip(groups, spans))
    header_line = line(headers)
    rule = "-" * len(header_line)
    lines = [title_line, header_line, rule]
    for row in rows:
        lines.append(rule if row is None else line(row))
    return "\n".join(lines)


def _geomean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and v > 0]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def _evaluate_targets(
    ours: Compiler, peer: Compiler, cases: Sequence[BenchmarkCircuit]
) -> list[dict[str, Any]]:
    """The pass/fail targets of ``ours`` against qiskit-ionq."""
    checks: list[dict[str, Any]] = []
    labels = [c.label for c in cases]
    pairs = [(c, ours.results[c.label], peer.results[c.label]) for c in cases]
    failed_compiles = [c.label for c, o, _ in pairs if not o.ok]
    valid = [(c, o, p) for c, o, p in pairs if o.ok and p.ok]

    def add(name: str, passed: bool | None, detail: str) -> None:
        checks.append({"compiler": ours.name, "target": name, "passed": passed, "detail": detail})

    # 0. Correctness (precondition of everything else).
    not_equiv = [c.label for c, o, _ in pairs if o.ok and o.equivalent is False]
    unchecked = [c.label for c, o, _ in pairs if o.ok and o.equivalent is None]
    add(
        "compiles every circuit to the same state from |0...0>"
        if ours.verify_state
        else "compiles every circuit to an equivalent unitary",
        not failed_compiles and not not_equiv,
        (f"errors: {', '.join(failed_compiles)}; " if failed_compiles else "")
        + (f"NOT equivalent: {', '.join(not_equiv)}; " if not_equiv else "")
        + f"{len(labels) - len(failed_compiles) - len(not_equiv) - len(unchecked)}/{len(labels)}"
        " verified ✓"
        + (f", {len(unchecked)} not checked (too wide)" if unchecked else ""),
    )

    # 1. MS never above qiskit-ionq.
    worse = [
        f"{c.label} ({o.two_qubit} > {p.two_qubit})"
        for c, o, p in valid
        if o.two_qubit > p.two_qubit
    ]
    add(
        "2q count never above qiskit-ionq's on any circuit",
        not worse and not failed_compiles,
        "worse on: " + ", ".join(worse) if worse else f"ok on all {len(valid)} compared circuits",
    )

    # 2. <= 0.55x on qft, qftentangled, qaoa (each circuit).
    struct = [(c, o, p) for c, o, p in valid if c.name in STRUCTURED]
    ratios = [(c.label, o.two_qubit / p.two_qubit if p.two_qubit else 0.0) for c, o, p in struct]
    bad = [f"{lab} ({r:.3f}x)" for lab, r in ratios if r > STRUCTURED_MS_RATIO]
    compared = {lab for lab, _ in ratios}
    missing = [c.label for c in cases if c.name in STRUCTURED and c.label not in compared]
    worst = max((r for _, r in ratios), default=float("nan"))
    families = []
    for fam in STRUCTURED:
        o_sum = sum(o.two_qubit for c, o, _ in struct if c.name == fam)
        p_sum = sum(p.two_qubit for c, _, p in struct if c.name == fam)
        if p_sum:
            families.append(f"{fam} {o_sum}/{p_sum}={o_sum / p_sum:.3f}x")
    add(
        f"2q count <= {STRUCTURED_MS_RATIO}x qiskit-ionq's on every "
        f"{', '.join(STRUCTURED)} circuit",
        (not bad and not missing) if any(c.name in STRUCTURED for c in cases) else None,
        ("above on: " + ", ".join(bad) + "; " if bad else "")
        + (f"not compared: {', '.join(missing)}; " if missing else "")
        + (
            f"worst {worst:.3f}x over {len(ratios)} circuits; per benchmark: "
            + ", ".join(families)
            if ratios
            else "no such circuit in this run"
        ),
    )

    # 3. <= 0.8x over the whole suite.
    ours_ms = sum(o.two_qubit for _, o, _ in valid)
    peer_ms = sum(p.two_qubit for _, _, p in valid)
    ratio_ms = ours_ms / peer_ms if peer_ms else float("nan")
    add(
        f"2q count <= {SUITE_MS_RATIO}x qiskit-ionq's over the suite",
        not failed_compiles and ratio_ms <= SUITE_MS_RATIO,
        f"{ours_ms} / {peer_ms} = {ratio_ms:.3f}x"
        + (f" (excluding failed: {', '.join(failed_compiles)})" if failed_compiles else ""),
    )

    # 4. Native 1q total <= 0.5x.
    ours_1q = sum(o.one_qubit for _, o, _ in valid)
    peer_1q = sum(p.one_qubit for _, _, p in valid)
    ratio_1q = ours_1q / peer_1q if peer_1q else float("nan")
    add(
        f"native 1q count <= {SUITE_1Q_RATIO}x qiskit-ionq's total",
        not failed_compiles and ratio_1q <= SUITE_1Q_RATIO,
        f"{ours_1q} / {peer_1q} = {ratio_1q:.3f}x",
    )

    # 5. Estimated success never below qiskit-ionq's.
    lower = [
        f"{c.label} ({_fmt_prob(o.fidelity)} < {_fmt_prob(p.fidelity)})"
        for c, o, p in valid
        if o.fidelity is not None
        and p.fidelity is not None
        and o.fidelity < p.fidelity * (1.0 - FIDELITY_RTOL)
    ]
    unscored = [c.label for c, o, p in valid if o.fidelity is None or p.fidelity is None]
    add(
        "estimated success never below qiskit-ionq's on any circuit",
        not lower and not unscored and not failed_compiles,
        ("below on: " + ", ".join(lower) if lower else f"ok on all {len(valid)} compared circuits")
        + (f"; not scored: {', '.join(unscored)}" if unscored else ""),
    )

    # 6. Median compile time.
    ours_t = median([o.seconds for _, o, _ in valid])
    peer_t = median([p.seconds for _, _, p in valid])
    add(
        "median compile time no slower than qiskit-ionq's",
        not failed_compiles and ours_t <= peer_t,
        f"{ours_t * 1e3:.1f} ms vs {peer_t * 1e3:.1f} ms ({ours_t / peer_t:.2f}x)",
    )
    return checks


def _suite_summary(compilers: list[Compiler], cases: Sequence[BenchmarkCircuit]) -> list[str]:
    """Per (ours, peer) pair: totals and per-circuit counts of where ours is worse."""
    lines = ["SUITE SUMMARY (ratios ours/peer; 'worse on' counts circuits):"]
    peers = [c for c in compilers if not c.ours]
    for ours in [c for c in compilers if c.ours]:
        for peer in peers:
            pairs = [
                (ours.results[c.label], peer.results[c.label])
                for c in cases
                if ours.results[c.label].ok and peer.results[c.label].ok
            ]
            if not pairs:
                continue
            o_ms = sum(o.two_qubit for o, _ in pairs)
            p_ms = sum(p.two_qubit for _, p in pairs)
            o_1q = sum(o.one_qubit for o, _ in pairs)
            p_1q = sum(p.one_qubit for _, p in pairs)
            o_t = [o.seconds for o, _ in pairs]
            p_t = [p.seconds for _, p in pairs]
            per_t = [o / p for o, p in zip(o_t, p_t) if p > 0]
            more_ms = sum(o.two_qubit > p.two_qubit for o, p in pairs)
            lower_f = sum(
                o.fidelity is not None
                and p.fidelity is not None
                and o.fidelity < p.fidelity * (1.0 - FIDELITY_RTOL)
                for o, p in pairs
            )
            slower = sum(o > p for o, p in zip(o_t, p_t))
            lines.append(
                f"  {ours.name} vs {peer.name} ({len(pairs)} circuits): "
                f"2q {o_ms}/{p_ms} = {o_ms / p_ms if p_ms else math.nan:.3f}x, "
                f"1q {o_1q}/{p_1q} = {o_1q / p_1q if p_1q else math.nan:.3f}x, "
                f"time total {sum(o_t):.2f}/{sum(p_t):.2f} s = "
                f"{sum(o_t) / sum(p_t) if sum(p_t) else math.nan:.2f}x, "
                f"median per-circuit ratio {median(per_t):.2f}x, "
                f"worse on: 2q {more_ms}, est. success {lower_f}, time {slower}"
            )
    return lines


def _growth(compilers: list[Compiler], cases: Sequence[BenchmarkCircuit]) -> list[str]:
    """Fitted exponent ``k`` of ``time ~ n^k`` per benchmark with three or more widths."""
    widths: dict[str, list[BenchmarkCircuit]] = {}
    for case in cases:
        if not re.fullmatch(r"random\d+", case.name):  # not the seeded random circuits
            widths.setdefault(case.name, []).append(case)
    lines = []
    for name, group in widths.items():
        if len({c.circuit.num_qubits for c in group}) < 3:
            continue
        fits = []
        for comp in compilers:
            points = [
                (math.log(c.circuit.num_qubits), math.log(comp.results[c.label].seconds))
                for c in group
                if comp.results[c.label].ok and comp.results[c.label].seconds
            ]
            if len(points) < 3:
                continue
            mx = sum(x for x, _ in points) / len(points)
            my = sum(y for _, y in points) / len(points)
            sxx = sum((x - mx) ** 2 for x, _ in points)
            slope = sum((x - mx) * (y - my) for x, y in points) / sxx
            fits.append(f"{comp.name} n^{slope:.2f}")
        if fits:
            lines.append(f"  {name} ({min(c.circuit.num_qubits for c in group)}-"
                         f"{max(c.circuit.num_qubits for c in group)} qubits): " + ", ".join(fits))
    return ["GROWTH (fitted exponent of compile time vs width):"] + lines if lines else []


def _report(
    compilers: list[Compiler],
    cases: Sequence[BenchmarkCircuit],
    device: str,
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    names = [c.name for c in compilers]
    shorts = [c.short or c.name for c in compilers]
    verified = [c for c in compilers if c.verify]
    two_q_label = "2q (MS+ZZ)" if "forte" in device else "MS"
    groups: list[tuple[str, list[str]]] = [
        ("", ["circuit", "n"]),
        (f"{two_q_label} count", shorts),
        ("native 1q (gpi+gpi2)", shorts),
        (f"est. success ({device})", shorts),
        ("compile time [ms]", shorts),
    ]
    if verified:
        groups.append(("equiv", [c.short or c.name for c in verified]))

    rows: list[list[str] | None] = []
    for case in cases:
        res = [c.results[case.label] for c in compilers]
        row = [case.name, str(case.circuit.num_qubits)]
        row += [_fmt_int(r.two_qubit) if r.ok else "ERR" for r in res]
        row += [_fmt_int(r.one_qubit) if r.ok else "ERR" for r in res]
        row += [_fmt_prob(r.fidelity) if r.ok else "ERR" for r in res]
        row += [_fmt_ms(r.seconds) if r.ok else "ERR" for r in res]
        row += [
            _fmt_equiv(c.results[case.label].equivalent, c.results[case.label].ok)
            for c in verified
        ]
        rows.append(row)

    summary: dict[str, Any] = {}
    for comp in compilers:
        ok = [r for r in comp.results.values() if r.ok]
        summary[comp.name] = {
            "circuits": len(comp.results),
            "failed": len(comp.results) - len(ok),
            "total_two_qubit": sum(r.two_qubit for r in ok),
            "total_one_qubit": sum(r.one_qubit for r in ok),
            "geomean_fidelity": _geomean([r.fidelity for r in ok]),
            "total_seconds": sum(r.seconds for r in ok),
            "median_seconds": median([r.seconds for r in ok]),
        }
    rows.append(None)
    tot = ["TOTAL", ""]
    tot += [str(summary[n]["total_two_qubit"]) for n in names]
    tot += [str(summary[n]["total_one_qubit"]) for n in names]
    tot += [_fmt_prob(summary[n]["geomean_fidelity"]) for n in names]
    tot += [_fmt_ms(summary[n]["total_seconds"]) for n in names]
    tot += ["" for _ in verified]
    rows.append(tot)
    med = ["MEDIAN time", ""] + [""] * (3 * len(names))
    med += [_fmt_ms(summary[n]["median_seconds"]) for n in names] + ["" for _ in verified]
    rows.append(med)
    text = _render_table(groups, rows)

    legend = ", ".join(f"{c.short or c.name} = {c.name}" for c in compilers)
    lines = [f"columns: {legend}", "", text, ""]
    lines.append("TOTAL est. success = geometric mean over circuits; TOTAL time = sum.")
    peer = next((c for c in compilers if c.name == PEER_IONQ), None)
    checks: list[dict[str, Any]] = []
    ours_list = [c for c in compilers if c.ours]
    if peer is not None:
        for comp in compilers:
            if comp is peer:
                continue
            s, p = summary[comp.name], summary[peer.name]
            r2 = s["total_two_qubit"] / p["total_two_qubit"] if p["total_two_qubit"] else math.nan
            r1 = s["total_one_qubit"] / p["total_one_qubit"] if p["total_one_qubit"] else math.nan
            rt = s["median_seconds"] / p["median_seconds"] if p["median_seconds"] else math.nan
            lines.append(
                f"ratio {comp.name}/{PEER_IONQ}: {two_q_label} {r2:.3f}x, native 1q {r1:.3f}x, "
                f"median compile time {rt:.2f}x"
                + (f"  ({s['failed']} circuit(s) failed)" if s["failed"] else "")
            )
        lines.append("")
        if not ours_list:
            lines.append("TARGETS: SKIPPED - our compiler is not available (peers only).")
        for comp in ours_list:
            lines.append(f"TARGETS for {comp.name} vs {PEER_IONQ}:")
            comp_checks = _evaluate_targets(comp, peer, cases)
            checks.extend(comp_checks)
            for check in comp_checks:
                status = {True: "PASS", False: "FAIL", None: "SKIP"}[check["passed"]]
                lines.append(f"  [{status}] {check['target']}: {check['detail']}")
    return "\n".join(lines), checks, summary


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib import metadata  # pylint: disable=import-outside-toplevel

    versions = {"python": platform.python_version()}
    for dist in ("qiskit", "qiskit-ionq", "mqt.bench", "qstore-qiskit"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Compile quality (2q/1q gate counts, estimated success, compile time) of the "
            "qstore native-gate compiler vs qiskit-ionq and Qiskit+MQT Bench on MQT Bench."
        )
    )
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} only")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--device", default="aria-1", choices=DEVICES, help="default: aria-1")
    parser.add_argument(
        "--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), help="e.g. 4,6,8"
    )
    parser.add_argument(
        "--circuits", type=lambda s: tuple(s.split(",")), default=SUITE, help="subset of the suite"
    )
    parser.add_argument(
        "--levels",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=(2, 3),
        help="our optimization levels to run if available (default: 2,3)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per compile, best kept")
    parser.add_argument(
        "--max-verify-qubits", type=int, default=8, help="check equivalence up to this width"
    )
    parser.add_argument("--skip-mqt", action="store_true", help="skip the Qiskit+MQT peer")
    parser.add_argument(
        "--suite",
        choices=("default", "scale", "tket"),
        default="default",
        help="default: SUITE at 4,6,8 qubits; scale: issue 15's 17 benchmarks at 10-25 "
        "(Aria) or 10-36 (Forte) qubits plus 20 random circuits; tket: the 13 circuits "
        "(6-10 qubits) on which level 3 is compared with TKET, in exact-unitary mode",
    )
    parser.add_argument(
        "--tket", action="store_true", help="add the TKET peer (always on with --suite tket)"
    )
    parser.add_argument(
        "--transpile",
        action="store_true",
        help="also run our levels through transpile(..., *_method='qstore') (issue 15's path)",
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time compiles by the process's CPU time instead of wall-clock time (for a "
        "loaded machine: other processes do not inflate it)",
    )
    parser.add_argument(
        "--only-transpile",
        action="store_true",
        help="with --transpile: run only the transpile path of ours (no ours-L*/ours-L2z)",
    )
    parser.add_argument(
        "--random",
        type=int,
        default=None,
        help="number of seeded random circuits in the scale suite (default 20, 4 with --quick)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report. Always returns 0."""
    args = _parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    _CLOCK[0] = time.process_time if args.cpu_time else time.perf_counter
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    print(f"# compile_quality: device={args.device} sizes={list(sizes)}")
    print("# " + ", ".join(f"{k} {v}" for k, v in _versions().items()))

    if not mqt_available():
        print("MQT Bench is not installed (pip install 'qstore-qiskit[bench]'); nothing to do.")
        return 0
    if args.suite == "tket":
        cases = load_cases(TKET_CASES)
        args.tket = True
        args.skip_mqt = True
    elif args.suite == "scale":
        family = "forte" if "forte" in args.device else "aria"
        sizes = args.sizes or ((10, 12) if args.quick else SCALE_SIZES[family])
        names = args.circuits if args.circuits != SUITE else SCALE_SUITE
        pairs = [
            (name, size)
            for name in names
            for size in sizes
            if not (name == "grover" and size > GROVER_MAX_QUBITS)
        ]
        count = args.random if args.random is not None else (4 if args.quick else 20)
        cases = load_cases(pairs) + (random_cases(sizes, count=count) if count > 0 else [])
        print(f"# scale suite: sizes {list(sizes)}, grover up to {GROVER_MAX_QUBITS} qubits")
    else:
        cases = load_suite(sizes, args.circuits)
    print(f"# {len(cases)} MQT Bench INDEP circuits, final measurements removed from all inputs")

    ours_api = _load_ours()
    compilers: list[Compiler] = [_make_ionq_peer(args.device)]
    if isinstance(ours_api, str):
        print(f"# our compiler not available ({ours_api}): running the peers only")
        ours_api = None
    else:
        ours, notes = _make_ours(
            ours_api[0], args.device, args.levels, with_zero=args.suite != "tket"
        )
        if not (args.transpile and args.only_transpile):
            compilers += ours
        if notes:
            print(f"# ours: {notes}")
    if args.transpile and not isinstance(ours_api, str) and ours_api is not None:
        compilers += _make_ours_transpile(args.device, args.levels)
    if args.tket:
        if tket_available():
            compilers.insert(1, _make_tket_peer())
        else:
            print("# TKET peer requested but pytket / pytket-qiskit are not installed")
    mqt_peer = None if args.skip_mqt else _make_mqt_peer(args.device)
    fidelity, fidelity_desc = _make_fidelity(ours_api, args.device)

    for comp in compilers + ([mqt_peer] if mqt_peer else []):
        print(f"#   {comp.name:12s} {comp.description}")
    print(f"# est. success: {fidelity_desc}")
    print(
        f"# time: {'CPU' if args.cpu_time else 'wall-clock'} time, best of {args.repeat} "
        f"(1 if > {SLOW_SECONDS:g} s), incl. pass-manager build"
    )
    print()

    # Phase 1: everything but the MQT target; phase 2: the MQT target (see module doc).
    phases = [compilers] + ([[mqt_peer]] if mqt_peer else [])
    for phase in phases:
        for comp in phase:
            _warm_up(comp)
        for case in cases:
            outcome = _time_phase(phase, case, args.repeat)
            for comp in phase:
                output, seconds, error = outcome[comp.name]
                res = _evaluate(
                    comp, case, output, seconds, error, fidelity, args.max_verify_qubits
                )
                comp.results[case.label] = res
                if not res.ok:
                    print(f"! {comp.name} failed on {case.label}: {res.error}", file=sys.stderr)
    # Display order: qiskit-ionq, qiskit-mqt, ours...
    ordered = [compilers[0]] + ([mqt_peer] if mqt_peer else []) + compilers[1:]

    text, checks, summary = _report(ordered, cases, args.device)
    print(text)
    print()
    print("\n".join(_suite_summary(ordered, cases)))
    growth = _growth(ordered, cases)
    if growth:
        print()
        print("\n".join(growth))

    if args.json:
        payload = {
            "device": args.device,
            "sizes": list(sizes),
            "measurements": "final measurements removed from all inputs",
            "fidelity_model": fidelity_desc,
            "versions": _versions(),
            "compilers": {c.name: c.description for c in ordered},
            "results": [
                {
                    "circuit": case.name,
                    "size": case.size,
                    "num_qubits": case.circuit.num_qubits,
                    **{c.name: asdict(c.results[case.label]) for c in ordered},
                }
                for case in cases
            ],
            "summary": summary,
            "targets": checks,
        }
        directory = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(directory, exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, allow_nan=True)
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

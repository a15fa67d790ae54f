"""How a backend turns circuits into IonQ payloads: scan, compile once, bind many.

A mixin of :class:`~qstore_qiskit.providers.QStoreBackend`, split out of ``backend.py``
by responsibility: preparing payloads (the template cache, native and ``qis`` bodies)
is separate from holding options, submitting and reporting. It relies on the backend's
``_cache``, ``_native_templates``, ``_lock``, ``_tracker``, ``_device``, ``name``,
``num_qubits``, ``_compile_device`` and ``_pass_manager``.
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.providers import Options
from qiskit.transpiler import PassManager

from ..payload import dense_width, measurement_map, native_body, native_body_and_gate_width
from ..gc_pause import cyclic_gc_paused
from ..transpiler.target import DEVICES
from .binds import check_parameter_binds, value_table
from .inspection import (
    NATIVE_NAMES, STANDARD_NATIVE, STANDARD_NATIVE_ZZ, gate_counts, gate_width, payload_fidelity, qis_basis,
    registers, scan_gated, scan_native, width_of,
)
from .prepared import PreparedCircuit


class CircuitPreparationMixin:
    """Circuits to :class:`~.prepared.PreparedCircuit` payloads (see the module docstring)."""

    _cache: Any
    _device: str
    _lock: threading.Lock
    _native_templates: dict[tuple, Any]
    _tracker: Any

    if TYPE_CHECKING:  # provided by QStoreBackend

        @property
        def name(self) -> str: ...
        @property
        def num_qubits(self) -> int: ...
        def _compile_device(self, opts: Options | Mapping) -> str: ...
        def _pass_manager(self, device: str, optimization_level: int) -> PassManager: ...

    def _prepare(
        self,
        circuits: list[QuantumCircuit],
        parameter_binds: Sequence[Mapping] | None,
        opts: dict[str, Any],
    ) -> list[PreparedCircuit]:
        parameter_binds = check_parameter_binds(parameter_binds, len(circuits))
        width = self.num_qubits
        for circuit in circuits:
            if circuit.num_qubits > width:
                raise ValueError(
                    f"circuit '{circuit.name}' has {circuit.num_qubits} qubits; backend {self.name} "
                    f"has {width}"
                )
        standard = STANDARD_NATIVE_ZZ if DEVICES[self._compile_device(opts)].has_zz else STANDARD_NATIVE
        # Clear errors before any work. A bound circuit already in native form (each
        # circuit BackendEstimatorV2 binds from a preset-transpiled ISA circuit) is
        # serialized in the same pass that scans it.
        scans: list[tuple[int, str, list[int | None]]] = []
        walked: dict[int, tuple[dict, int]] = {}
        gated: dict[int, set] = {}  # the qubits gates act on, from the same pass
        # The instructions as the scan read them, for the template cache's structural
        # analysis (one walk over each circuit per run(), not two).
        cached = opts["use_native_gates"] and opts["enable_smart_caching"]
        rows: list[list | None] = [None] * len(circuits)
        for index, circuit in enumerate(circuits):
            found = scan_native(circuit, standard) if opts["use_native_gates"] else None
            if found is None:
                read = rows[index] = [] if cached else None
                *scanned, gated[index] = scan_gated(circuit, standard, read)
                scans.append(tuple(scanned))  # type: ignore[arg-type]
            else:
                scans.append(found[0])
                walked[index] = found[1:]
        value_sets = [
            value_table(circuit, parameter_binds[i] if parameter_binds is not None else None)
            for i, circuit in enumerate(circuits)
        ]
        # Bound circuits that go through the template cache bind in one batch per
        # structure (one matmul for all of them) instead of one bind per circuit.
        # Both calls compile the distinct structures they miss together, in parallel
        # processes when there are several and enough work (TemplateCache docs).
        batched: dict[int, dict] = {}
        templates: dict[int, tuple] = {}
        if cached:
            device, level = self._compile_device(opts), opts["optimization_level"]
            idx = [i for i, c in enumerate(circuits) if value_sets[i] is None and scans[i][1] == "logical"]
            if idx:
                bodies = self._cache.payload_many(
                    [circuits[i] for i in idx], device=device, optimization_level=level, rows=[rows[i] for i in idx]
                )
                batched = dict(zip(idx, bodies))
            idx = [i for i, c in enumerate(circuits) if value_sets[i] is not None and scans[i][1] == "logical"]
            if len(idx) > 1:
                found = self._cache.get_templates([circuits[i] for i in idx], device=device, optimization_level=level)
                templates = dict(zip(idx, found))
        prepared: list[PreparedCircuit] = []
        # Serializing many bound ISA circuits (BackendEstimatorV2 sends one per parameter
        # set), or binding one circuit to many value sets (the V2 primitives), builds
        # thousands of gate dicts, which cannot form cycles: as the template
        # binder does (cache/emitter.py), pause the automatic collector, which would
        # otherwise run a young collection every 700 of them and now and then a full one
        # over the whole heap, and make the young collection ourselves after each block
        # of 128 circuits (so garbage of circuits compiled here stays bounded). Only a
        # caller that found the collector enabled turns it back on.
        if len(circuits) == 1 and value_sets[0] is None:  # a separate run(qc): no pause, no blocks
            return self._prepare_one(circuits[0], None, opts, scans[0], batched.get(0), templates.get(0),
                                     walked.get(0), gated.get(0))
        bodies = sum(1 if v is None else len(v) for v in value_sets)
        with cyclic_gc_paused(bodies > 8) as paused:
            for index, circuit in enumerate(circuits):
                prepared.extend(
                    self._prepare_one(
                        circuit, value_sets[index], opts, scans[index], batched.get(index), templates.get(index),
                        walked.get(index), gated.get(index),
                    )
                )
                if paused and index % 128 == 127:
                    gc.collect(0)
        if paused:
            gc.collect(0)
        return prepared

    def _prepare_one(
        self,
        circuit: QuantumCircuit,
        value_sets: np.ndarray | None,
        opts: dict[str, Any],
        scan: tuple[int, str, list[int | None]],
        body: dict | None = None,
        template: tuple | None = None,
        walked: tuple[dict, int] | None = None,
        gated: set | None = None,
    ) -> list[PreparedCircuit]:
        input_gates, kind, scanned_meas_map = scan
        sizes, labels = registers(circuit)
        device = self._compile_device(opts)
        level = opts["optimization_level"]
        spec = DEVICES.get(device, DEVICES[self._device])
        rows = [None] if value_sets is None else list(value_sets)
        gated_width: int | None = None
        if opts["use_native_gates"]:
            if body is not None:
                bodies = [body]
            elif kind == "native" and value_sets is not None:
                # An ISA circuit (e.g. from transpile(qc, backend)): its parameters sit in
                # virtual rz, so the exact template of the circuit itself binds them.
                bodies = self._native_bind_many(circuit, value_sets)
            elif kind == "native":
                # A bound ISA circuit (BackendEstimatorV2 binds one per parameter set):
                # body and gate width from one pass (the scan's, see _prepare).
                native, gated_width = walked if walked is not None else native_body_and_gate_width(circuit)
                bodies = [native]
            elif opts["enable_smart_caching"] and kind == "logical":
                if value_sets is None:
                    bodies = [self._cache.payload(circuit, device=device, optimization_level=level)]
                else:
                    bodies = self._cache_bind_many(circuit, value_sets, device, level, template)
            else:
                bodies = []
                pm = self._pass_manager(device, level)
                for row in rows:
                    bound = circuit if row is None else circuit.assign_parameters(row)
                    bodies.append(native_body(pm.run(bound)))
            meas_map = scanned_meas_map  # the compiler keeps measurements in place
            gateset = "native"
        else:
            bodies, meas_map = self._qis_bodies(circuit, rows)
            gateset = "qis"
        measured = any(q is not None for q in meas_map)
        # Qubits that are only measured read 0 without being sent (a preset-transpiled
        # circuit that qiskit-machine-learning measures on every device qubit).
        if not measured:
            gated_width = None
        elif gated_width is None:
            gated_width = gate_width(circuit) if gated is None else width_of(circuit, gated)
        # Bodies bound from one template differ only by the two GPi each folded MS angle
        # adds: their gate counts are determined by their length (computed once each).
        one_template = value_sets is not None and len(bodies) > 1 and body is None
        counts_by_length: dict[int, dict[str, int]] = {}
        out = []
        for i, body in enumerate(bodies):
            # IonQ wants >= 1 qubit even for a circuit without gates (all zeros).
            qubits = max(int(body["qubits"]) if gated_width is None else min(int(body["qubits"]), gated_width), 1)
            # Without measurements: report every qubit of the circuit (unused ones read 0).
            width = max(circuit.num_qubits, 1)
            mmap: list[int | None] = meas_map if measured else list(range(width))
            name = circuit.name if len(bodies) == 1 else f"{circuit.name}[{i}]"
            gates = body["circuit"]
            if gateset != "native":
                counts: dict[str, int] = {}
            elif one_template and kind != "mixed" and (opts["enable_smart_caching"] or kind == "native"):
                counts = counts_by_length.get(len(gates))  # type: ignore[assignment]
                if counts is None:
                    counts = counts_by_length[len(gates)] = gate_counts(gates)
                counts = dict(counts)
            else:
                counts = gate_counts(gates)
            out.append(
                PreparedCircuit(
                    name=name,
                    body={"qubits": qubits, "circuit": gates, "name": name},
                    gateset=gateset,
                    meas_map=mmap,
                    payload_qubits=qubits,
                    creg_sizes=sizes if measured else [["meas", width]],
                    clbit_labels=labels if measured else [["meas", j] for j in range(width)],
                    metadata=dict(circuit.metadata or {}),
                    native_gate_counts=counts,
                    estimated_fidelity=payload_fidelity(gates, spec) if gateset == "native" else None,
                    input_gates=input_gates,
                )
            )
        return out

    def _cache_bind_many(
        self, circuit: QuantumCircuit, value_sets: np.ndarray, device: str, level: int, found: tuple | None = None
    ) -> list[dict]:
        template, base = found or self._cache.get_template(circuit, device=device, optimization_level=level)
        # The cache counted one lookup; every further binding is served from the same
        # compiled template without compiling: a template hit saving its compile time.
        self._tracker.record_template_bindings(len(value_sets) - 1, getattr(template, "compile_seconds", 0.0))
        col = {p: i for i, p in enumerate(template.parameters)}
        table = np.repeat(base[None, :], len(value_sets), axis=0)
        for j, param in enumerate(circuit.parameters):
            table[:, col[param]] = value_sets[:, j]
        return template.bodies(table)

    def _native_bind_many(self, circuit: QuantumCircuit, value_sets: np.ndarray) -> list[dict]:
        """Bodies of a parameterized native circuit for many value sets (one template per
        structure: numeric angles stay constants, only free parameters are columns)."""
        from ..cache import CompiledTemplate, structural_key

        from .passmanager import _first_appearance

        # Names in order of first appearance: the same structure with parameters swapped
        # between gates is another template.
        key = (structural_key(circuit), tuple(p.name for p in _first_appearance(circuit)))
        with self._lock:
            template = self._native_templates.get(key)
        if template is None:
            template = CompiledTemplate.from_native(circuit, list(circuit.parameters), device=self._device)
            with self._lock:
                if len(self._native_templates) >= 256:
                    self._native_templates.pop(next(iter(self._native_templates)))
                self._native_templates[key] = template
        # Same names at the same places: columns (circuit.parameters, sorted by name) agree.
        return template.bodies(value_sets)

    def _qis_bodies(self, circuit: QuantumCircuit, rows: list) -> tuple[list[dict], list[int | None]]:
        """The plain path: transpile to IonQ's QIS gate set and serialize per circuit."""
        from qiskit import transpile
        from qiskit_ionq.helpers import qiskit_circ_to_ionq_circ

        bodies = []
        meas_map: list[int | None] = measurement_map(circuit)
        for row in rows:
            bound = circuit if row is None else circuit.assign_parameters(row)
            if NATIVE_NAMES.intersection(bound.count_ops()):
                # Unroll IonQ native gates through their own definitions: once qiskit-ionq
                # has registered its equivalences in Qiskit's global library, the basis
                # translator would look for (non-existent) paths from them instead.
                bound = bound.decompose(gates_to_decompose=sorted(NATIVE_NAMES))
            # Qiskit 2 rejects non-standard names (``i``, ``cnot``, ``mcx``...) in
            # ``basis_gates``; the standard QIS gates are all IonQ accepts anyway.
            qis = transpile(bound, basis_gates=qis_basis(), optimization_level=1)
            gates, _, _ = qiskit_circ_to_ionq_circ(qis, "qis")
            # Like the native path: highest used qubit + 1 (a 29-qubit preset-transpiled
            # circuit that uses 2 qubits is a 2-qubit job).
            width = max(dense_width(bound), dense_width(qis), 1)
            bodies.append({"qubits": width, "circuit": gates})
        return bodies, meas_map

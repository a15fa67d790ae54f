"""Compiled circuit templates: a native circuit with parameterized phases, ready to bind.

Parameter sweeps and training loops submit one circuit *structure* thousands of times
with new angles. Re-transpiling each bound circuit costs milliseconds; binding a
:class:`CompiledTemplate` costs microseconds, because everything that does not depend on
the parameter values is resolved once, at compile time:

* the native circuit (GPI / GPI2 / MS / ZZ) is produced once by
  :func:`qstore_qiskit.transpiler.generate_ionq_pass_manager`;
* every emitted phase / angle ("slot") is written as an affine function of the circuit's
  parameters, ``slots = A @ x + b``, including the virtual Z frames pushed through the
  wires (:mod:`qstore_qiskit.cache.builder`);
* the JSON gate list is produced from per-gate prototypes, first by index tables and,
  once the template is bound often, by a generated function holding one dict literal per
  gate, so binding only has to drop numbers into place (:mod:`qstore_qiskit.cache.emitter`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit

from ..payload import ionq_native_to_circuit
from .analysis import _analyse
from .builder import TemplateSpec, bind_tables, build_spec
from .compiler import CompileFn, default_compile
from .emitter import BindKernel, Emitter, _check_values
from .errors import QStoreCacheError

__all__ = ["CompiledTemplate"]

_TWO_PI = 2.0 * math.pi


def _real(value: Any, name: Any) -> float:
    """``float(value)`` for a real number; a clear error for anything else (complex too).

    ``float()`` of a numpy complex would drop the imaginary part with only a warning.
    """
    if type(value) is float:
        return value
    if isinstance(value, (complex, np.complexfloating)) or np.iscomplexobj(value):
        raise QStoreCacheError(
            f"value for parameter {getattr(name, 'name', name)!r} is complex ({value!r}); "
            "parameter values must be real numbers"
        )
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise QStoreCacheError(
            f"value for parameter {getattr(name, 'name', name)!r} is not a number: {value!r}"
        ) from exc


def _real_array(values: Any) -> np.ndarray:
    """``values`` as a float array; complex values are an error, never truncated."""
    try:
        x = np.asarray(values)
        if x.dtype.kind != "c":
            return x.astype(float, copy=False)
    except (TypeError, ValueError) as exc:
        raise QStoreCacheError(f"parameter values are not numbers: {exc}") from exc
    raise QStoreCacheError(
        "parameter values must be real numbers, got complex values (the imaginary part would be lost)"
    )


class CompiledTemplate(BindKernel):
    """A native circuit with parameterized phases, pre-analysed for fast binding.

    Every emitted phase / angle ``slot`` is ``A[slot] @ x + b[slot]`` (turns) where ``x``
    holds the parameter values in canonical column order (first appearance in the source
    circuit) followed by the values of non-affine sub-expressions, which are evaluated per
    binding with :meth:`ParameterExpression.bind` (slow path, documented in
    ``docs/templates.rst``). Binding is then one matmul plus vectorised normalisation; the
    JSON dictionaries come from per-gate prototypes
    (:class:`~qstore_qiskit.cache.emitter.Emitter`).

    Build one with :meth:`compile` or get one from :class:`TemplateCache`.

    Attributes:
        parameters: the parameters in the order :meth:`bind` expects a sequence.
        num_qubits: width of the native circuit.
        device: the device the template was compiled for.
        optimization_level: the compiler optimization level.
        native_gate_counts: emitted gate name -> count (before any MS-angle rewrite that a
            particular binding may need; see :mod:`qstore_qiskit.payload`).
        structural_key: :func:`structural_key` of the source circuit.
        meas_map: clbit -> measured qubit (as qiskit-ionq's ``meas_mapped``).
        body_qubits: the ``qubits`` count of the emitted body.
        compile_seconds: wall time the compiler took.
    """

    device: str
    optimization_level: int
    structural_key: str
    compile_seconds: float
    num_qubits: int
    num_clbits: int
    meas_map: list[int | None]
    layout: Any
    body_qubits: int
    native_gate_counts: dict[str, int]
    _spec: TemplateSpec
    #: parameter -> position and name -> position, built on first use (binding from a
    #: mapping); hashing thousands of parameters is a large part of loading a template
    _lookup: tuple[dict[Parameter, int], dict[str, int]] | None = None

    def __init__(self) -> None:  # built by _build / _relabel only
        self.parameters: tuple[Parameter, ...] = ()

    # -- construction -------------------------------------------------------------------

    @classmethod
    def compile(
        cls,
        circuit: QuantumCircuit,
        device: str = "aria-1",
        optimization_level: int = 2,
        *,
        compile_fn: CompileFn | None = None,
    ) -> CompiledTemplate:
        """Compile ``circuit`` to native gates and analyse it.

        Args:
            circuit: a (possibly parameterized) circuit.
            device: IonQ device name passed to the compiler.
            optimization_level: compiler optimization level.
            compile_fn: ``f(circuit, device, optimization_level) -> native circuit``;
                default :func:`default_compile` (the qstore pass manager).

        Returns:
            The template; its :attr:`parameters` follow ``circuit.parameters`` order.
        """
        analysis = _analyse(circuit, lift=False)
        columns = list(analysis.columns)
        # Parameters that only occur in the global phase get (all-zero) columns too, so
        # that ``circuit.parameters``-ordered values are accepted as they are.
        seen = set(columns)
        columns += [p for p in circuit.parameters if p not in seen]
        compile_fn = compile_fn or default_compile
        start = time.perf_counter()
        native = compile_fn(circuit, device, optimization_level)
        elapsed = time.perf_counter() - start
        template = cls._build(native, columns, device, optimization_level, analysis.key, elapsed)
        return template._relabel(list(circuit.parameters), ordered=True)

    @classmethod
    def from_native(
        cls,
        native: QuantumCircuit,
        parameters: Sequence[Parameter] | None = None,
        device: str = "aria-1",
        optimization_level: int = 2,
    ) -> CompiledTemplate:
        """Analyse an already-compiled native circuit.

        Args:
            native: a circuit following the compiler's output contract.
            parameters: parameter order for :meth:`bind`; default ``native.parameters``.
            device: device label stored on the template.
            optimization_level: label stored on the template.

        Returns:
            The template.
        """
        params = list(parameters) if parameters is not None else list(native.parameters)
        key = _analyse(native, lift=False).key
        template = cls._build(native, params, device, optimization_level, key, 0.0)
        return template._relabel(params, ordered=True)

    @classmethod
    def _build(
        cls,
        native: QuantumCircuit,
        columns: list[Parameter],
        device: str,
        optimization_level: int,
        key: str,
        compile_seconds: float,
    ) -> CompiledTemplate:
        """Analyse ``native`` (whose parameters are ``columns``) into a template."""
        spec = build_spec(native, list(columns))
        return cls._from_spec(spec, columns, device, optimization_level, key, compile_seconds)

    @classmethod
    def _from_spec(
        cls,
        spec: TemplateSpec,
        columns: Sequence[Parameter],
        device: str,
        optimization_level: int,
        key: str,
        compile_seconds: float,
    ) -> CompiledTemplate:
        """A template from a laid-out spec (freshly built, or loaded from disk)."""
        if len(columns) != spec.n_par:
            raise QStoreCacheError("parameter list does not match the template's columns")
        self = cls()
        self.device = device
        self.optimization_level = optimization_level
        self.structural_key = key
        self.compile_seconds = compile_seconds
        self.num_qubits = spec.num_qubits
        self.num_clbits = spec.num_clbits
        self.meas_map = list(spec.meas_map)
        self.layout = spec.layout
        self.body_qubits = spec.body_qubits
        self._spec = spec
        self._canon = list(columns)
        self._install(spec)
        return self

    def _install(self, spec: TemplateSpec) -> None:
        """Derive the bind kernel's tables and emitter from ``spec``."""
        tables = bind_tables(spec)
        self._n_ms, self._n_zz, self._n_phase = spec.n_ms, spec.n_zz, spec.n_phase
        self._b = tables.b
        self._ranks = tables.ranks
        self._gather, self._weight = tables.gather, tables.weight
        self._F = tables.F
        self._n_par = spec.n_par
        self._n_cols = tables.n_cols
        self._extra = spec.extra
        self._extra_cols = []
        if spec.extra:
            col_of = {p: c for c, p in enumerate(self._canon)}
            self._extra_cols = [
                [col_of[p] for p in sorted(e.parameters, key=lambda p: p.name)] for e in spec.extra
            ]
        plan = spec.plan
        self._plan = plan
        self._final_slots = np.array(spec.final_slots, dtype=np.intp)
        self._n_emit = len(plan)
        self._ms_plan = [i for i, e in enumerate(plan) if e[0] == "ms"]
        counts: dict[str, int] = {}
        for kind, _, _ in plan:
            counts[kind] = counts.get(kind, 0) + 1
        self.native_gate_counts = counts
        self._n_emit_slots = spec.n_slots - len(spec.final_slots)
        self._emit = Emitter(plan)
        ranks_bytes = sum(r.nbytes + c.nbytes for r, c, _ in tables.ranks) * 2
        self._nbytes = int(
            tables.b.nbytes + tables.F.nbytes + ranks_bytes
            + tables.gather.nbytes + tables.weight.nbytes + 400 * len(plan) + 200 * spec.native_size
        )

    def _relabel(
        self, parameters: Sequence[Parameter], ordered: bool = False, ignored: Sequence[Parameter] = ()
    ) -> CompiledTemplate:
        """A view sharing all arrays whose :attr:`parameters` are ``parameters + ignored``.

        If ``ordered``, ``parameters`` is an arbitrary ordering of the canonical columns'
        parameters (matched by identity); otherwise it lists one parameter per canonical
        column, in column order. ``ignored`` parameters (those of a circuit's global phase,
        which the payload does not carry) take values like any other but change nothing.
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        params = tuple(parameters)
        if ordered:
            col_of = {p: c for c, p in enumerate(self._canon)}
            try:
                order = [col_of[p] for p in params]
            except KeyError as exc:
                raise QStoreCacheError(f"parameter {exc.args[0]!r} is not in the template") from exc
            if len(set(order)) != len(order) or len(order) != len(self._canon):
                raise QStoreCacheError("parameter list does not match the template's columns")
        else:
            if len(params) != len(self._canon):
                raise QStoreCacheError("parameter list does not match the template's columns")
            order = list(range(len(params)))
        new._keep = len(params) if ignored else None
        params += tuple(ignored)
        new.parameters = params
        new._order = np.array(order, dtype=np.intp)
        new._identity = order == list(range(len(order)))
        new._lookup = None
        return new

    # -- properties ---------------------------------------------------------------------

    @property
    def num_parameters(self) -> int:
        """Number of parameters."""
        return len(self.parameters)

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the template."""
        return self._nbytes

    def __repr__(self) -> str:
        return (
            f"<CompiledTemplate device={self.device!r} qubits={self.num_qubits} "
            f"parameters={self.num_parameters} gates={self.native_gate_counts}>"
        )

    # -- binding ------------------------------------------------------------------------

    def _values_1d(self, values: Sequence[float] | Mapping[Any, float] | np.ndarray) -> np.ndarray:
        n = len(self.parameters)
        if isinstance(values, Mapping):
            x = np.full(n, np.nan)
            lookup = self._lookup
            if lookup is None:
                params = self.parameters
                lookup = self._lookup = ({p: i for i, p in enumerate(params)}, {p.name: i for i, p in enumerate(params)})
            index_of, name_of = lookup
            for k, v in values.items():
                i = index_of.get(k) if not isinstance(k, str) else name_of.get(k)
                if i is None:
                    raise QStoreCacheError(f"value given for unknown parameter {k!r}")
                x[i] = _real(v, k)
            if np.isnan(x).any():
                missing = [self.parameters[i].name for i in np.flatnonzero(np.isnan(x))]
                raise QStoreCacheError(f"no value (or NaN) for parameter(s) {missing}")
        else:
            x = _real_array(values)
            if x.ndim != 1 or x.shape[0] != n:
                raise QStoreCacheError(
                    f"expected {n} parameter values (ordered like .parameters), got shape {x.shape}"
                )
        _check_values(x)
        return x

    def _values_2d(self, values: Any) -> np.ndarray:
        if isinstance(values, Mapping):
            return self._values_1d(values)[None, :]
        if not isinstance(values, np.ndarray) and len(values) and isinstance(values[0], Mapping):
            return np.stack([self._values_1d(v) for v in values])
        X = _real_array(values)
        n = len(self.parameters)
        if X.ndim == 1 and n == 0 and X.size == 0:
            X = X.reshape(0, 0)
        if X.ndim != 2 or X.shape[1] != n:
            raise QStoreCacheError(
                f"expected an array of shape (num_bindings, {n}), got shape {X.shape}"
            )
        _check_values(X)
        return X

    def check_device(self, device: str | None) -> None:
        """Raise :class:`QStoreCacheError` if ``device`` is given and is not the template's."""
        if device is not None and device != self.device:
            raise QStoreCacheError(
                f"template was compiled for device {self.device!r}, not {device!r}"
            )

    def bind(
        self,
        values: Sequence[float] | Mapping[Any, float] | np.ndarray = (),
        *,
        device: str | None = None,
    ) -> list[dict[str, Any]]:
        """Bind one set of values and return the JSON-ready native gate list.

        Args:
            values: a sequence ordered like :attr:`parameters`, or a mapping from
                :class:`~qiskit.circuit.Parameter` (or parameter name) to value.
            device: if given, must equal :attr:`device`.

        Returns:
            The native gate list (fresh objects), as in :func:`qstore_qiskit.payload.
            circuit_to_native_gates` of the bound native circuit.

        Raises:
            QStoreCacheError: wrong number of values, NaN / inf, unknown parameters, or a
                device mismatch.
        """
        self.check_device(device)
        return self._gate_lists(self._values_1d(values)[None, :])[0]

    def bind_many(self, values: Any, *, device: str | None = None) -> list[list[dict[str, Any]]]:
        """Bind many value sets at once (one matmul for all of them).

        Args:
            values: array-like of shape ``(num_bindings, num_parameters)`` ordered like
                :attr:`parameters`, or a sequence of mappings.
            device: if given, must equal :attr:`device`.

        Returns:
            One gate list per binding.
        """
        self.check_device(device)
        return self._gate_lists(self._values_2d(values))

    def body(self, values: Any = (), *, device: str | None = None) -> dict[str, Any]:
        """Bind one set of values and return the ``input`` block of an ionq.circuit.v1 job."""
        return {"gateset": "native", "qubits": self.body_qubits, "circuit": self.bind(values, device=device)}

    def bodies(self, values: Any, *, device: str | None = None) -> list[dict[str, Any]]:
        """:meth:`bind_many` wrapped into ``input`` blocks."""
        n = self.body_qubits
        return [
            {"gateset": "native", "qubits": n, "circuit": g}
            for g in self.bind_many(values, device=device)
        ]

    def final_frames(self, values: Any = ()) -> list[float]:
        """Z frames (radians) left at the end of each wire, dropped from the payload."""
        S, _, _ = self._slots(self._values_1d(values)[None, :])
        return (S[0, self._final_slots] * _TWO_PI).tolist()

    def to_circuit(self, values: Any = ()) -> QuantumCircuit:
        """The bound native circuit: the emitted gates, the trailing ``rz`` frames, measures.

        Its unitary (measurements removed) equals the bound source circuit's up to global
        phase; its non-``rz`` gates are exactly :meth:`bind`'s output.
        """
        x = self._values_1d(values)[None, :]
        gates = self._gate_lists(x)[0]
        frames = self.final_frames(values)
        native = ionq_native_to_circuit(gates, self.num_qubits, frames)
        if self.num_clbits:
            out = QuantumCircuit(self.num_qubits, self.num_clbits)
            out.compose(native, inplace=True)
            for c, q in enumerate(self.meas_map):
                if q is not None:
                    out.measure(q, c)
            return out
        return native


"""IonQ native gates with cheap matrices and copies, for the compiler's output.

The compiler emits qiskit-ionq's ``GPIGate``, ``GPI2Gate``, ``MSGate`` and ``ZZGate``
semantics, through the subclasses here. They differ only in cost, never in meaning:

* ``__array__`` returns a matrix computed once per angle (a bounded memo): Qiskit's
  Rust passes (``Optimize1qGatesDecomposition`` of every preset pass manager, on every
  ``run``) ask Python gates for their matrix through a callback, twice per gate; the
  parent classes build it from ``np.exp`` and ``np.array`` each time.
* Deep copies of a gate whose parameters are all plain floats are *immutable* and
  shared, as Qiskit's singleton gates are: ``copy.deepcopy(gate)`` returns an
  immutable copy (``mutable`` is ``False``, assigning an attribute such as ``params``
  or ``label`` raises ``TypeError``), and deep copies of an immutable gate are the gate
  itself. ``gate.copy()`` and ``gate.to_mutable()`` give a new, mutable gate. The gate
  a user creates stays mutable. ``PassManager.run`` deep-copies every Python gate of
  its input and of its output (``circuit_to_dag`` / ``dag_to_circuit`` with
  ``copy_operations=True``), also when nothing changes; for a native circuit that
  qiskit-machine-learning sends through a preset pass manager once per shifted
  parameter set, those copies were a third of each run. Gates with parameter
  expressions are copied (``assign_parameters`` rewrites their parameters).
* ``base_class`` is the qiskit-ionq class, so that a gate here equals the qiskit-ionq
  gate with the same parameters (``Instruction.__eq__`` compares base classes), and
  ``isinstance`` checks against qiskit-ionq's classes hold.

qiskit-ionq's classes are not changed, with one exception: they get the two class
attributes by which Qiskit recognises its standard instructions and control-flow
operations, set to ``None`` ("neither"), see :func:`_declare_non_standard`. Everything
else about them is a field library's public classes, whose exact behaviour other code
may rely on.
"""

from __future__ import annotations

import copy as _copy
import math
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import numpy as np
from qiskit.circuit import Instruction, ParameterExpression
from qiskit_ionq import ionq_gates

#: Entries kept per gate class before the memo is cleared (angles of a training loop
#: are few; a sweep over fresh angles must not grow memory without bound).
MEMO_SIZE = 4096


def _key(params: list) -> tuple | None:
    """The memo key of numeric parameters, or ``None`` (a free parameter: no matrix)."""
    key: list[Any] = []
    for p in params:
        if isinstance(p, ParameterExpression):
            if p.parameters:
                return None
            p = p.numeric()
        if isinstance(p, complex):
            key.append(p)
        else:
            p = float(p)
            # -0.0 == 0.0 as a key, but its sign reaches the signs of zero matrix
            # entries: keep the two apart so that every matrix is bit for bit the
            # parent class's.
            key.append((p, math.copysign(1.0, p)))
    return tuple(key)


def _c_level_property(name: str) -> property:
    """``Instruction``'s property ``name`` with a C-level getter of the same private
    attribute (``operator.attrgetter("_" + name)``) and ``Instruction``'s own setter,
    deleter and docstring: the same values and validation, a cheaper read."""
    slow = getattr(Instruction, name)
    return property(attrgetter("_" + name), slow.fset, slow.fdel, slow.__doc__)


class _CachedNative:
    """Mixin: memoized ``__array__`` and a cheap ``__deepcopy__`` (see the module docs)."""

    _qiskit_ionq_class: type = object
    _memo: dict
    #: The parent class's matrix for plain float parameters (set by each subclass).
    _float_matrix: Callable[..., np.ndarray]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._memo = {}

    base_class = property(attrgetter("_qiskit_ionq_class"), doc="qiskit-ionq's class.")

    # Qiskit's Rust code reads ``base_class``, ``name`` (twice), ``params``,
    # ``num_qubits``, ``num_clbits`` and ``label`` of every Python gate it adds to a DAG
    # or circuit; ``Instruction``'s getters are Python functions returning the private
    # attribute. The same properties with C-level getters (``attrgetter`` of the same
    # attribute) and ``Instruction``'s own setters: the same values and the same
    # validation on assignment, a third less time per added gate.
    name = _c_level_property("name")
    params = _c_level_property("params")
    label = _c_level_property("label")
    num_qubits = _c_level_property("num_qubits")
    num_clbits = _c_level_property("num_clbits")

    def _memo_key(self) -> tuple | None:
        params = self._params  # type: ignore[attr-defined]
        for p in params:
            # Plain non-zero floats (the usual case) are their own key; anything else
            # (zeros, whose sign matters, expressions, numpy scalars) goes through _key.
            if type(p) is not float or p == 0.0:
                return _key(params)
        return tuple(params)

    def __array__(self, dtype=None, copy=None):
        key = self._memo_key()
        if key is None:
            return super().__array__(dtype=dtype, copy=copy)  # type: ignore[misc]
        memo = type(self)._memo
        matrix = memo.get(key)
        if matrix is None:
            params = self._params  # type: ignore[attr-defined]
            if all(type(p) is float for p in params):
                matrix = type(self).float_matrix(params)
            else:
                if len(memo) >= MEMO_SIZE:
                    memo.clear()
                matrix = np.asarray(super().__array__(), dtype=complex)  # type: ignore[misc]
                matrix.setflags(write=False)
                memo[key] = matrix
        # A fresh, writable array every time: callers may modify what they get.
        if dtype is None or dtype is complex:
            return matrix.copy()
        if copy is False and np.dtype(dtype) != matrix.dtype:
            raise ValueError("a copy is needed to change the dtype")
        return matrix.astype(dtype, copy=True)

    def to_matrix(self) -> np.ndarray:
        """The gate's matrix (what ``Gate.to_matrix`` returns, one call shorter: Qiskit's
        Rust passes call this for every native gate they look at)."""
        return self.__array__(dtype=complex)

    @classmethod
    def float_matrix(cls, params) -> np.ndarray:
        """The gate's matrix for parameters that are all plain floats, from the memo.

        Bit for bit qiskit-ionq's ``__array__`` (see :func:`_ms_matrix`). The array is
        the memo's own, read-only: copy it before changing it.
        """
        memo = cls._memo
        for p in params:
            if p == 0.0:  # the sign of a zero reaches the signs of zero matrix entries
                key = _key(params)
                break
        else:
            key = tuple(params)
        matrix = memo.get(key)
        if matrix is None:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            matrix = cls._float_matrix(*params)
            matrix.setflags(write=False)
            memo[key] = matrix
        return matrix


    def _real_copy(self, memo: dict | None = None, frozen: bool = False) -> Any:
        """A new instance with the same attributes (parameters deep-copied), mutable
        unless ``frozen``."""
        cls = _MUTABLE[type(self)]
        cpy = object.__new__(_FROZEN[cls] if frozen else cls)
        state = cpy.__dict__
        state.update(self.__dict__)
        params = state["_params"]
        for p in params:
            if type(p) is not float:  # expressions and the rest are deep-copied
                state["_params"] = _copy.deepcopy(params, memo)
                break
        else:  # floats are immutable: a new list is a deep copy
            state["_params"] = _FrozenParams(params) if frozen else list(params)
        if state["_definition"] is not None:
            state["_definition"] = _copy.deepcopy(state["_definition"], memo)
        return cpy

    def __deepcopy__(self, memo=None):
        # The deep copy of a gate whose parameters are all plain floats is immutable,
        # as Qiskit's singleton gates are (``mutable`` is False, attribute assignment
        # raises, ``copy()`` / ``to_mutable()`` give a mutable copy), and deep copies of
        # an immutable gate are the gate itself. ``PassManager.run`` deep-copies every
        # Python gate of its input and of its output, ``assign_parameters`` and
        # ``BackendEstimatorV2`` copy them again: for a native circuit those copies are
        # most of the cost of a re-run, and all they protect is what immutability
        # protects. Gates with expressions stay mutable: ``assign_parameters`` rewrites
        # their parameters.
        if type(self) in _FROZEN_CLASSES:
            return self
        for p in self._params:  # type: ignore[attr-defined]
            if type(p) is not float:
                return self._real_copy(memo)
        return self._real_copy(memo, frozen=True)

    def copy(self, name: str | None = None) -> Any:
        """A mutable copy (``Instruction.copy``, also for a shared, immutable gate)."""
        cpy = self._real_copy()
        if name:
            cpy.name = name
        return cpy

    @property
    def mutable(self) -> bool:
        """False for a deep copy with numeric parameters, which circuits share (see
        ``__deepcopy__``)."""
        return type(self) not in _FROZEN_CLASSES


class _FrozenParams(list):
    """The parameter list of an immutable gate: a list (equal to lists, indexable,
    iterable) that refuses in-place changes, which would reach every circuit sharing
    the gate."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "the parameters of a shared, immutable native gate cannot be changed in place;"
            " call 'to_mutable()' on the gate for a mutable copy"
        )

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict | None = None) -> "_FrozenParams":
        return self  # immutable, of immutable floats

    def __reduce__(self):
        return (_FrozenParams, (list(self),))


class _Frozen:
    """Mixin of the shared (immutable) variant of each native gate class."""

    # What a shared gate may still fill in: its definition, which ``Gate.definition``
    # builds on first use.
    _CACHES = frozenset({"definition", "_definition"})

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self._CACHES:
            object.__setattr__(self, key, value)
            return
        raise TypeError(
            f"This '{type(self).__name__}' object is shared between circuits and immutable."
            " You can get a mutable version by calling 'to_mutable()'."
        )

    def __reduce__(self):
        # Unpickled (and ``copy.copy``-ed) as what it is: immutable, without setattr.
        return (_unpickle_native, (type(self), self.__dict__.copy()))


def _unpickle_native(cls: type, state: dict) -> Any:
    gate = object.__new__(cls)
    gate.__dict__.update(state)
    return gate


# The matrices of gates with float parameters, computed as qiskit-ionq's ``__array__``
# computes them, bit for bit (the tests compare them on 100,000s of angles, signed zeros
# included), at a fifth of the cost: a memo miss is the common case for the phases of a
# compiled circuit (every MS of a resynthesis round is one), and qiskit-ionq's version
# spends most of its time in NumPy *scalar* arithmetic and in building an array from a
# nested list of NumPy scalars. Here the transcendental functions are the same NumPy
# calls (``np.exp``, ``np.cos``, ``np.sin`` on the same arguments, evaluated by the same
# Python expressions), the products of their results are Python ``complex``
# products, the same textbook formula as NumPy's scalar product (IEEE, no fused
# multiply-add in either), and the array is built from Python numbers; array-level
# operations (GPi2's scaling) are kept as they are. ``-1j`` is ``complex(-0.0, -1.0)``
# in both; a NumPy float taking part in a complex product is ``complex(x, 0.0)``.
_MINUS_1J = complex(-0.0, -1.0)
_INV_SQRT2 = 1 / np.sqrt(2)  # NumPy float64, as in qiskit-ionq's GPI2Gate


def _gpi_matrix(phase: float) -> np.ndarray:
    top = complex(np.exp(-1j * 2 * math.pi * phase))
    bottom = complex(np.exp(1j * 2 * math.pi * phase))
    return np.array([[0, top], [bottom, 0]], dtype=complex)


def _gpi2_matrix(phase: float) -> np.ndarray:
    top = _MINUS_1J * complex(np.exp(-1j * phase * 2 * math.pi))
    bottom = _MINUS_1J * complex(np.exp(1j * phase * 2 * math.pi))
    return _INV_SQRT2 * np.array([[1, top], [bottom, 1]], dtype=complex)


def _ms_matrix(phi0: float, phi1: float, theta: float) -> np.ndarray:
    diag = complex(float(np.cos(math.pi * theta)), 0.0)
    sin = complex(float(np.sin(math.pi * theta)), 0.0) * _MINUS_1J
    return np.array(
        [
            [diag, 0, 0, sin * complex(np.exp(-1j * 2 * math.pi * (phi0 + phi1)))],
            [0, diag, sin * complex(np.exp(1j * 2 * math.pi * (phi0 - phi1))), 0],
            [0, sin * complex(np.exp(-1j * 2 * math.pi * (phi0 - phi1))), diag, 0],
            [sin * complex(np.exp(1j * 2 * math.pi * (phi0 + phi1))), 0, 0, diag],
        ],
        dtype=complex,
    )


def _zz_matrix(theta: float) -> np.ndarray:
    itheta2 = 1j * float(theta) * math.pi
    minus, plus = complex(np.exp(-itheta2)), complex(np.exp(itheta2))
    return np.array(
        [[minus, 0, 0, 0], [0, plus, 0, 0], [0, 0, plus, 0], [0, 0, 0, minus]], dtype=complex
    )


class GPIGate(_CachedNative, ionq_gates.GPIGate):
    """qiskit-ionq's ``GPIGate`` with a memoized matrix and a cheap deep copy."""

    _qiskit_ionq_class = ionq_gates.GPIGate
    _float_matrix = staticmethod(_gpi_matrix)


class GPI2Gate(_CachedNative, ionq_gates.GPI2Gate):
    """qiskit-ionq's ``GPI2Gate`` with a memoized matrix and a cheap deep copy."""

    _qiskit_ionq_class = ionq_gates.GPI2Gate
    _float_matrix = staticmethod(_gpi2_matrix)


class MSGate(_CachedNative, ionq_gates.MSGate):
    """qiskit-ionq's ``MSGate`` with a memoized matrix and a cheap deep copy."""

    _qiskit_ionq_class = ionq_gates.MSGate
    _float_matrix = staticmethod(_ms_matrix)


class ZZGate(_CachedNative, ionq_gates.ZZGate):
    """qiskit-ionq's ``ZZGate`` with a memoized matrix and a cheap deep copy."""

    _qiskit_ionq_class = ionq_gates.ZZGate
    _float_matrix = staticmethod(_zz_matrix)


def _declare_non_standard(cls: type) -> None:
    """Give ``cls`` the class attributes ``_standard_instruction_type`` and
    ``_control_flow_type`` as ``None``, unless it (or a base) has them already.

    Qiskit's Rust code converts every Python operation it adds to a DAG or circuit by
    reading these two attributes from the operation's ``base_class`` (here qiskit-ionq's
    class) to recognise its own standard instructions and control-flow operations;
    ``None`` means neither, which is what these gates are, and is what Qiskit itself sets
    on subclasses of ``Measure`` to opt them out. A missing attribute means the same to
    Qiskit but raises and formats an ``AttributeError`` each time: about a third of the
    cost of adding one native gate (23 k instructions per gate, 15.5 k with the
    attributes), for every gate of every compiled circuit.
    """
    for name in ("_standard_instruction_type", "_control_flow_type"):
        if not hasattr(cls, name):
            setattr(cls, name, None)


for _ionq_cls in (ionq_gates.GPIGate, ionq_gates.GPI2Gate, ionq_gates.MSGate, ionq_gates.ZZGate):
    _declare_non_standard(_ionq_cls)
del _ionq_cls

# The shared (immutable) variant of each class, and back.
_FROZEN: dict[type, type] = {}
_MUTABLE: dict[type, type] = {}
for _cls in (GPIGate, GPI2Gate, MSGate, ZZGate):
    _frozen_cls = type(_cls.__name__, (_Frozen, _cls), {"__module__": __name__, "__qualname__": f"_Frozen{_cls.__name__}"})
    _FROZEN[_cls] = _frozen_cls
    _MUTABLE[_cls] = _MUTABLE[_frozen_cls] = _cls
    globals()[f"_Frozen{_cls.__name__}"] = _frozen_cls
_FROZEN_CLASSES = frozenset(_MUTABLE) - frozenset(_FROZEN)
del _cls, _frozen_cls

"""A light list form of native circuits, used between the lowering passes.

Building a Qiskit gate object and appending it to a DAG costs several microseconds per
gate; :class:`~.passes.ResynthesizeNativeBlocks` builds a whole candidate circuit (the
lowering, then the pi-pulse absorption) and usually discards it. The passes therefore
also work on *entries* ``[name, params, op, qargs, cargs]``: native gates (``gpi``,
``gpi2``, ``ms``, ``zz``, ``rz``) carry their name and parameters and ``op=None``;
anything else (``measure``, ``reset``, ``barrier``, directives) carries its ``op``, or
(``measure`` and ``barrier``, from the lowering) ``op=None`` and the input's DAG node as
a sixth item, ``[name, None, None, qargs, cargs, node]``, whose instruction
:func:`entries_to_dag` appends as it is. Gates are built only for a result that is kept
(:func:`entries_to_dag`).
"""

from __future__ import annotations

import math
from typing import Any

from qiskit.circuit.library import RZGate
from qiskit.dagcircuit import DAGCircuit
from .gates import GPI2Gate, GPIGate, MSGate, ZZGate

from .affine import Affine
from .synthesis import ANGLE_TOL, TWO_PI
from .target import instruction_error

#: Constructors of the native gates an entry may name without an ``op``.
NATIVE_CLASSES: dict[str, Any] = {
    "gpi": GPIGate,
    "gpi2": GPI2Gate,
    "ms": MSGate,
    "zz": ZZGate,
    "rz": RZGate,
}


def norm_turns(value):
    """Reduce a phase in turns to ``[0, 1)`` (expressions: their constant to ``[-1/2, 1/2]``)."""
    if isinstance(value, Affine):
        return value.reduce_const(1.0).to_expression()
    value = float(value) % 1.0
    return 0.0 if abs(value - 1.0) < 1e-12 or abs(value) < 1e-12 else value


def is_zero_angle(value) -> bool:
    """Whether an angle (radians) is a multiple of 2 pi, i.e. a global phase."""
    if isinstance(value, Affine):
        return False
    return abs(math.remainder(float(value), TWO_PI)) < ANGLE_TOL


#: One instance per native class: the attributes a fresh gate gets from its constructor
#: besides its parameters (name, width, no label, no definition).
_PROTOTYPES: dict[str, Any] = {
    "gpi": GPIGate(0.0),
    "gpi2": GPI2Gate(0.0),
    "ms": MSGate(0.0, 0.0, 0.25),
    "zz": ZZGate(0.0),
    "rz": RZGate(0.0),
}


def entry_op(entry: list) -> Any:
    """The instruction of an entry (built from its name and parameters if needed).

    Gates whose parameters are all plain floats are built as a copy of the class's
    prototype with a new parameter list: the constructor's validation passes floats
    through unchanged, so the gate is the one the constructor would build (same class,
    attributes and parameters), at a fifth of the cost (this runs once per output gate;
    the same shortcut as the gates' own ``__deepcopy__``).
    """
    op = entry[2]
    if op is None:
        if len(entry) > 5:  # an instruction kept as its DAG node
            return entry[5].op
        params = entry[1]
        for param in params:
            if type(param) is not float:
                return NATIVE_CLASSES[entry[0]](*params)
        proto = _PROTOTYPES[entry[0]]
        op = object.__new__(type(proto))
        state = op.__dict__
        state.update(proto.__dict__)
        state["_params"] = list(params)
    return op


def entries_to_dag(template: DAGCircuit, entries: list) -> DAGCircuit:
    """A DAG like ``template`` (same wires, no operations) holding ``entries`` in order.

    An entry kept as its node (a sixth item: a node of ``template``'s own DAG, or of one
    with the same wires) is appended as that node's instruction, the same instruction
    ``node.op`` would give, without building the Python operation and converting it back
    (a measurement or barrier costs about half as much this way).
    """
    out = template.copy_empty_like()
    apply = out.apply_operation_back
    append_node = out._apply_op_node_back  # pylint: disable=protected-access
    for entry in entries:
        if len(entry) > 5:
            append_node(entry[5], check=False)
        else:
            apply(entry_op(entry), entry[3], entry[4], check=False)
    return out


def entries_cost(entries: list, spec) -> tuple[float, int]:
    """(-log estimated success, native gate count) of entries; same value as
    :func:`~.passes.resynthesize_native.native_cost` of the DAG they build."""
    oneq = 0
    terms = []
    # A gate's term depends only on its name and angle (MS: the third parameter), and a
    # circuit has few distinct angles (every full-angle MS is one): computed once each.
    known: dict[tuple, float] = {}
    for entry in entries:
        name = entry[0]
        if name == "gpi" or name == "gpi2":
            oneq += 1
        elif name == "ms" or name == "zz":
            params = entry[1] if entry[2] is None else entry[2].params
            angle = params[-1]
            key = None
            if type(angle) is float and len(params) == (3 if name == "ms" else 1):
                key = (name, angle)
            term = known.get(key) if key is not None else None
            if term is None:
                err = instruction_error(name, params, spec)
                term = -math.log1p(-min(err, 1.0 - 1e-15))
                if key is not None:
                    known[key] = term
            terms.append(term)
    terms.append(oneq * -math.log1p(-min(spec.oneq_error, 1.0 - 1e-15)))
    return math.fsum(terms), oneq + len(terms) - 1

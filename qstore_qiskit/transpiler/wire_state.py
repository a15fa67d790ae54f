"""Per-qubit state of :class:`~.passes.LowerToIonQNative`'s sweep.

A wire tracks one qubit's virtual Z frame and the single-qubit work not emitted yet;
the lowering pass owns the sweep, this module only the state and its three updates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .affine import Affine, affine_or_float
from .synthesis import TWO_PI, rz_matrix


class Wire:
    """Per-qubit state of the sweep: a virtual Z frame and not-yet-emitted 1q work.

    Invariant: (what the original circuit applied so far on this qubit) equals
    ``RZ(frame) . (emitted natives) `` followed by ``pending``, in circuit order.
    ``pending`` holds 2x2 matrices (fused eagerly) and symbolic Z rotations.

    The sweep passes wires (not qubits) between its steps: a qubit is hashed once per
    instruction that names it, to find its wire, and ``qargs`` is the wire's qubit as
    the ``qargs`` of the single-qubit gates it emits.
    """

    __slots__ = ("qubit", "qargs", "frame", "pending", "last_is_measure", "fresh")

    def __init__(self, qubit: Any = None) -> None:
        self.qubit = qubit
        self.qargs = (qubit,)
        self.frame: Any = 0.0
        self.pending: list = []
        self.last_is_measure = False
        # True while nothing was emitted on the wire: it is still in |0> up to `pending`.
        self.fresh = True

    def push_matrix(self, u: np.ndarray) -> None:
        if self.pending and isinstance(self.pending[-1], np.ndarray):
            self.pending[-1] = u.dot(self.pending[-1])  # = u @ ..., bit for bit, cheaper
        else:
            self.pending.append(u)

    def push_rz(self, angle) -> None:
        angle = affine_or_float(angle)
        if isinstance(angle, float):
            self.push_matrix(rz_matrix(angle))
        elif self.pending and isinstance(self.pending[-1], Affine):
            self.pending[-1] = self.pending[-1] + angle
        else:
            self.pending.append(angle)

    def add_frame(self, angle) -> None:
        frame = self.frame + angle
        if type(frame) is float:  # the common case: the float branch below, directly
            self.frame = math.remainder(frame, TWO_PI)
            return
        if isinstance(frame, Affine):
            frame = frame.reduce_const(TWO_PI) if frame.terms else frame.const
        if isinstance(frame, float):
            frame = math.remainder(frame, TWO_PI)  # RZ(t + 2 pi) = -RZ(t): a global phase
        self.frame = frame


__all__ = ["Wire"]

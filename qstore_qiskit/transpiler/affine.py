"""Affine forms over circuit parameters, for fast symbolic phase bookkeeping.

The lowering pushes virtual Z rotations through the circuit, so every native phase is
a sum of many gate angles. Accumulating those sums as Qiskit
:class:`~qiskit.circuit.ParameterExpression` objects grows an expression tree per
operation, which made compiling a 3-qubit, 12-parameter circuit take seconds. We keep
them instead as ``const + sum(coeff * atom)`` with float coefficients and turn each into
one small ``ParameterExpression`` only when a gate is emitted. An *atom* is a
:class:`~qiskit.circuit.Parameter`, or an opaque non-affine expression such as
``sin(theta)`` (kept whole, so non-affine inputs still compile exactly).
"""

from __future__ import annotations

import math
from typing import Union

from qiskit.circuit import Parameter, ParameterExpression

Number = Union[int, float]


class Affine:
    """``const + sum(coeff * atom)``; immutable."""

    __slots__ = ("const", "terms")

    def __init__(self, const: float = 0.0, terms: dict | None = None) -> None:
        self.const = float(const)
        self.terms = terms or {}

    # -------------------------------------------------------------- construction
    @classmethod
    def of(cls, value) -> "Affine | float":
        """Convert a number or expression; numbers (and bound expressions) stay floats."""
        if isinstance(value, Affine):
            return value
        if isinstance(value, Parameter):
            return cls(0.0, {value: 1.0})
        if isinstance(value, ParameterExpression):
            params = value.parameters
            if not params:
                return float(value.numeric().real if isinstance(value.numeric(), complex) else value.numeric())
            return cls._from_expression(value, params)
        return float(value)

    @classmethod
    def _from_expression(cls, expr: ParameterExpression, params) -> "Affine":
        terms: dict = {}
        try:
            for param in params:
                grad = expr.gradient(param)
                if isinstance(grad, ParameterExpression):
                    if grad.parameters:
                        raise ValueError("non-affine")
                    grad = grad.numeric()
                terms[param] = float(grad.real if isinstance(grad, complex) else grad)
            zero = expr.bind({p: 0.0 for p in params}).numeric()
            const = float(zero.real if isinstance(zero, complex) else zero)
        except (ValueError, TypeError, ZeroDivisionError, ArithmeticError):
            return cls(0.0, {expr: 1.0})
        return cls(const, {p: c for p, c in terms.items() if c != 0.0})

    # -------------------------------------------------------------- arithmetic
    def __add__(self, other) -> "Affine":
        other = Affine.of(other) if not isinstance(other, (int, float)) else float(other)
        if isinstance(other, float):
            return Affine(self.const + other, self.terms)
        terms = dict(self.terms)
        for atom, coeff in other.terms.items():
            terms[atom] = terms.get(atom, 0.0) + coeff
        return Affine(self.const + other.const, terms)

    __radd__ = __add__

    def __neg__(self) -> "Affine":
        return Affine(-self.const, {a: -c for a, c in self.terms.items()})

    def __sub__(self, other) -> "Affine":
        return self + (-other if isinstance(other, (int, float, Affine)) else -Affine.of(other))

    def __rsub__(self, other) -> "Affine":
        return (-self) + other

    def __mul__(self, k: Number) -> "Affine":
        k = float(k)
        return Affine(self.const * k, {a: c * k for a, c in self.terms.items()})

    __rmul__ = __mul__

    def __truediv__(self, k: Number) -> "Affine":
        return self * (1.0 / float(k))

    # -------------------------------------------------------------- output
    def reduce_const(self, period: float) -> "Affine":
        """Reduce the constant modulo ``period`` (phases are periodic)."""
        return Affine(math.remainder(self.const, period), self.terms)

    def to_expression(self) -> ParameterExpression | float:
        """One small ``ParameterExpression`` (or a float if no term survives)."""
        expr = None
        for atom, coeff in self.terms.items():
            if coeff == 0.0:
                continue
            term = atom if coeff == 1.0 else coeff * atom
            expr = term if expr is None else expr + term
        if expr is None:
            return self.const
        return expr + self.const if self.const else expr

    def __repr__(self) -> str:
        parts = [f"{c:+g}*{a}" for a, c in self.terms.items()]
        return f"Affine({self.const:g} {' '.join(parts)})"


def affine_or_float(value):
    """:meth:`Affine.of` that also collapses an empty ``Affine`` to its constant."""
    if type(value) is float:  # the common case, returned as Affine.of would return it
        return value
    value = Affine.of(value)
    if isinstance(value, Affine) and not value.terms:
        return value.const
    return value

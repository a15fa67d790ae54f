"""How a lowering realises one two-qubit block: the plan behind :class:`LowerToIonQNative`.

A block's plan is a pure function of its 4x4 matrix (and of the device's errors): its Weyl
decomposition, the interaction terms worth realising (all, or fewer where fidelity-aware
approximation raises estimated success), and, for a block of one interaction, the choice
of MS or ZZ with its locals gauged to be diagonal where possible. Kept apart from the
sweep that emits native gates (:mod:`.passes.lower_to_native`), which asks for plans and
turns them into gates.
"""

from __future__ import annotations

import math

import numpy as np

from .gauge import X as _X
from .gauge import Y as _Y
from .gauge import anti_diagonal as _anti_diagonal
from .gauge import gauge as _gauge
from .gauge import non_diagonal as _non_diagonal
from .synthesis import ANGLE_TOL, H, W_ZY, canonical_fidelity, weyl
from .target import DeviceSpec

#: Distinct block matrices whose synthesis plan a lowering pass remembers.
PLAN_CACHE_SIZE = 4096


class TwoQubitBlockPlanner:
    """Plans for two-qubit blocks, cached per matrix (a mixin of :class:`LowerToIonQNative`).

    The class using it sets ``spec`` (the device's errors), ``approximation_degree``,
    ``_use_zz`` (whether ZZ is a candidate) and ``_plans`` (the cache, a dict).
    """

    spec: DeviceSpec
    approximation_degree: float | None
    _use_zz: bool
    _plans: dict[bytes, tuple]

    def _plan(self, matrix: np.ndarray) -> tuple:
        """How to realise a 2q block: a pure function of its matrix, cached per matrix.

        Structured circuits repeat the same blocks many times (a quantum walk's or
        Grover's oracle): the Weyl decomposition and the choice and gauge of the
        interaction are then computed once. The cached matrices are never mutated (the
        wires combine them into new arrays).
        """
        key = matrix.tobytes()
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        dec = weyl(matrix)
        k2r, k2l, k1r, k1l = (np.asarray(k) for k in (dec.K2r, dec.K2l, dec.K1r, dec.K1l))
        terms = self._choose_terms((dec.a, dec.b, dec.c))
        if len(terms) == 1:
            plan = ("single", *self._single_interaction(terms[0], (k2r, k2l, k1r, k1l)))
        else:
            plan = ("multi", k2r, k2l, terms, k1r, k1l)
        if len(self._plans) >= PLAN_CACHE_SIZE:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _single_interaction(self, term, locals_) -> tuple:
        """Plan a one-coordinate block as one MS or ZZ, whichever is estimated better.

        Locals are first moved along the interaction's symmetry (rotations about its own
        axis commute with it) so that they become diagonal where possible: a lone native
        gate then costs no single-qubit gates at all. Candidates are priced by their
        two-qubit error plus one single-qubit error per non-diagonal local.

        Returns:
            ``(kind, axis, turns, pre_a, post_a, pre_b, post_b)``.
        """
        axis, coef = term
        turns = -coef / math.pi
        k2r, k2l, k1r, k1l = locals_
        candidates = []
        if not self._use_zz:
            # MS is the only candidate: no pricing needed (this is the common case).
            if axis in ("xx", "yy"):
                pauli = _X if axis == "xx" else _Y
                pre_a, post_a = _gauge(pauli, k2r, k1r)
                pre_b, post_b = _gauge(pauli, k2l, k1l)
            else:
                pre_a, post_a = _gauge(_X, H.dot(k2r), k1r.dot(H))
                pre_b, post_b = _gauge(_X, H.dot(k2l), k1l.dot(H))
            return "ms", axis, turns, pre_a, post_a, pre_b, post_b
        if axis in ("xx", "yy"):
            pauli = _X if axis == "xx" else _Y
            ms_locals = [*_gauge(pauli, k2r, k1r), *_gauge(pauli, k2l, k1l)]
            cost = self.spec.ms_error_at(turns) + self.spec.oneq_error * _non_diagonal(ms_locals)
            candidates.append((cost, "ms", ms_locals))
            if self._use_zz:
                # exp(ik PP) = (V (x) V) exp(ik ZZ) (V^ (x) V^), V = H for X, S H for Y.
                v = H if axis == "xx" else W_ZY
                zz_locals = [v.conj().T.dot(k2r), k1r.dot(v), v.conj().T.dot(k2l), k1l.dot(v)]
                cost = self.spec.zz_error_at(turns) + self.spec.oneq_error * _non_diagonal(zz_locals)
                candidates.append((cost, "zz", zz_locals))
        else:
            zz_locals = [k2r, k1r, k2l, k1l]
            if self._use_zz:
                cost = self.spec.zz_error_at(turns) + self.spec.oneq_error * _non_diagonal(zz_locals)
                candidates.append((cost, "zz", zz_locals))
            ms_locals = [*_gauge(_X, H.dot(k2r), k1r.dot(H)), *_gauge(_X, H.dot(k2l), k1l.dot(H))]
            cost = self.spec.ms_error_at(turns) + self.spec.oneq_error * _non_diagonal(ms_locals)
            candidates.append((cost, "ms", ms_locals))
        _, kind, (pre_a, post_a, pre_b, post_b) = min(candidates, key=lambda c: c[0])
        if kind == "zz":
            # X on one qubit anticommutes with ZZ: pull anti-diagonal locals through it
            # by flipping the angle, so they can become diagonal too.
            if _anti_diagonal(pre_a):
                pre_a, post_a, turns = _X.dot(pre_a), post_a.dot(_X), -turns
            if _anti_diagonal(pre_b):
                pre_b, post_b, turns = _X.dot(pre_b), post_b.dot(_X), -turns
        return kind, axis, turns, pre_a, post_a, pre_b, post_b

    def _choose_terms(self, coords: tuple[float, float, float]) -> list[tuple[str, float]]:
        """Pick which Weyl terms to realise (all non-zero ones unless approximating).

        The ZZ term goes first: on MS-only devices it needs Hadamard conjugation, and
        placing it next to the K2 locals lets one side of that conjugation merge into
        them.
        """
        a, b, c = coords
        if self.approximation_degree is not None and self.approximation_degree >= 1.0:
            # All non-zero terms, ZZ first (what the sort below gives, without it).
            chosen = [("zz", c)] if abs(c) > ANGLE_TOL else []
            if abs(a) > ANGLE_TOL:
                chosen.append(("xx", a))
            if abs(b) > ANGLE_TOL:
                chosen.append(("yy", b))
            return chosen
        axes = ("xx", "yy", "zz")
        nonzero = [(ax, c) for ax, c in zip(axes, coords) if abs(c) > ANGLE_TOL]
        chosen = self._approximate(coords, nonzero)
        return sorted(chosen, key=lambda t: t[0] != "zz")

    def _approximate(self, coords, nonzero):
        """Drop trailing Weyl terms when that raises estimated success.

        Weyl coordinates are ordered ``a >= b >= |c|``, so the candidates are: keep
        the first ``k`` non-zero terms, ``k = 0..3``. Each is priced as
        (fidelity to the exact block) x (success of its MS gates); with an explicit
        ``approximation_degree`` < 1 the block fidelity must also stay above it.
        """
        best, best_score = nonzero, -1.0
        for k in range(len(nonzero) + 1):
            kept = nonzero[:k]
            kept_coords = tuple(
                next((c for ax, c in kept if ax == axis), 0.0) for axis in ("xx", "yy", "zz")
            )
            block_fid = canonical_fidelity(kept_coords, tuple(coords))
            if self.approximation_degree is not None and block_fid < self.approximation_degree:
                continue
            gate_fid = 1.0
            for _, coef in kept:
                gate_fid *= 1.0 - self.spec.ms_error_at(abs(coef) / math.pi)
            score = block_fid * gate_fid
            if score > best_score + 1e-15:
                best, best_score = kept, score
        return best

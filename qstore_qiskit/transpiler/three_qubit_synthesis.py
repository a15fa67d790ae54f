"""Numerical synthesis of three-qubit unitaries with few partial-angle two-qubit gates.

A template is a sequence of qubit pairs ``p_1 .. p_m``; its circuit is a layer of general
one-qubit gates (``U3``) on all three qubits, then for each pair ``p_i`` an
``RZZ(theta_i)`` on ``p_i`` followed by a ``U3`` on each of its two qubits (the layered
ansatz of BQSKit's QSearch/LEAP). ``RZZ(theta)`` is an MS gate up to one-qubit gates, so
a template of ``m`` pairs lowers to at most ``m`` partial-angle MS gates.

:func:`instantiate` fits a template's parameters to a target unitary with
Levenberg-Marquardt on the residual ``W(params) - exp(i gamma) V`` (an exact solution is
a zero residual, on which LM converges quadratically to machine precision, unlike
gradient descent on the Hilbert-Schmidt distance); the Jacobian is analytic.
:func:`synthesize_three_qubit` searches templates shorter than a given count. Both are
pure numpy and deterministic for a given seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

Pair = tuple[int, int]

#: Largest residual (Frobenius norm, after the global phase) accepted as exact.
EXACT_TOL = 1e-9

#: A start whose squared residual is above ``_STALL_FLOOR`` and has not halved in the
#: last ``_STALL_WINDOW`` iterations is abandoned.
_STALL_WINDOW = 10
_STALL_FLOOR = 1e-6

_IDX = np.arange(8)
#: ``_Z[q][k]`` is the eigenvalue (+1/-1) of ``Z`` on qubit ``q`` for basis state ``k``
#: (Qiskit's little-endian order: qubit 0 is the least significant bit).
_Z = [1.0 - 2.0 * ((_IDX >> q) & 1) for q in range(3)]


class Template:
    """A layered three-qubit ansatz over ``pairs`` (see the module docstring).

    Every gate is one 8x8 factor; parameters of ``U3`` factors are evaluated for all
    factors at once, and the Jacobian is two batched matrix products, so that one
    evaluation costs a few dozen numpy calls whatever the template length.
    """

    def __init__(self, pairs: Sequence[Pair]) -> None:
        self.pairs = [tuple(sorted(p)) for p in pairs]
        kinds: list[tuple[str, object, int]] = []  # (kind, qubit or pair, first param)
        off = 0
        for q in range(3):
            kinds.append(("u", q, off))
            off += 3
        for pair in self.pairs:
            kinds.append(("zz", pair, off))
            off += 1
            for q in pair:
                kinds.append(("u", q, off))
                off += 3
        self.num_params = off
        self._kinds = kinds
        self._u_slots = [i for i, k in enumerate(kinds) if k[0] == "u"]
        self._u_qubit = np.array([kinds[i][1] for i in self._u_slots])
        self._u_param = np.array([kinds[i][2] for i in self._u_slots])
        self._zz_slots = [i for i, k in enumerate(kinds) if k[0] == "zz"]
        self._zz_param = np.array([kinds[i][2] for i in self._zz_slots])
        self._zz_diag = np.array([_Z[kinds[i][1][0]] * _Z[kinds[i][1][1]] for i in self._zz_slots])
        # Parameter index -> factor index, for the Jacobian.
        owner = np.empty(self.num_params, dtype=int)
        for slot, (kind, _, start) in enumerate(kinds):
            owner[start : start + (3 if kind == "u" else 1)] = slot
        self._owner = owner

    def _factors(self, x: np.ndarray, want_der: bool):
        n = len(self._kinds)
        facs = np.empty((n, 8, 8), dtype=complex)
        ders = np.empty((self.num_params, 8, 8), dtype=complex) if want_der else None
        # U3 factors, vectorised: u (L,2,2) embedded on their qubit.
        th = x[self._u_param]
        ph = x[self._u_param + 1]
        la = x[self._u_param + 2]
        c, s = np.cos(th / 2), np.sin(th / 2)
        ep, el = np.exp(1j * ph), np.exp(1j * la)
        epl = ep * el
        u = np.empty((len(th), 2, 2), dtype=complex)
        u[:, 0, 0], u[:, 0, 1], u[:, 1, 0], u[:, 1, 1] = c, -el * s, ep * s, epl * c
        facs[self._u_slots] = _embed(u, self._u_qubit)
        if want_der:
            zero = np.zeros_like(c, dtype=complex)
            d = np.empty((len(th), 3, 2, 2), dtype=complex)
            d[:, 0, 0, 0], d[:, 0, 0, 1], d[:, 0, 1, 0], d[:, 0, 1, 1] = -s / 2, -el * c / 2, ep * c / 2, -epl * s / 2
            d[:, 1, 0, 0], d[:, 1, 0, 1], d[:, 1, 1, 0], d[:, 1, 1, 1] = zero, zero, 1j * ep * s, 1j * epl * c
            d[:, 2, 0, 0], d[:, 2, 0, 1], d[:, 2, 1, 0], d[:, 2, 1, 1] = zero, -1j * el * s, zero, 1j * epl * c
            emb = _embed(d.reshape(-1, 2, 2), np.repeat(self._u_qubit, 3))
            ders[(self._u_param[:, None] + np.arange(3)).ravel()] = emb
        if self._zz_slots:
            diag = np.exp(-0.5j * x[self._zz_param][:, None] * self._zz_diag)
            slots = np.array(self._zz_slots)
            facs[slots] = 0
            facs[slots[:, None], _IDX[None, :], _IDX[None, :]] = diag
            if want_der:
                dd = np.zeros((len(self._zz_slots), 8, 8), dtype=complex)
                dd[:, _IDX, _IDX] = -0.5j * self._zz_diag * diag
                ders[self._zz_param] = dd
        return facs, ders

    def unitary(self, x: np.ndarray) -> np.ndarray:
        """The template's unitary at parameters ``x``."""
        out = np.eye(8, dtype=complex)
        for f in self._factors(x, False)[0]:
            out = f @ out
        return out

    def residual_and_jacobian(self, x: np.ndarray, target: np.ndarray, want_jac: bool = True):
        """Residual ``W(x[:-1]) - exp(i x[-1]) V`` as reals, and its Jacobian."""
        params, gamma = x[:-1], x[-1]
        facs, ders = self._factors(params, want_jac)
        n = len(facs)
        prefix = np.empty((n + 1, 8, 8), dtype=complex)
        prefix[0] = np.eye(8)
        for i in range(n):
            prefix[i + 1] = facs[i] @ prefix[i]
        phase = complex(math.cos(gamma), math.sin(gamma))
        res = (prefix[n] - phase * target).ravel()
        r = np.concatenate([res.real, res.imag])
        if not want_jac:
            return r, None
        suffix = np.empty((n, 8, 8), dtype=complex)
        suffix[n - 1] = np.eye(8)
        for i in range(n - 1, 0, -1):
            suffix[i - 1] = suffix[i] @ facs[i]
        cols = (suffix[self._owner] @ ders @ prefix[self._owner]).reshape(len(ders), 64)
        jac = np.empty((128, len(x)))
        jac[:64, :-1] = cols.real.T
        jac[64:, :-1] = cols.imag.T
        col = (-1j * phase * target).ravel()
        jac[:64, -1] = col.real
        jac[64:, -1] = col.imag
        return r, jac


_BITS = [(_IDX >> q) & 1 for q in range(3)]
#: ``_SAME[q][i, j]``: basis states ``i`` and ``j`` agree on every qubit but ``q``.
_SAME = [
    (((_IDX[:, None] ^ _IDX[None, :]) & ~(1 << q)) == 0).astype(float) for q in range(3)
]


def _embed(mats: np.ndarray, qubits: np.ndarray) -> np.ndarray:
    """8x8 matrices of the 2x2 ``mats[k]`` acting on qubit ``qubits[k]``."""
    out = np.empty((len(mats), 8, 8), dtype=complex)
    for q in range(3):
        sel = np.nonzero(qubits == q)[0]
        if len(sel):
            b = _BITS[q]
            out[sel] = mats[sel][:, b[:, None], b[None, :]] * _SAME[q]
    return out


class Budget:
    """A shared allowance of optimizer starts (deterministic, unlike a wall-clock limit:
    the same input always gets the same search, whatever the machine's load)."""

    def __init__(self, starts: int) -> None:
        self.left = starts

    def take(self) -> bool:
        """Use one start; ``False`` once the allowance is spent."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def instantiate(
    template: Template,
    target: np.ndarray,
    starts: int = 6,
    seed: int = 0,
    max_nfev: int = 80,
    budget: Budget | None = None,
) -> tuple[np.ndarray | None, float]:
    """Fit ``template`` to ``target``; return ``(params, residual norm)`` of the best start.

    ``params`` is ``None`` when no start reached :data:`EXACT_TOL`. A start that
    converges does so in about 40-70 evaluations (measured on random templates of 4-6
    pairs); ``max_nfev`` cuts the ones stuck in a local minimum, and more starts make up
    for them (each start succeeds with probability about 1/4-1/2 at 4-6 pairs). Each
    start takes one unit of ``budget`` if given.
    """
    rng = np.random.default_rng(seed)
    best, best_err = None, math.inf
    for _ in range(starts):
        if budget is not None and not budget.take():
            break
        x0 = rng.uniform(-math.pi, math.pi, template.num_params + 1)
        x, err = _levenberg_marquardt(template, target, x0, max_nfev)
        if err < best_err:
            best, best_err = x, err
        if best_err < EXACT_TOL:
            return best[:-1], best_err
    return None, best_err


def _levenberg_marquardt(
    template: Template, target: np.ndarray, x: np.ndarray, max_iter: int
) -> tuple[np.ndarray, float]:
    """Minimise the residual norm from ``x`` (Marquardt's scaled damping).

    Our own loop rather than SciPy's MINPACK ``lm``, whose results differed between
    identical calls in one process (measured with SciPy 1.17), which would make the
    compiler's output irreproducible; SciPy's ``trf`` is reproducible but 20-30x slower
    here. Returns the last accepted point and its residual norm.
    """
    r, jac = template.residual_and_jacobian(x, target)
    cost = float(r @ r)
    lam = 1e-3
    history = [cost]
    for it in range(max_iter):
        if cost < EXACT_TOL**2 / 4:
            break
        # A start stuck in a local minimum plateaus far from zero; one heading for an
        # exact solution keeps shrinking (quadratically at the end). Abandon plateaus.
        if it >= _STALL_WINDOW and cost > _STALL_FLOOR and cost > 0.5 * history[-_STALL_WINDOW]:
            break
        jtj = jac.T @ jac
        grad = jac.T @ r
        damp = np.diag(jtj) + 1e-12
        accepted = False
        while lam < 1e12:
            try:
                step = np.linalg.solve(jtj + lam * np.diag(damp), -grad)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            x_new = x + step
            r_new = template.residual_and_jacobian(x_new, target, want_jac=False)[0]
            cost_new = float(r_new @ r_new)
            if cost_new < cost:
                x, r, cost = x_new, r_new, cost_new
                jac = template.residual_and_jacobian(x, target)[1]
                lam = max(lam / 3, 1e-12)
                accepted = True
                break
            lam *= 4
        history.append(cost)
        if not accepted or np.linalg.norm(step) < 1e-14 * (1 + np.linalg.norm(x)):
            break
    return x, math.sqrt(cost)


def candidate_sequences(
    original: Sequence[Pair], length: int, exhaustive_up_to: int = 3
) -> list[tuple[Pair, ...]]:
    """Pair sequences of ``length`` to try, in a fixed order: those obtained by deleting
    one or two gates from ``original`` (as BQSKit's ``ScanningGateRemovalPass``), then,
    when ``length <= exhaustive_up_to``, every other sequence with no pair twice in a
    row."""
    pairs_all = [(0, 1), (0, 2), (1, 2)]
    seen: set[tuple[Pair, ...]] = set()
    out: list[tuple[Pair, ...]] = []
    orig = tuple(tuple(sorted(p)) for p in original)
    drop = len(orig) - length
    if 0 < drop <= 2:
        for removed in itertools.combinations(range(len(orig)), drop):
            seq = tuple(p for i, p in enumerate(orig) if i not in removed)
            if seq not in seen:
                seen.add(seq)
                out.append(seq)
    if length <= exhaustive_up_to:
        for seq in itertools.product(pairs_all, repeat=length):
            if any(seq[i] == seq[i + 1] for i in range(length - 1)) or seq in seen:
                continue
            seen.add(seq)
            out.append(seq)
    return out


def synthesize_three_qubit(
    target: np.ndarray,
    original_pairs: Sequence[Pair],
    seed: int = 0,
    budget: Budget | None = None,
    starts: int = 6,
) -> tuple[tuple[Pair, ...], np.ndarray] | None:
    """A template with fewer two-qubit gates than ``original_pairs`` that equals ``target``.

    Tries one gate fewer (:func:`candidate_sequences`), then keeps removing gates from
    the sequence found while that succeeds. Returns ``(pairs, params)`` of the shortest
    exact template found (residual below :data:`EXACT_TOL`), or ``None``.

    Args:
        target: The 8x8 unitary (Qiskit's qubit order).
        original_pairs: The pairs of the two-qubit gates of the circuit to beat, in order.
        seed: Seed of the random starts.
        budget: Optimizer starts allowed (shared across calls); unlimited if ``None``.
        starts: Random starts per template.
    """
    target = np.asarray(target, dtype=complex)
    found = None
    current = tuple(tuple(sorted(p)) for p in original_pairs)
    length = len(current) - 1
    while length >= 1:
        hit = None
        for seq in candidate_sequences(current, length):
            if budget is not None and budget.left <= 0:
                return found
            params, _ = instantiate(Template(seq), target, starts=starts, seed=seed, budget=budget)
            if params is not None:
                hit = (seq, params)
                break
        if hit is None:
            break
        found = hit
        current = hit[0]
        length -= 1
    return found


def template_circuit(pairs: Sequence[Pair], params: np.ndarray):
    """The Qiskit circuit (``u`` and ``rzz`` gates) of a template at ``params``."""
    from qiskit import QuantumCircuit  # pylint: disable=import-outside-toplevel

    qc = QuantumCircuit(3)
    x = [float(v) for v in params]
    for q in range(3):
        qc.u(*x[3 * q : 3 * q + 3], q)
    off = 9
    for a, b in pairs:
        qc.rzz(x[off], a, b)
        qc.u(*x[off + 1 : off + 4], a)
        qc.u(*x[off + 4 : off + 7], b)
        off += 7
    return qc

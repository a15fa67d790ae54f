"""Result containers and validation of IonQ result payloads."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .exceptions import IonQResponseError

_PROB_TOLERANCE = 1e-6


@dataclass
class CircuitResult:
    """The result of one circuit.

    Attributes:
        probabilities: outcome -> probability, outcome integers with qubit 0 as the least
            significant bit (IonQ's convention), in the order the API returned them.
        counts: outcome -> integer count summing to ``shots`` (see
            :mod:`qstore_qiskit.client.counts`), or ``None`` if not requested.
        shots: shots of the job.
        job_id: id of the (parent) job that ran the circuit.
        child_job_id: id of the child job for multicircuit jobs, else ``None``.
        num_qubits: qubit count of the circuit as submitted.
        circuit_index: index of the circuit in the caller's ``submit`` list.
        name: the circuit's ``name`` as handed in (if any).
        metadata: the job's metadata, plus the caller's ``metadata``.
        count_arrays: ``counts`` as arrays ``(outcomes, counts)`` when the result
            fetcher built them (the primitives expand shots from them directly), else
            ``None``.
        probability_arrays: ``probabilities`` as arrays ``(outcomes, probabilities)``
            when the result fetcher built them, else ``None``.

    A result made by :meth:`from_arrays` builds its ``probabilities`` and ``counts``
    dicts only when they are first read: the primitives never read them (a 1,000-circuit
    job of 8 qubits would otherwise build half a million dict entries for nothing).
    Assigning either attribute replaces its arrays too.
    """

    probabilities: dict[int, float]
    counts: dict[int, int] | None
    shots: int
    job_id: str
    child_job_id: str | None
    num_qubits: int
    circuit_index: int
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    # Set by from_arrays (the result fetcher); served through the properties below.
    count_arrays: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    probability_arrays: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def from_arrays(
        cls,
        probabilities: tuple[np.ndarray, np.ndarray],
        counts: tuple[np.ndarray, np.ndarray] | None,
        **fields: Any,
    ) -> "CircuitResult":
        """A result whose ``probabilities`` / ``counts`` dicts are built from
        ``(outcomes, values)`` arrays on first access (same keys, values and order as
        ``dict(zip(outcomes.tolist(), values.tolist()))``)."""
        # What ``cls(probabilities=None, counts=None, **fields)`` and assigning the two
        # arrays attributes leave in the instance dict, written at once: a job's results
        # are made by the thousand (checked against the dataclass path in the tests).
        if not fields.keys() <= _FROM_ARRAYS_FIELDS or not fields.keys() >= _REQUIRED_FIELDS:
            raise TypeError(f"from_arrays() takes the fields {sorted(_FROM_ARRAYS_FIELDS)} "
                            f"({sorted(_REQUIRED_FIELDS)} required), got {sorted(fields)}")
        return cls._of_arrays(
            probabilities, counts, fields["shots"], fields["job_id"], fields["child_job_id"], fields["num_qubits"],
            fields["circuit_index"], fields.get("name"), fields["metadata"] if "metadata" in fields else {},
        )

    @classmethod
    def _of_arrays(
        cls, probabilities: tuple[np.ndarray, np.ndarray], counts: tuple[np.ndarray, np.ndarray] | None, shots: int,
        job_id: str, child_job_id: str | None, num_qubits: int, circuit_index: int, name: str | None,
        metadata: dict[str, Any],
    ) -> "CircuitResult":
        """:meth:`from_arrays` with every field given in order, unchecked (the result
        fetcher makes a job's results by the thousand)."""
        result = cls.__new__(cls)
        result.__dict__.update(
            _probabilities=None, probability_arrays=probabilities, _counts=None, count_arrays=counts,
            shots=shots, job_id=job_id, child_job_id=child_job_id, num_qubits=num_qubits,
            circuit_index=circuit_index, name=name, metadata=metadata,
        )
        return result

    def get_counts(self) -> dict[str, int]:
        """Counts keyed by Qiskit bitstrings (qubit 0 rightmost)."""
        return {format(k, f"0{self.num_qubits}b"): v for k, v in (self.counts or {}).items()}

    def get_probabilities(self) -> dict[str, float]:
        """Probabilities keyed by Qiskit bitstrings (qubit 0 rightmost)."""
        return {format(k, f"0{self.num_qubits}b"): v for k, v in self.probabilities.items()}


def _lazy_map(name: str, arrays: str) -> property:
    """A property ``name`` stored in ``_<name>``, built from the ``arrays`` attribute on
    first read; assigning it drops the arrays (they would no longer agree)."""
    slot = "_" + name

    def get(self: CircuitResult) -> Any:
        value = self.__dict__.get(slot)
        if value is None:
            src = self.__dict__.get(arrays)
            if src is not None:
                value = dict(zip(src[0].tolist(), src[1].tolist()))
                self.__dict__[slot] = value
        return value

    def set_(self: CircuitResult, value: Any) -> None:
        self.__dict__[slot] = value
        self.__dict__[arrays] = None

    return property(get, set_)


def _arrays_attr(name: str) -> property:
    def get(self: CircuitResult) -> Any:
        return self.__dict__.get(name)

    def set_(self: CircuitResult, value: Any) -> None:
        self.__dict__[name] = value

    return property(get, set_)


#: The fields :meth:`CircuitResult.from_arrays` takes as keywords.
_REQUIRED_FIELDS = frozenset({"shots", "job_id", "child_job_id", "num_qubits", "circuit_index"})
_FROM_ARRAYS_FIELDS = _REQUIRED_FIELDS | {"name", "metadata"}

# Installed after @dataclass has read the annotations: __init__, __repr__ and __eq__ go
# through the properties, so a lazy result compares and prints like an eager one.
CircuitResult.probabilities = _lazy_map("probabilities", "probability_arrays")  # type: ignore[assignment]
CircuitResult.counts = _lazy_map("counts", "count_arrays")  # type: ignore[assignment]
CircuitResult.count_arrays = _arrays_attr("count_arrays")  # type: ignore[assignment]
CircuitResult.probability_arrays = _arrays_attr("probability_arrays")  # type: ignore[assignment]


def parse_histogram(raw: Any, num_qubits: int, where: str) -> dict[int, float]:
    """Validate one ``{"<int>": p}`` histogram and convert its keys to ``int``.

    Args:
        raw: the decoded JSON histogram.
        num_qubits: every outcome must be ``< 2**num_qubits``.
        where: context for error messages (job / child id).

    Raises:
        IonQResponseError: not a mapping, bad keys or values, outcomes out of range,
            probabilities not summing to 1.
    """
    if not isinstance(raw, Mapping) or not raw:
        raise IonQResponseError(f"{where}: expected a non-empty probability map, got {type(raw).__name__}")
    out: dict[int, float] = {}
    limit = 1 << num_qubits
    for key, value in raw.items():
        try:
            outcome = int(key)
        except (TypeError, ValueError):
            raise IonQResponseError(f"{where}: outcome {key!r} is not an integer") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise IonQResponseError(f"{where}: probability of {key!r} is not a number")
        if outcome < 0 or outcome >= limit:
            raise IonQResponseError(
                f"{where}: outcome {outcome} does not fit the circuit's {num_qubits} qubit(s) "
                "(wrong qubit count)"
            )
        if value < -_PROB_TOLERANCE:
            raise IonQResponseError(f"{where}: negative probability for {outcome}")
        out[outcome] = float(value)
    total = sum(out.values())
    if abs(total - 1.0) > 1e-3:
        raise IonQResponseError(f"{where}: probabilities sum to {total:.6f}, not 1")
    return out


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


_NUMBER_TYPES = frozenset({float, int})


def parse_histogram_arrays(raw: Any, num_qubits: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`parse_histogram` as arrays: ``(outcomes, probabilities)`` (``int64``,
    ``float64``, in the order the API returned them), with the same checks and errors.

    A well-formed histogram is converted and checked without a Python loop per entry
    (``int`` / ``type`` mapped in C, range and sign checks on arrays); anything the fast
    path does not accept outright goes through :func:`parse_histogram`, which names the
    problem.

    Raises:
        IonQResponseError: as :func:`parse_histogram`.
    """
    fast = _fast_arrays(raw, num_qubits) if isinstance(raw, dict) and raw else None
    if fast is not None:
        return fast
    out = parse_histogram(raw, num_qubits, where)  # raises naming the problem
    return (
        np.fromiter(out, dtype=np.int64, count=len(out)),
        np.fromiter(out.values(), dtype=np.float64, count=len(out)),
    )


def _fast_arrays(raw: dict, num_qubits: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The arrays of a histogram that passes every check of :func:`parse_histogram`,
    else ``None``."""
    n = len(raw)
    # bool is its own type (not int here); strings, None, lists ... are rejected.
    if not set(map(type, raw.values())) <= _NUMBER_TYPES:
        return None
    keys = _outcome_keys(raw)
    if keys is None:
        return None
    outcomes, low, high, unique = keys
    if low < 0 or (num_qubits < 63 and high >= (1 << num_qubits)) or not unique:
        return None
    try:
        probs = np.fromiter(raw.values(), dtype=np.float64, count=n)
    except OverflowError:  # an integer too large for a float
        return None
    if not np.isfinite(probs).all() or probs.min() < -_PROB_TOLERANCE:
        return None
    if abs(float(probs.sum()) - 1.0) > 1e-3:
        return None
    return outcomes, probs


# The outcome keys of a service's histograms repeat from circuit to circuit (the same
# support, in the same order, e.g. all 2**n outcomes of an n-qubit circuit): their
# integer array, range and uniqueness are computed once per key list and looked up by
# the tuple of keys (hashing strings that cache their hash), not re-parsed per circuit.
_keys_cache: dict[tuple, tuple[np.ndarray, int, int, bool]] = {}
_keys_lock = threading.Lock()
_KEYS_CACHE_SIZE = 32


def _outcome_keys(raw: dict, names: tuple | None = None) -> tuple[np.ndarray, int, int, bool] | None:
    """``(outcomes, min, max, all distinct)`` of a histogram's keys (``names``: its keys
    as a tuple, if the caller has it), or ``None`` if a key is not an integer that fits
    ``int64``."""
    if names is None:
        names = tuple(raw)
    got = _keys_cache.get(names)
    if got is not None:
        return got
    try:
        outcomes = np.fromiter(map(int, names), dtype=np.int64, count=len(names))
    except (TypeError, ValueError, OverflowError):
        return None
    outcomes.setflags(write=False)
    # Two spellings of one outcome ("1", "01") collapse into one entry in
    # parse_histogram's dict: not distinct, left to it.
    got = (outcomes, int(outcomes.min()), int(outcomes.max()), len(np.unique(outcomes)) == len(outcomes))
    with _keys_lock:
        if len(_keys_cache) >= _KEYS_CACHE_SIZE:
            _keys_cache.pop(next(iter(_keys_cache)))
        _keys_cache[names] = got
    return got


@dataclass
class HistogramGroup:
    """Histograms of one job that share their outcome keys (same keys, same order).

    Attributes:
        rows: positions of the histograms in the job's circuit list.
        outcomes: the shared outcomes (``int64``, read-only), qubit 0 least significant.
        probabilities: ``(len(rows), len(outcomes))`` ``float64``, one row per histogram.
    """

    rows: list[int]
    outcomes: np.ndarray
    probabilities: np.ndarray


def parse_histogram_groups(raws: list[Any], num_qubits: list[int], wheres: list[str]) -> list[HistogramGroup]:
    """:func:`parse_histogram_arrays` of a whole job's histograms: the same arrays, checks
    and errors, with the values of all histograms sharing a key list read into one
    matrix and checked at once (a 1,000-circuit job of 8 qubits: 256,000 values in one
    ``np.fromiter``, not 1,000 calls and 1,000 type scans).

    A histogram the matrix path cannot accept outright (empty, not a dict, a key list of
    its own that is not all integers, a bad value) becomes a group of one through
    :func:`parse_histogram_arrays`, which raises naming the problem; histograms are
    looked at in order, so the first bad one raises, as in a loop over them.

    Returns:
        Groups covering every position exactly once (in order of their first row).

    Raises:
        IonQResponseError: as :func:`parse_histogram`.
    """
    by_keys: dict[tuple, list[int]] = {}
    single: set[int] = set()
    # Consecutive histograms usually share their key list: compared with the previous
    # one as lists (no tuple to build and hash per histogram), looked up only on change.
    last_names: list | None = None
    last_rows: list[int] = []
    for i, raw in enumerate(raws):
        if type(raw) is dict and raw:
            key_list = list(raw)
            if key_list != last_names:
                last_names, last_rows = key_list, by_keys.setdefault(tuple(key_list), [])
            last_rows.append(i)
        else:
            single.add(i)
    groups: list[HistogramGroup] = []
    for names, rows in by_keys.items():
        keys = _outcome_keys(raws[rows[0]], names)
        if keys is None or keys[1] < 0 or not keys[3]:
            single.update(rows)
            continue
        outcomes, _, high, _ = keys
        fits = [i for i in rows if num_qubits[i] >= 63 or high < (1 << num_qubits[i])]
        single.update(set(rows) - set(fits))
        good = _matrix_rows(raws, fits, len(names))
        single.update(set(fits) - set(good[0]))
        if good[0]:
            groups.append(HistogramGroup(good[0], outcomes, good[1]))
    for i in sorted(single):  # raises at the first bad one (rows before it are fine)
        outcomes, probs = parse_histogram_arrays(raws[i], num_qubits[i], wheres[i])
        groups.append(HistogramGroup([i], outcomes, probs[None, :]))
    groups.sort(key=lambda g: g.rows[0])
    return groups


def _matrix_rows(raws: list[Any], rows: list[int], width: int) -> tuple[list[int], np.ndarray]:
    """``(rows that pass every check of parse_histogram, their values as a matrix)``."""
    if not rows:
        return [], np.empty((0, width))
    try:
        flat = np.fromiter(
            itertools.chain.from_iterable(raws[i].values() for i in rows), dtype=np.float64, count=len(rows) * width
        )
    except (TypeError, ValueError, OverflowError):  # a string, None, a huge int ...
        return [], np.empty((0, width))
    P = flat.reshape(len(rows), width)
    ok = np.isfinite(P).all(axis=1)
    ok &= P.min(axis=1, initial=0.0) >= -_PROB_TOLERANCE
    ok &= np.abs(P.sum(axis=1) - 1.0) <= 1e-3
    # ``np.fromiter`` reads True / False as 1.0 / 0.0; parse_histogram rejects bools, so
    # rows holding an exact 0 or 1 have their value types looked at (rare: dense
    # histograms seldom hold exact zeros, and a 1 is the whole distribution).
    for r in np.flatnonzero(((P == 0.0) | (P == 1.0)).any(axis=1) & ok):
        if any(type(v) is bool for v in raws[rows[r]].values()):
            ok[r] = False
    if ok.all():
        return rows, P
    return [rows[r] for r in np.flatnonzero(ok)], P[ok]


__all__ = ["CircuitResult", "HistogramGroup", "parse_histogram", "parse_histogram_arrays", "parse_histogram_groups"]

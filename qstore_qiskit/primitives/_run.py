"""What both primitives share: one backend submission for many PUBs, and bit decoding."""

from __future__ import annotations

import functools
import gc
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives.containers.bindings_array import BindingsArray


if TYPE_CHECKING:  # pragma: no cover
    from ..providers.backend import QStoreBackend
    from ..providers.job import QStoreJob


def parameter_binds(circuit: QuantumCircuit, values: BindingsArray) -> dict:
    """``backend.run``'s ``parameter_binds`` entry for one PUB: one column per parameter,
    the bindings array flattened in C order (``np.ndindex`` order of its shape)."""
    if not circuit.parameters:
        return {}
    table = values.as_array(circuit.parameters).reshape(-1, circuit.num_parameters)
    return {p: table[:, i] for i, p in enumerate(circuit.parameters)}


def submit(
    backend: "QStoreBackend",
    circuits: list[QuantumCircuit],
    binds: list[dict],
    shots: int,
    seed: int | None,
    run_options: dict[str, Any],
) -> "QStoreJob":
    """One ``backend.run`` call for every circuit and binding (one submission).

    ``backend.run`` binds each circuit's value table through its compiled template
    (``bind_many``) and hands all payloads to the batching submitter, which splits them
    at the service's circuit cap.
    """
    options = dict(run_options)
    options["shots"] = shots
    if seed is not None:
        options["sampler_seed"] = seed
    return backend.run(circuits, parameter_binds=binds, **options)


#: Circuits from which a run's payloads are worth a middle collection of their own.
_COLLECT_FROM = 100


def collect_run_garbage(circuits: int) -> None:
    """The middle-generation collection Python would make during the next run, made now
    (for a run of at least ``_COLLECT_FROM`` circuits).

    Call it once a run's jobs, payloads and results are released. A 1,000-set PUB keeps
    ~50,000 container objects (its payloads' gate lists and MS gates) alive from binding
    to delivery, and a run makes about ten young collections (one per large decode or
    batch of per-circuit records): so about once per run the interpreter's automatic
    middle-generation collection fell while they were alive and walked them all again
    (15-35 ms, more than a third of the collector's time). Made here, when they are
    freed, it walks only what survived the run's young collections (~1 ms) and starts
    the next run with the middle generation's counter at zero. Small runs (a QNN's
    forward pass) are left to the interpreter: their payloads would cost the automatic
    collection less than an extra one per run. A process that disabled the collector
    gets no collection.
    """
    if circuits >= _COLLECT_FROM and gc.isenabled():
        gc.collect(1)


def job_ids(pairs: list) -> list[str]:
    """IonQ (parent) job ids of ``(prepared, CircuitResult)`` pairs, in first-seen order."""
    seen: dict[str, None] = {}
    for _, result in pairs:
        seen.setdefault(result.job_id, None)
    return list(seen)


def shot_outcomes(
    prepared: Any, result: Any, shots: int, rng: np.random.Generator, shuffle: bool = True
) -> np.ndarray:
    """Per-shot outcomes over the circuit's clbits (``int64``, clbit 0 least significant).

    IonQ returns a histogram, not a shot list: the integer counts (sampled on the
    service's or the client's side from the probabilities, seeded by ``sampler_seed``)
    are expanded into ``shots`` outcomes and shuffled with ``rng`` (unless ``shuffle``
    is false: the caller then shuffles many rows at once), so that counts and shots
    always agree and the order is reproducible for a given seed.
    """
    keys, reps = count_arrays(result, shots, rng)
    outcomes = np.repeat(remap(keys, prepared.meas_map), reps)
    if shuffle:
        rng.shuffle(outcomes)
    return outcomes


def count_arrays(result: Any, shots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(qubit outcomes, counts)`` of one circuit result (``int64``, positive counts,
    in the service's order): the arrays the result fetcher built the counts from when it
    kept them (assigning ``counts`` drops them), else from the dict; without counts,
    drawn from the probabilities with ``rng``. Never builds the result's dicts."""
    arrays = getattr(result, "count_arrays", None)
    if arrays is not None:
        return arrays
    counts = result.counts
    if counts is None:  # probabilities only: sample them here, seeded
        prob_arrays = getattr(result, "probability_arrays", None)
        if prob_arrays is not None:
            keys, probs = prob_arrays[0], np.asarray(prob_arrays[1], dtype=float)
        else:
            keys = np.fromiter(result.probabilities.keys(), dtype=np.int64)
            probs = np.fromiter(result.probabilities.values(), dtype=float)
        drawn = rng.multinomial(shots, probs / probs.sum())
        return keys[drawn > 0], drawn[drawn > 0].astype(np.int64, copy=False)
    keys = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    reps = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    return keys, reps


def shot_table(pairs: list, shots: int, rng: np.random.Generator, dtype: Any = np.int64) -> np.ndarray:
    """Per-shot clbit outcomes of every ``(prepared, result)`` pair, one row each
    (``shape (len(pairs), shots)``, unshuffled): the rows of :func:`shot_outcomes` with
    ``shuffle=False``, expanded with one ``np.repeat`` for the whole table when every
    circuit reads the same measurement map.

    ``dtype``: the table's integer type (it must hold every clbit outcome); the outcomes
    are narrowed before they are expanded, so a table of 8 clbits is built as bytes.

    Raises:
        ValueError: a result's counts do not sum to ``shots``.
    """
    rows = max(len(pairs), 1)
    if not pairs:
        return np.empty((rows, shots), dtype=dtype)
    per = [count_arrays(result, shots, rng) for _, result in pairs]
    meas_map = pairs[0][0].meas_map
    if all(prepared.meas_map == meas_map for prepared, _ in pairs):
        keys = np.concatenate([k for k, _ in per])
        reps = np.concatenate([r for _, r in per])
        sums = np.add.reduceat(reps, np.cumsum([0] + [len(r) for _, r in per[:-1]])) if len(reps) else reps
        if len(sums) == len(per) and (sums == shots).all() and all(len(r) for _, r in per):
            return np.repeat(remap(keys, meas_map, dtype), reps).reshape(rows, shots)
    flat = np.empty((rows, shots), dtype=dtype)
    for k, ((prepared, _), (keys, reps)) in enumerate(zip(pairs, per)):
        flat[k] = np.repeat(remap(keys, prepared.meas_map), reps)  # raises if not `shots`
    return flat


def remap(qubit_outcomes: np.ndarray, meas_map: list[int | None], dtype: Any = None) -> np.ndarray:
    """Outcomes over qubits -> outcomes over clbits (vectorised
    :func:`~qstore_qiskit.providers.results.clbit_counts`: each clbit reads the qubit
    measured into it; clbits never measured read 0), as ``dtype`` if given (it must hold
    every clbit outcome)."""
    table = _remap_table(tuple(meas_map), None if dtype is None else np.dtype(dtype).str)
    if table is not None:
        # One pass, straight into the narrow type: "wrap" takes index mod len(table),
        # the same as masking the unmeasured high qubits off (len is a power of two).
        return np.take(table, qubit_outcomes, mode="wrap")
    out = np.zeros_like(qubit_outcomes)
    for clbit, qubit in enumerate(meas_map):
        if qubit is not None:
            out |= ((qubit_outcomes >> qubit) & 1) << clbit
    return out if dtype is None else out.astype(dtype, copy=False)


@functools.lru_cache(maxsize=64)
def _remap_table(meas_map: tuple, dtype: str | None = None) -> np.ndarray | None:
    """A lookup table over every qubit outcome (of ``dtype``, default ``int64``), when the
    measured qubits are few (<= 16)."""
    width = max((q + 1 for q in meas_map if q is not None), default=0)
    if width > 16:
        return None
    table = np.zeros(1 << width, dtype=np.int64)
    every = np.arange(1 << width, dtype=np.int64)
    for clbit, qubit in enumerate(meas_map):
        if qubit is not None:
            table |= ((every >> qubit) & 1) << clbit
    if dtype is not None:
        table = table.astype(dtype)
    table.setflags(write=False)  # shared by every caller (lru_cache)
    return table


def pack_bits(outcomes: np.ndarray, bits: list[int]) -> np.ndarray:
    """The clbits ``bits`` (register order) of each outcome (any shape) as ``BitArray``
    bytes (big endian, one more trailing axis)."""
    num_bytes = max((len(bits) + 7) // 8, 1)
    if bits and bits == list(range(bits[0], bits[0] + len(bits))):  # the usual register
        values = (outcomes >> bits[0]) & ((1 << len(bits)) - 1) if bits[0] or len(bits) < 64 else outcomes
    else:
        values = np.zeros_like(outcomes)
        for j, b in enumerate(bits):
            values |= ((outcomes >> b) & 1) << j
    if num_bytes <= 8:
        # The big-endian bytes of each value, its leading zero bytes dropped (unsigned
        # values as wide as needed are read in their own width: bytes stay bytes).
        size = values.dtype.itemsize if values.dtype.kind == "u" and values.dtype.itemsize >= num_bytes else 8
        wide = values.astype(f">u{size}", copy=False).view(np.uint8).reshape(values.shape + (size,))
        return np.ascontiguousarray(wide[..., size - num_bytes :])
    shifts = 8 * np.arange(num_bytes - 1, -1, -1, dtype=np.int64)
    return ((values[..., None] >> shifts) & 0xFF).astype(np.uint8)

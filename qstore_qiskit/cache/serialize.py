"""The on-disk format of a compiled template: versioned, schema-checked JSON with raw arrays.

A stored template is its :class:`~qstore_qiskit.cache.builder.TemplateSpec` (the laid-out
slot forms and emission plan the compiler's output reduced to) plus a few labels. The
spec's numbers are numpy arrays; the document carries them as base64 of their
little-endian bytes (fixed dtype per field), so loading is a JSON parse of a small header
plus a few :func:`numpy.frombuffer` calls, with no Python object per slot or term, and
every IEEE double round-trips exactly. Loading runs the same
:func:`~qstore_qiskit.cache.builder.bind_tables` step as a fresh compile, so a loaded
template binds bit-identically.

Safety: the document is plain JSON parsed by :func:`json.loads` and arrays of fixed
numeric dtypes; nothing is unpickled, imported, evaluated or looked up by name, and no
code is generated from it (a loaded template binds with the data-driven emitter,
:func:`~qstore_qiskit.cache.emitter.make_data_emitter`; code is generated only later, from
the checked plan, if the template is bound often). :func:`loads` checks every field's
type and range before anything is built from it, vectorised: gate kinds come from a fixed
set, qubit and slot indices are within bounds, numbers are finite, the slot layout is
the one :func:`~qstore_qiskit.cache.builder.order_slots` produces (derived from the gate
kinds, not stored), sparse terms are sorted and unique, and the labels match what the caller expects (format version,
key, device, ...). Anything else raises :class:`FormatError`; the cache then recompiles.

Templates with non-affine parameter expressions (evaluated per binding by Qiskit) or a
layout are not stored (:func:`dumps` returns ``None``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np

from .builder import PlanEntry, TemplateSpec
from .errors import QStoreCacheError

__all__ = ["FORMAT_VERSION", "FormatError", "dumps", "loads"]

#: Version of the stored document; bump on any change of its meaning.
#: 2: numbers as base64 arrays (1 was per-slot JSON lists).
FORMAT_VERSION = 2
_FORMAT_NAME = "qstore-compiled-template"
#: Largest document accepted (a 25-qubit, 10k-gate template is well under 10 MB).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_KINDS = ("gpi", "gpi2", "ms", "zz")
_KIND_CODE = {k: i for i, k in enumerate(_KINDS)}
#: kind code -> (qubits, slots)
#: Stored arrays: name -> (dtype, columns per row, or 0 for a flat array).
_ARRAYS = {
    "plan_kind": ("|u1", 0),
    "plan_qubits": ("<i4", 2),
    "const": ("<f8", 0),
    "term_slot": ("<i4", 0),
    "term_col": ("<i4", 0),
    "term_weight": ("<f8", 0),
    "flip_zz": ("<i4", 0),
    "flip_slot": ("<i4", 0),
    "flip_value": ("<f8", 0),
}
_LIMIT = 1 << 30  # any count or index (int32 arrays)
#: name -> (stored dtype, columns, bytes per row, dtype in memory)
_DECODE = {
    name: (np.dtype(dtype), columns, np.dtype(dtype).itemsize * max(columns, 1),
           np.dtype(np.intp if dtype[1] in "iu" else np.float64))
    for name, (dtype, columns) in _ARRAYS.items()
}


class FormatError(QStoreCacheError):
    """A stored template is corrupt, foreign or of another version."""


def _encode(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def dumps(spec: TemplateSpec, labels: dict[str, Any]) -> bytes | None:
    """Serialise ``spec`` with ``labels`` (JSON-able scalars), or ``None`` if not storable."""
    if spec.extra or spec.layout is not None:
        return None
    kinds = [_KIND_CODE[k] for k, _, _ in spec.plan]
    qubits = [[*qs, -1][:2] for _, qs, _ in spec.plan]  # one-qubit gates: -1 second
    # The plan's slot indices are not stored: order_slots' layout derives them from the
    # gate kinds alone (see _plan); a spec that does not follow it is not stored.
    try:
        expected = _plan(kinds, qubits, spec.num_qubits, spec.n_ms, spec.n_phase)
    except FormatError:
        return None
    if [tuple(ss) for _, _, ss in spec.plan] != [ss for _, _, ss in expected]:
        return None
    arrays: dict[str, np.ndarray] = {
        "plan_kind": np.array(kinds, dtype=np.uint8),
        "plan_qubits": np.array(qubits, dtype=np.int64).reshape(-1, 2),
        "const": spec.const,
        "term_slot": spec.terms[0],
        "term_col": spec.terms[1],
        "term_weight": spec.terms[2],
        "flip_zz": spec.flips[0],
        "flip_slot": spec.flips[1],
        "flip_value": spec.flips[2],
    }
    if max((int(np.abs(a).max()) for a in arrays.values() if a.size and a.dtype.kind == "i"), default=0) >= _LIMIT:
        return None  # not representable in the int32 arrays (never for a real device)
    doc = {
        "format": _FORMAT_NAME,
        "version": FORMAT_VERSION,
        "labels": labels,
        "num_qubits": spec.num_qubits,
        "num_clbits": spec.num_clbits,
        "body_qubits": spec.body_qubits,
        "meas_map": spec.meas_map,
        "n_par": spec.n_par,
        "native_size": spec.native_size,
        "arrays": {name: _encode(arrays[name], dtype) for name, (dtype, _) in _ARRAYS.items()},
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def _plan(kinds: list[int], qubits: list[list[int]], nq: int, n_ms: int, n_phase: int) -> list[PlanEntry]:
    """The checked plan, with every entry's slot indices under order_slots' layout.

    The slots follow from the gate kinds alone: layout
    ``[ms phi0 | ms phi1 | gpi/gpi2 phases | ms angles | zz angles | frames]``; the
    ``k``-th MS of the plan has slots ``(k, n_ms + k, n_phase + k)``, the ``k``-th ZZ
    ``n_phase + n_ms + k``, the ``j``-th GPI/GPI2 ``2 n_ms + j``.

    Raises:
        FormatError: a qubit out of range, a two-qubit gate on one qubit, or a second
            qubit on a one-qubit gate.
    """
    out: list[PlanEntry] = []
    append = out.append
    k_ms, k_zz, j = 0, n_phase + n_ms, 2 * n_ms
    for k, (q0, q1) in zip(kinds, qubits):
        if not 0 <= q0 < nq:
            raise FormatError("stored template: bad qubit in the plan")
        if k >= 2:
            if not 0 <= q1 < nq or q1 == q0:
                raise FormatError("stored template: bad qubit in the plan")
            if k == 2:
                append(("ms", (q0, q1), (k_ms, n_ms + k_ms, n_phase + k_ms)))
                k_ms += 1
            else:
                append(("zz", (q0, q1), (k_zz,)))
                k_zz += 1
        else:
            if q1 != -1:
                raise FormatError("stored template: bad qubit in the plan")
            append((_KINDS[k], (q0,), (j,)))
            j += 1
    return out


def _int(value: Any, what: str, lo: int = 0, hi: int = _LIMIT) -> int:
    if type(value) is not int or not lo <= value < hi:
        raise FormatError(f"stored template: bad {what}")
    return value


def _arrays(raw: Any) -> dict[str, np.ndarray]:
    """Decode and shape-check the stored arrays (values are checked by the caller)."""
    if type(raw) is not dict or set(raw) != set(_ARRAYS):
        raise FormatError("stored template: bad arrays")
    out: dict[str, np.ndarray] = {}
    for name, (dtype, columns, row_bytes, native) in _DECODE.items():
        text = raw[name]
        if type(text) is not str:
            raise FormatError(f"stored template: bad array {name}")
        try:
            data = binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):
            raise FormatError(f"stored template: bad array {name}") from None
        if len(data) % row_bytes:
            raise FormatError(f"stored template: bad array {name}")
        array = np.frombuffer(data, dtype=dtype)
        if columns:
            array = array.reshape(-1, columns)
        # Native types for the bind kernel (indices as intp, numbers as float64; a
        # little-endian float64 array is used as it is, read-only).
        out[name] = array.astype(native, copy=False)
    return out


def _strictly_increasing(a: np.ndarray, b: np.ndarray, base: int) -> bool:
    """Whether the pairs ``(a, b)`` (``0 <= b < base``) are sorted and unique."""
    key = a.astype(np.int64) * base + b
    return bool(np.all(key[1:] > key[:-1]))


def loads(data: bytes, expect: dict[str, Any]) -> tuple[TemplateSpec, dict[str, Any]]:
    """Parse and check a stored template.

    Args:
        data: the document.
        expect: labels that must match exactly (e.g. the entry key and device).

    Returns:
        ``(spec, labels)``.

    Raises:
        FormatError: on anything unexpected.
    """
    if type(data) is not bytes or len(data) > MAX_DOCUMENT_BYTES:
        raise FormatError("stored template: not a document of acceptable size")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(f"stored template: not JSON ({exc.__class__.__name__})") from None
    if type(doc) is not dict or doc.get("format") != _FORMAT_NAME:
        raise FormatError("stored template: not a qstore template document")
    if doc.get("version") != FORMAT_VERSION:
        raise FormatError(f"stored template: format version {doc.get('version')!r}, expected {FORMAT_VERSION}")
    labels = doc.get("labels")
    if type(labels) is not dict or any(labels.get(k) != v for k, v in expect.items()):
        raise FormatError("stored template: labels do not match the requested entry")
    try:
        return _spec_from(doc), labels
    except FormatError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise FormatError(f"stored template: malformed ({exc.__class__.__name__})") from None


def _spec_from(doc: dict[str, Any]) -> TemplateSpec:
    nq = _int(doc["num_qubits"], "num_qubits", 0, 1 << 16)
    nc = _int(doc["num_clbits"], "num_clbits", 0, 1 << 20)
    body_qubits = _int(doc["body_qubits"], "body_qubits", 0, 1 << 16)
    meas_map = doc["meas_map"]
    if type(meas_map) is not list or len(meas_map) != nc:
        raise FormatError("stored template: bad meas_map")
    for m in meas_map:
        if m is not None and (type(m) is not int or not 0 <= m < nq):
            raise FormatError("stored template: bad meas_map")
    n_par = _int(doc["n_par"], "n_par", 0, 1 << 24)
    arr = _arrays(doc["arrays"])
    kind, qubits, const = arr["plan_kind"], arr["plan_qubits"], arr["const"]
    n, n_slots = kind.size, const.size
    kinds = kind.tolist()
    if qubits.shape[0] != n or (n and max(kinds) >= len(_KINDS)):
        raise FormatError("stored template: bad plan")
    n_ms, n_zz = kinds.count(2), kinds.count(3)
    n_phase = n + n_ms - n_zz  # 2 per MS, 1 per GPI/GPI2
    if n_phase + n_ms + n_zz + nq != n_slots:
        raise FormatError("stored template: inconsistent slot layout")
    plan = _plan(kinds, qubits.tolist(), nq, n_ms, n_phase)
    t_slot, t_col, t_w = arr["term_slot"], arr["term_col"], arr["term_weight"]
    f_zz, f_slot, f_val = arr["flip_zz"], arr["flip_slot"], arr["flip_value"]
    if not (t_slot.size == t_col.size == t_w.size and f_zz.size == f_slot.size == f_val.size):
        raise FormatError("stored template: bad sparse terms")
    # Pairs sorted and unique (checked with the inner index in range), so the outer
    # index's range is its first and last element.
    if t_slot.size and (
        t_col.min() < 0 or t_col.max() >= n_par
        or not _strictly_increasing(t_slot, t_col, n_par)
        or t_slot[0] < 0 or t_slot[-1] >= n_slots
    ):
        raise FormatError("stored template: bad slot term")
    if f_zz.size and (
        f_slot.min() < 0 or f_slot.max() >= n_slots
        or not _strictly_increasing(f_zz, f_slot, n_slots)
        or f_zz[0] < 0 or f_zz[-1] >= n_zz
        or np.any(f_val * 2 != np.round(f_val * 2))
    ):
        raise FormatError("stored template: bad flip")
    # NaN and inf propagate into a sum; a non-finite sum of finite values (overflow) is
    # rejected too (the entry is recompiled).
    if not np.isfinite(const.sum() + t_w.sum() + f_val.sum()):
        raise FormatError("stored template: non-finite slot value")
    return TemplateSpec(
        num_qubits=nq,
        num_clbits=nc,
        body_qubits=body_qubits,
        meas_map=list(meas_map),
        n_par=n_par,
        extra=[],
        const=const,
        terms=(t_slot, t_col, t_w),
        plan=plan,
        final_slots=list(range(n_slots - nq, n_slots)),
        n_ms=n_ms,
        n_zz=n_zz,
        n_phase=n_phase,
        flips=(f_zz, f_slot, f_val),
        native_size=_int(doc["native_size"], "native_size", 0, 1 << 40),
    )

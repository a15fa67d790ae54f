"""The on-disk format of a compiled template: versioned, schema-checked JSON.

A stored template is its :class:`~qstore_qiskit.cache.builder.TemplateSpec` (the laid-out
slot forms and emission plan the compiler's output reduced to) plus a few labels. Loading
runs the same :func:`~qstore_qiskit.cache.builder.bind_tables` step as a fresh compile, so
a loaded template binds bit-identically (JSON writes floats with ``repr``, which
round-trips every IEEE double exactly).

Safety: the document is plain JSON parsed by :func:`json.loads`; nothing is unpickled,
imported, evaluated or looked up by name. :func:`loads` checks every field's type and
range before anything is built from it: gate kinds come from a fixed set, qubit and slot
indices are Python ``int`` within bounds, numbers are finite, the slot layout is a
permutation, and the labels match what the caller expects (format version, key,
device, ...). Anything else raises :class:`FormatError`; the cache then recompiles. This
matters because the emitter generates Python source from the plan
(:func:`~qstore_qiskit.cache.emitter.make_emitter`): only checked integers and the fixed
gate kinds ever reach it.

Templates with non-affine parameter expressions (evaluated per binding by Qiskit) or a
layout are not stored (:func:`dumps` returns ``None``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from .builder import TemplateSpec, _Affine
from .errors import QStoreCacheError

__all__ = ["FORMAT_VERSION", "FormatError", "dumps", "loads"]

#: Version of the stored document; bump on any change of its meaning.
FORMAT_VERSION = 1
_FORMAT_NAME = "qstore-compiled-template"
#: Largest document accepted (a 25-qubit, 10k-gate template is well under 10 MB).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_ARITY = {"gpi": (1, 1), "gpi2": (1, 1), "ms": (2, 3), "zz": (2, 1)}


class FormatError(QStoreCacheError):
    """A stored template is corrupt, foreign or of another version."""


def dumps(spec: TemplateSpec, labels: dict[str, Any]) -> bytes | None:
    """Serialise ``spec`` with ``labels`` (JSON-able scalars), or ``None`` if not storable."""
    if spec.extra or spec.layout is not None:
        return None
    doc = {
        "format": _FORMAT_NAME,
        "version": FORMAT_VERSION,
        "labels": labels,
        "num_qubits": spec.num_qubits,
        "num_clbits": spec.num_clbits,
        "body_qubits": spec.body_qubits,
        "meas_map": spec.meas_map,
        "n_par": spec.n_par,
        "plan": [[kind, list(qs), list(ss)] for kind, qs, ss in spec.plan],
        "slots": [[aff.const, sorted([c, v] for c, v in aff.coef.items())] for aff in spec.slots],
        "final_slots": spec.final_slots,
        "n_ms": spec.n_ms,
        "n_zz": spec.n_zz,
        "n_phase": spec.n_phase,
        "flips": [sorted([s, v] for s, v in row.items()) for row in spec.flips],
        "native_size": spec.native_size,
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def _int(value: Any, what: str, lo: int = 0, hi: int | None = None) -> int:
    if type(value) is not int or value < lo or (hi is not None and value >= hi):
        raise FormatError(f"stored template: bad {what}")
    return value


def _num(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise FormatError(f"stored template: bad {what}")
    return float(value)


def _list(value: Any, what: str, length: int | None = None) -> list:
    if type(value) is not list or (length is not None and len(value) != length):
        raise FormatError(f"stored template: bad {what}")
    return value


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
    meas_map = [
        None if m is None else _int(m, "meas_map", 0, nq) for m in _list(doc["meas_map"], "meas_map", nc)
    ]
    n_par = _int(doc["n_par"], "n_par", 0, 1 << 24)
    raw_slots = _list(doc["slots"], "slots")
    n_slots = len(raw_slots)
    slots = []
    numbers: list[float] = []  # checked for finiteness in one go below
    # The hot loop of a load (a slot per emitted angle): checks written out inline.
    for item in raw_slots:
        if type(item) is not list or len(item) != 2 or type(item[1]) is not list:
            raise FormatError("stored template: bad slot")
        const, terms = item
        coef: dict[int, float] = {}
        for term in terms:
            if type(term) is not list or len(term) != 2:
                raise FormatError("stored template: bad slot term")
            c, v = term
            if type(c) is not int or not 0 <= c < n_par or c in coef or type(v) not in (float, int):
                raise FormatError("stored template: bad slot term")
            coef[c] = v = float(v)
            numbers.append(v)
        if type(const) not in (float, int):
            raise FormatError("stored template: bad slot constant")
        numbers.append(const)
        slots.append(_Affine(coef, float(const)))
    if not math.isfinite(math.fsum(map(abs, numbers))):
        raise FormatError("stored template: non-finite slot value")
    plan = []
    emitted: list[int] = []
    for entry in _list(doc["plan"], "plan"):
        kind, qs, ss = _list(entry, "plan entry", 3)
        if type(kind) is not str or kind not in _ARITY:
            raise FormatError("stored template: unknown gate kind")
        n_q, n_s = _ARITY[kind]
        if type(qs) is not list or len(qs) != n_q or type(ss) is not list or len(ss) != n_s:
            raise FormatError("stored template: bad plan entry")
        for x in qs:
            if type(x) is not int or not 0 <= x < nq:
                raise FormatError("stored template: bad qubit")
        for x in ss:
            if type(x) is not int or not 0 <= x < n_slots:
                raise FormatError("stored template: bad slot index")
        qs, ss = tuple(qs), tuple(ss)
        if n_q == 2 and qs[0] == qs[1]:
            raise FormatError("stored template: repeated qubit")
        emitted.extend(ss)
        plan.append((kind, qs, ss))
    final_slots = [_int(s, "final slot", 0, n_slots) for s in _list(doc["final_slots"], "final_slots", nq)]
    n_ms = _int(doc["n_ms"], "n_ms", 0, n_slots + 1)
    n_zz = _int(doc["n_zz"], "n_zz", 0, n_slots + 1)
    n_phase = _int(doc["n_phase"], "n_phase", 0, n_slots + 1)
    counts = {k: sum(1 for e in plan if e[0] == k) for k in _ARITY}
    if (
        n_ms != counts["ms"]
        or n_zz != counts["zz"]
        or n_phase != 2 * n_ms + counts["gpi"] + counts["gpi2"]
        or sorted(emitted + final_slots) != list(range(n_slots))
        or n_phase + n_ms + n_zz + nq != n_slots
        or final_slots != list(range(n_slots - nq, n_slots))
    ):
        raise FormatError("stored template: inconsistent slot layout")
    # The bind kernel reads the blocks by position (MS k and ZZ k by their order in the
    # plan, see builder.order_slots): check every slot is exactly where it must be.
    k_ms = k_zz = 0
    for kind, _, ss in plan:
        if kind == "ms":
            if ss != (k_ms, n_ms + k_ms, n_phase + k_ms):
                raise FormatError("stored template: MS slots out of place")
            k_ms += 1
        elif kind == "zz":
            if ss != (n_phase + n_ms + k_zz,):
                raise FormatError("stored template: ZZ slot out of place")
            k_zz += 1
        elif not 2 * n_ms <= ss[0] < n_phase:
            raise FormatError("stored template: phase slot out of place")
    flips = []
    for row in _list(doc["flips"], "flips", n_zz):
        out: dict[int, float] = {}
        for term in _list(row, "flip row"):
            s, v = _list(term, "flip", 2)
            s = _int(s, "flip slot", 0, n_slots)
            v = _num(v, "flip value")
            if s in out or v * 2 != round(v * 2):
                raise FormatError("stored template: bad flip")
            out[s] = v
        flips.append(out)
    return TemplateSpec(
        num_qubits=nq,
        num_clbits=nc,
        body_qubits=body_qubits,
        meas_map=meas_map,
        n_par=n_par,
        extra=[],
        slots=slots,
        plan=plan,
        final_slots=final_slots,
        n_ms=n_ms,
        n_zz=n_zz,
        n_phase=n_phase,
        flips=flips,
        native_size=_int(doc["native_size"], "native_size", 0, 1 << 40),
    )

"""What the backend prepares for a job, and how a job is named on the service.

Data flows one way through :mod:`qstore_qiskit.providers`::

    provider -> backend -> (prepared, options, binds, cost, session, service)
                        -> job -> results -> prepared

The job gets everything it needs from the backend as data (:class:`PreparedCircuit`,
callbacks), never the backend class.

Job ids
-------
A :class:`~qstore_qiskit.providers.QStoreJob`'s :meth:`job_id` is the IonQ job id when
its circuits ran as exactly one IonQ job (the usual case for up to ``max_circuits``
circuits and no concurrent ``run`` calls). When the submitter split the circuits over
several jobs, or coalesced them with another ``run`` call's into shared jobs, the id is a
composite: IonQ job ids joined by ``+``, each followed by ``[positions]`` (ranges
``a-b`` and single positions, comma-separated, zero-based in that job's circuit order)
when only some of that job's circuits are this run's::

    0c2f...e1            one IonQ job, all of it
    0c2f...e1+7a90...44  two IonQ jobs, all of both
    0c2f...e1[0-49]+7a90...44[0-9,12]

``retrieve_job`` accepts both forms, in this process or a new one.

Result layout
-------------
Each job carries a compact description of how to read its results back into Qiskit
results (classical registers and which qubit each clbit measured), in the job metadata
key ``qstore_layout``; ``retrieve_job`` in a new process decodes with it. It is the same
string for every run whose circuits share one layout (e.g. all bindings of one ansatz),
so such runs still coalesce into shared jobs.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

#: Job metadata key of the result layout; longer layouts than LAYOUT_LIMIT are not stored.
LAYOUT_KEY = "qstore_layout"
LAYOUT_LIMIT = 4000


@dataclass
class PreparedCircuit:
    """One circuit ready to send, plus what is needed to decode its result."""

    name: str
    body: dict[str, Any]
    gateset: str
    meas_map: list[int | None]
    payload_qubits: int
    creg_sizes: list
    clbit_labels: list
    metadata: dict = field(default_factory=dict)
    native_gate_counts: dict = field(default_factory=dict)
    estimated_fidelity: float | None = None
    input_gates: int = 0


#: ``json.dumps(obj, separators=(",", ":"))`` with its encoder built once (``json.dumps``
#: builds one per call when given any option).
_compact = json.JSONEncoder(separators=(",", ":")).encode


def encode_layout(prepared: list[PreparedCircuit]) -> str | None:
    """The ``qstore_layout`` metadata value for ``prepared`` (``None`` if too long)."""
    layouts: list[list] = []
    index: dict[str, int] = {}
    per_circuit: list[int] = []
    # The bindings of one template share their meas_map and creg_sizes lists: their key
    # is serialized once per pair of list objects (the objects stay alive in
    # ``prepared`` while this runs, so their ids are not reused meanwhile).
    by_id: dict[tuple[int, int], str] = {}
    for p in prepared:
        layout = [p.meas_map, p.creg_sizes]
        ids = (id(p.meas_map), id(p.creg_sizes))
        key = by_id.get(ids)
        if key is None:
            key = by_id[ids] = _compact(layout)
        if key not in index:
            index[key] = len(layouts)
            layouts.append(layout)
        per_circuit.append(index[key])
    # json.dumps({"l": layouts, "i": per_circuit}, separators=(",", ":")), assembled from
    # the layouts' texts above instead of serializing them a second time.
    raw = '{"l":[' + ",".join(index) + "]"
    if len(layouts) > 1:
        raw += ',"i":' + _compact(per_circuit)
    return _encoded(raw + "}")


@functools.lru_cache(maxsize=256)
def _encoded(raw: str) -> str | None:
    # Memoised: most runs repeat a few layouts, and setting up zlib at level 9 costs
    # about as much as binding a small circuit (0.2-0.7 ms).
    text = base64.b64encode(zlib.compress(raw.encode(), 9)).decode("ascii")
    return text if len(text) <= LAYOUT_LIMIT else None


def decode_layout(text: Any, position: int) -> tuple[list[int | None], list] | None:
    """``(meas_map, creg_sizes)`` of the circuit at ``position`` of its run, if recorded."""
    if not isinstance(text, str) or not text:
        return None
    try:
        doc = json.loads(zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True)))
        layouts = doc["l"]
        which = doc["i"][position] if "i" in doc else 0
        meas_map, creg_sizes = layouts[which]
        return list(meas_map), list(creg_sizes)
    except (ValueError, KeyError, IndexError, TypeError, zlib.error):
        return None  # not ours or damaged: fall back to all qubits


def _ranges(positions: list[int]) -> str:
    parts: list[str] = []
    start = prev = positions[0]
    for p in positions[1:] + [None]:  # type: ignore[list-item]
        if p is not None and p == prev + 1:
            prev = p
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    return ",".join(parts)


def compose_job_id(parts: list[tuple[str, list[int] | None]]) -> str:
    """``[(ionq_job_id, positions or None for all)]`` -> a job id (see the module doc)."""
    return "+".join(jid if pos is None else f"{jid}[{_ranges(sorted(pos))}]" for jid, pos in parts)


_PART = re.compile(r"^([A-Za-z0-9_.:\-]{1,128})(?:\[([0-9,\-]{1,100000})\])?$")


def parse_job_id(job_id: Any) -> list[tuple[str, list[int] | None]]:
    """Inverse of :func:`compose_job_id`; ``ValueError`` naming the problem otherwise."""
    if not isinstance(job_id, str) or not job_id.strip():
        raise ValueError(f"job id must be a non-empty string, got {job_id!r}")
    out: list[tuple[str, list[int] | None]] = []
    for part in job_id.strip().split("+"):
        m = _PART.match(part)
        if m is None:
            raise ValueError(
                f"malformed job id {job_id!r}: expected an IonQ job id or ids joined by '+', "
                "each optionally followed by [positions]"
            )
        positions: list[int] | None = None
        if m.group(2) is not None:
            positions = []
            for chunk in m.group(2).split(","):
                a, sep, b = chunk.partition("-")
                if not a.isdigit() or (sep and not b.isdigit()):
                    raise ValueError(f"malformed positions {m.group(2)!r} in job id {job_id!r}")
                lo, hi = int(a), int(b) if sep else int(a)
                if hi < lo or hi - lo > 1_000_000:
                    raise ValueError(f"bad position range {chunk!r} in job id {job_id!r}")
                positions.extend(range(lo, hi + 1))
        out.append((m.group(1), positions))
    return out

"""The submission journal: an append-only JSON-lines file for crash recovery.

One line per event, written with one ``write()`` on an ``O_APPEND`` descriptor and
``fsync``-ed, so records never interleave and a crash loses at most the line being
written (a torn last line is skipped when reading). Events, keyed by the client-made
``submission_id`` of a job:

* ``submit``: the job is formed (backend, shots, name, metadata, the caller's
  ``[request_tag, circuit_index]`` pairs and the circuit names);
* ``created``: the service assigned ``job_id``;
* ``delivered``: every caller got its results (or its error), or :meth:`recover
  <qstore_qiskit.client.BatchSubmitter.recover>` / ``retrieve`` handed them back;
* ``abandoned``: the job was never sent, or was re-split (413) or isolated (400).

The file is created ``0600``: it names jobs and circuits (never the API key).
"""

from __future__ import annotations

import json
import os
import threading
import time

__all__ = ["Journal", "read_pending"]


class Journal:
    """Appends events to a journal file (thread-safe; a no-op without a path).

    Args:
        path: the journal file, created ``0600`` on first write; ``None`` disables it.
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = os.fspath(path) if path else None
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self.path is not None

    def append(self, record: dict, path: str | None = None) -> None:
        """Append ``record`` (plus a ``time`` stamp) to ``path`` or this journal's file."""
        path = path or self.path
        if not path:
            return
        line = (json.dumps({"time": time.time(), **record}, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            # One write() of one line on an O_APPEND file: records never interleave.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)


def read_pending(path: str) -> dict[str, dict]:
    """Submissions of a journal that were never delivered.

    Returns:
        ``{submission_id: {"job_id", "name", "metadata", "circuits", "names"}}``; ``job_id``
        is ``None`` when the process died before the create was recorded.
    """
    entries: dict[str, dict] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a torn last line after a crash
                continue
            sid = rec.get("submission_id") if isinstance(rec, dict) else None
            if not sid:
                continue
            entry = entries.setdefault(sid, {"job_id": None, "delivered": False})
            if rec.get("event") == "submit":
                entry.update(name=rec.get("name"), metadata=rec.get("metadata"), circuits=rec.get("circuits"),
                             names=rec.get("names"))
            elif rec.get("event") == "created":
                entry["job_id"] = rec.get("job_id")
            elif rec.get("event") in ("delivered", "abandoned"):
                entry["delivered"] = True
    pending = {sid: e for sid, e in entries.items() if not e["delivered"]}
    for entry in pending.values():
        entry.pop("delivered")
    return pending

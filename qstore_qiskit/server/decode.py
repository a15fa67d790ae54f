"""JSON decoding, and decoding + validating large job bodies in a worker process.

A JSON decoder is one C call that holds the GIL for its whole run: a 7 MB body takes
about 100 ms, and every other request waits that long. Bodies up to
``ServerConfig.process_decode_bytes`` are small enough to decode in the server process.
A job body beyond it goes to :class:`BodyDecoder`'s worker process, which decodes it
*and* validates it (:func:`~.job_requests.parse_job_request`), so the server process
never holds the decoded document. A malformed or refused body comes back as the error
to answer; a valid one as the validated job with its gate list cut into pickled chunks
of :data:`CHUNK_GATES` gates, which the server unpickles one chunk at a time in a thread
(each ``pickle.loads`` is short, so the event loop gets the GIL between them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import io
import json
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from . import gates as _gates
from .config import ServerConfig
from .errors import ApiError, bad_request
from .job_requests import JobSpec, parse_job_request

try:  # orjson decodes ~3x faster than the standard library (the stall is shorter).
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson = None

# Gates per pickled chunk returned by the worker: unpickling one takes a few ms.
CHUNK_GATES = 20_000


def decode_json(raw: bytes) -> Any:
    """Decode a JSON body.

    Raises:
        ApiError: 400 naming the problem for a malformed body.
    """
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except ValueError:
            pass  # the standard library decides: it names the error, or decodes NaN,
            # Infinity and big integers so that the validator names the field
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise bad_request("malformed JSON body: nested too deeply") from None


# The gate recipes refer to the module-level matrices of .gates by identity (the Aer
# path maps them to Qiskit's standard gates with id()): they cross the process boundary
# by name, so the server gets its own objects back, not copies.
_FIXED_BY_NAME: dict[str, np.ndarray] = {
    name: value for name, value in vars(_gates).items()
    if isinstance(value, np.ndarray) and name.isupper()
}
_FIXED_BY_ID: dict[int, str] = {id(v): k for k, v in _FIXED_BY_NAME.items()}


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> str | None:  # noqa: D102
        if type(obj) is np.ndarray:  # pylint: disable=unidiomatic-typecheck
            return _FIXED_BY_ID.get(id(obj))
        return None


# What the server and its worker may unpickle from each other: their own data classes
# and gate functions, NumPy arrays and a few builtins. Nothing else resolves, so even a
# compromised worker could not make the server import or call anything else.
_NUMPY_MODULES = frozenset({"numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                            "numpy.core.numeric", "numpy._core.numeric"})
_NUMPY_NAMES = frozenset({"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"})
_BUILTINS = frozenset({"complex", "frozenset", "set", "slice", "bytearray"})


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        if ((module.startswith("qstore_qiskit.server.") and not name.startswith("_"))
                or (module in _NUMPY_MODULES and name in _NUMPY_NAMES)
                or (module == "builtins" and name in _BUILTINS)):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        try:
            return _FIXED_BY_NAME[pid]
        except (KeyError, TypeError):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}") from None


def _encode_gates(gates: list) -> list:
    """Gates with each fixed matrix replaced by its name in :mod:`.gates`, so that the
    list pickles with the C pickler alone (a :class:`_Pickler` calls
    ``persistent_id`` in Python for every object: 0.19 s against 0.05 s for 90,000
    gates, in the server's thread when a job goes to the simulation worker)."""
    names = _FIXED_BY_ID
    return [(names[id(recipe[1][0])], controls, qubits)
            if recipe[0] is None and id(recipe[1][0]) in names else (recipe, controls, qubits)
            for recipe, controls, qubits in gates]


def _decode_gates(encoded: list) -> list:
    """Undo :func:`_encode_gates` (a name not in :mod:`.gates` is refused)."""
    fixed = _FIXED_BY_NAME
    try:
        return [((None, (fixed[item],)), controls, qubits) if type(item) is str
                else (item, controls, qubits)
                for item, controls, qubits in encoded]
    except (KeyError, TypeError, ValueError):
        raise pickle.UnpicklingError("malformed gate chunk") from None


def _dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def _loads(data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data)).load()


@dataclasses.dataclass(frozen=True)
class PackedSpec:
    """A validated job as the worker returns it: the job without gates, the number of
    gates of each circuit, and all gates in pickled chunks."""

    skeleton: bytes
    lengths: tuple[int, ...]
    chunks: tuple[bytes, ...]

    @classmethod
    def pack(cls, spec: JobSpec) -> "PackedSpec":
        """Cut ``spec``'s gates into chunks (in the worker)."""
        flat = [g for c in spec.circuits for g in c.gates]
        bare = dataclasses.replace(spec, circuits=tuple(
            dataclasses.replace(c, gates=()) for c in spec.circuits))
        chunks = tuple(pickle.dumps(_encode_gates(flat[i:i + CHUNK_GATES]),
                                    protocol=pickle.HIGHEST_PROTOCOL)
                       for i in range(0, len(flat), CHUNK_GATES))
        return cls(_dumps(bare), tuple(len(c.gates) for c in spec.circuits), chunks)

    def unpack(self) -> JobSpec:
        """The :class:`JobSpec` (in a server thread: one short ``loads`` per chunk)."""
        bare: JobSpec = _loads(self.skeleton)
        flat: list = []
        for chunk in self.chunks:
            flat.extend(_decode_gates(_loads(chunk)))
        circuits, start = [], 0
        for circuit, n in zip(bare.circuits, self.lengths):
            circuits.append(dataclasses.replace(circuit, gates=tuple(flat[start:start + n])))
            start += n
        return dataclasses.replace(bare, circuits=tuple(circuits))


def _worker_parse(config: ServerConfig, raw: bytes, version: str) -> PackedSpec | tuple:
    """Decode and validate ``raw`` (in the worker). An :class:`ApiError` comes back as
    its constructor arguments."""
    try:
        body = decode_json(raw)
        del raw
        return PackedSpec.pack(parse_job_request(body, config, version, native_ranges=True))
    except ApiError as exc:
        return ("error", exc.status, exc.message, exc.error_type, exc.headers, exc.keys,
                exc.source)
    except RecursionError:
        return ("error", 400, "malformed JSON body: nested too deeply", None, None, None,
                "body")


def _write_frame(stream: Any, data: bytes) -> None:
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def _read_frame(stream: Any) -> bytes | None:
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    return data if len(data) == size else None


def worker_main() -> int:
    """The worker process: a config frame, then ``(version, body)`` frames answered with
    ``PackedSpec`` or error frames, until its stdin closes (the server went away)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the pipe
    frame = _read_frame(stdin)
    if frame is None:
        return 0
    config: ServerConfig = _loads(frame)
    while True:
        frame = _read_frame(stdin)
        if frame is None:
            return 0
        version, raw = _loads(frame)
        try:
            result: Any = _worker_parse(config, raw, version)
        except Exception as exc:  # pylint: disable=broad-except  # the server answers 500
            result = ("crash", f"{type(exc).__name__}")
        del raw, frame
        _write_frame(stdout, _dumps(result))


class _Worker:
    """One worker process (``python -m qstore_qiskit.server.decode_worker``) and its pipes.

    Not ``multiprocessing``: its ``spawn`` re-imports the parent's main script, which
    for a script embedding :class:`LocalServer` without a ``__main__`` guard would start
    it again.
    """

    def __init__(self, config: ServerConfig,
                 module: str = "qstore_qiskit.server.decode_worker") -> None:
        # The worker imports this very package, wherever the server found it (a source
        # tree on sys.path need not be on PYTHONPATH).
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env,
        )
        # The worker never sees the API key.
        _write_frame(self.proc.stdin, _dumps(config.with_overrides(api_key=None)))

    def call(self, raw: bytes, version: str) -> Any:
        """Send one body and wait for its answer (blocking: run in a thread)."""
        return _loads(self.call_raw(_dumps((version, raw))))  # PackedSpec: quick to load

    def call_raw(self, request: bytes) -> bytes:
        """Send one pickled request frame and return the answer frame (blocking)."""
        _write_frame(self.proc.stdin, request)
        frame = _read_frame(self.proc.stdout)
        if frame is None:
            raise BrokenPipeError("worker exited")
        return frame

    def kill(self) -> None:
        """Stop it at once (non-blocking: its pending answer is lost; a thread reading
        its pipe sees the end and then calls :meth:`close`)."""
        try:
            self.proc.kill()
        except OSError:  # pragma: no cover - already gone
            pass

    def close(self) -> None:
        """Close its stdin (it exits) and reap it."""
        try:
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


class BodyDecoder:
    """Worker processes that decode and validate large job bodies.

    One worker is started with the server (:meth:`prestart`: a fresh interpreter with
    the request validators imported, about 50 MB RSS and a second or so to start, while
    the server already serves; not if ``config.prestarts_workers()`` is false), so that
    the first large body does not wait for it; more
    start on demand, and each serves every later body; at most ``config.decode_processes`` run at once, and a body waits for a
    free one. With ``decode_processes=0`` large bodies are decoded in ``thread_pool``
    instead (the event loop then stalls for the decode).

    Args:
        config: The server configuration (the worker gets a copy without the API key).
        thread_pool: The server's parse threads (they talk to the workers and unpack
            results).
    """

    def __init__(self, config: ServerConfig,
                 thread_pool: concurrent.futures.ThreadPoolExecutor) -> None:
        self.config = config
        self.threads = thread_pool
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max(1, config.decode_processes))
        # One thread per worker waits on its pipe (the parse threads stay free).
        self._io = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, config.decode_processes), thread_name_prefix="qstore-decode")
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.decoded_in_process = 0  # bodies decoded by a worker
        self.in_worker = 0  # bodies at a worker right now (loop-confined counter)

    def prestart(self) -> None:
        """Start one worker now (none with ``decode_processes=0``). ``Popen`` returns
        at once; the worker imports its modules while the server serves."""
        if self.config.decode_processes == 0:
            return
        with self._lock:
            if self._closed or self._all:
                return
            worker = _Worker(self.config)
            self._all.append(worker)
        self._idle.put(worker)

    def _call(self, raw: bytes, version: str) -> Any:
        with self._slots:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                with self._lock:
                    if self._closed:
                        raise BrokenPipeError("decoder closed") from None
                    worker = _Worker(self.config)
                    self._all.append(worker)
            try:
                result = worker.call(raw, version)
            except (OSError, EOFError, pickle.UnpicklingError):
                with self._lock:
                    self._all.remove(worker)
                worker.close()
                raise BrokenPipeError("decode worker exited") from None
            self._idle.put(worker)
            return result

    async def parse_job(self, raw: bytes, version: str) -> JobSpec:
        """Decode and validate a job body of any size; the event loop never waits on a
        long decode.

        Raises:
            ApiError: The 4xx the body deserves (503 if a worker died mid-request).
        """
        loop = asyncio.get_running_loop()
        if len(raw) <= self.config.process_decode_bytes or self.config.decode_processes == 0:
            body = decode_json(raw) if len(raw) <= 64 * 1024 else await loop.run_in_executor(
                self.threads, decode_json, raw)
            return await loop.run_in_executor(self.threads, lambda: parse_job_request(
                body, self.config, version, native_ranges=True))
        self.in_worker += 1
        try:
            packed = await loop.run_in_executor(self._io, self._call, raw, version)
        except BrokenPipeError:
            raise ApiError(503, "the request decoder restarted; retry the request",
                           headers={"Retry-After": "1"}) from None
        finally:
            self.in_worker -= 1
        self.decoded_in_process += 1
        if isinstance(packed, tuple) and packed[0] == "error":
            _, status, message, error_type, headers, keys, source = packed
            raise ApiError(status, message, error_type, headers, keys, source or "body")
        if isinstance(packed, tuple):  # the worker's validator crashed
            raise RuntimeError(f"decode worker: {packed[1]}")
        return await loop.run_in_executor(self.threads, packed.unpack)

    def shutdown(self) -> None:
        """Stop the worker processes."""
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()
        self._io.shutdown(wait=True, cancel_futures=True)


__all__ = ["BodyDecoder", "PackedSpec", "decode_json", "worker_main", "CHUNK_GATES"]

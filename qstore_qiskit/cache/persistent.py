"""The persistent template store: compiled templates on disk, shared by processes.

A :class:`PersistentTemplateStore` keeps serialised templates
(:mod:`qstore_qiskit.cache.serialize`) in a :class:`diskcache.Cache` (SQLite, safe for
concurrent readers and writers in many processes) with a size limit and least-recently-
used eviction. :class:`~qstore_qiskit.cache.TemplateCache` consults it on a miss of its
in-memory level, so a second process, or a restart of the same script, loads what an
earlier one compiled instead of compiling it again; and :meth:`PersistentTemplateStore.
single_flight` makes processes that miss the same entry at the same time compile it once.

Safety model:

* Only ``bytes`` go in and come out: the store's :class:`diskcache.Disk` subclass refuses
  to pickle or unpickle anything (diskcache pickles by default), refuses keys that are
  not ``str``, and never reads or deletes a file outside the cache directory.
* Every entry carries an HMAC-SHA256 over its key and document, keyed by a random
  per-directory secret (``hmac.key``, created ``0600`` in a ``0700`` directory). An entry
  this cache did not write (copied from another directory or machine, truncated,
  bit-flipped, edited, or moved to another key) fails the check, is deleted and is
  recompiled. Then :func:`qstore_qiskit.cache.serialize.loads` checks the document's
  schema and labels before anything is built from it.
* Keys (see :func:`entry_key`) include the format version, the qstore-qiskit and Qiskit
  versions and the compiler's identity and options, so an upgrade never loads a
  template another compiler produced.
* Any failure of the store (unwritable directory, locked or corrupt database) is counted
  and the template is compiled as if there were no store: the store can make a run
  faster, never make it fail.

The HMAC does not defend against someone who can write to the cache directory as you
(they can read the secret, and they can also edit your Python packages); it makes
corruption and foreign entries harmless.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Union

from diskcache import Cache, Disk
from diskcache.core import DBNAME, MODE_BINARY, MODE_RAW, UNKNOWN

from .errors import QStoreCacheError

__all__ = [
    "PersistentTemplateStore",
    "default_cache_dir",
    "open_store",
    "entry_key",
    "CACHE_DIR_ENV",
    "DEFAULT_SIZE_LIMIT",
]

#: Environment variable naming the template cache directory (``off`` disables the cache).
CACHE_DIR_ENV = "QSTORE_CACHE_DIR"
#: Default size limit of a store, bytes.
DEFAULT_SIZE_LIMIT = 512 * 1024 * 1024
_OFF = frozenset({"", "0", "off", "false", "no", "none", "disable", "disabled"})
_KEY_FILE = "hmac.key"
_MAGIC = b"QST1"
_MAC_LEN = 32
_HOST = socket.gethostname()
# diskcache's value files: "ab/cd/<28 hex>.val" (Disk.filename).
_VALUE_FILE = re.compile(r"^[0-9a-f]{2}[/\\][0-9a-f]{2}[/\\][0-9a-f]{28}\.val$")


def default_cache_dir() -> Path | None:
    """The template cache directory, or ``None`` if ``QSTORE_CACHE_DIR=off``.

    ``$QSTORE_CACHE_DIR`` if set, else the user cache directory: platformdirs'
    ``user_cache_dir("qstore-qiskit")/templates`` where platformdirs is installed, else
    ``$XDG_CACHE_HOME/qstore-qiskit/templates`` (``~/.cache/...``).
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env is not None:
        if env.strip().lower() in _OFF:
            return None
        return Path(env).expanduser()
    try:
        from platformdirs import user_cache_dir
    except ImportError:  # pragma: no cover - platformdirs ships with most environments
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qstore-qiskit"
    else:
        base = Path(user_cache_dir("qstore-qiskit", appauthor=False))
    return base / "templates"


def entry_key(parts: tuple) -> str:
    """The store key of an in-memory cache key plus compiler identity (a SHA-256 hex).

    ``parts`` must be built of ``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None``
    and tuples of those, so that its ``repr`` is the same in every process.
    """
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class _UnsafeEntry(Exception):
    """A database row that would need unpickling, or points outside the directory."""


class _BytesDisk(Disk):
    """A :class:`diskcache.Disk` for ``str`` keys and ``bytes`` values only: never pickles."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError("persistent template store keys are str")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw or type(key) is not str:
            raise _UnsafeEntry("a stored key that is not a plain string")
        return key

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple:
        if type(value) is not bytes or read:
            raise TypeError("persistent template store values are bytes")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if read:
            raise _UnsafeEntry("file handles are not served")
        if mode == MODE_RAW and isinstance(value, bytes):
            return value
        if mode == MODE_BINARY and isinstance(filename, str) and _VALUE_FILE.match(filename):
            return super().fetch(mode, filename, value, read)
        raise _UnsafeEntry("a stored value that is not plain bytes")

    def remove(self, file_path: Any) -> None:
        if isinstance(file_path, str) and _VALUE_FILE.match(file_path):
            super().remove(file_path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _load_secret(directory: Path) -> bytes:
    """The directory's HMAC secret, created (0600, atomically) on first use."""
    path = directory / _KEY_FILE
    for _ in range(5):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = None
        if data is not None and len(data) == _MAC_LEN:
            with contextlib.suppress(OSError):
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
            return data
        if data is not None:  # corrupt: replace (every entry then fails its check)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        tmp = directory / f".{_KEY_FILE}.{os.getpid()}.{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(_MAC_LEN))
            # link() fails if another process created the file first: then use theirs.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    raise QStoreCacheError(f"cannot create the template cache secret {path}")


class PersistentTemplateStore:
    """Serialised compiled templates in a directory, shared by threads and processes.

    Use one store per directory and process (:func:`open_store` memoises them); pass it
    to :class:`~qstore_qiskit.cache.TemplateCache` as ``store=``.

    Args:
        directory: the cache directory; default :func:`default_cache_dir`.
        size_limit: approximate bytes on disk; least recently used entries are evicted
            beyond it.
        lock_lease: seconds a compile lock is valid; a process that holds it longer (or
            died on another host) lets the next waiter compile. A holder that died on
            this host is detected at once.
        lock_timeout: seconds a process waits for another's compile before compiling
            itself (never waits forever).

    Raises:
        QStoreCacheError: no directory (``QSTORE_CACHE_DIR=off``), or it cannot be used.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        lock_lease: float = 300.0,
        lock_timeout: float = 600.0,
    ) -> None:
        path = Path(directory).expanduser() if directory is not None else default_cache_dir()
        if path is None:
            raise QStoreCacheError(f"the persistent template cache is disabled ({CACHE_DIR_ENV}=off)")
        if size_limit <= 0 or lock_lease <= 0 or lock_timeout < 0:
            raise QStoreCacheError("size_limit and lock_lease must be positive, lock_timeout >= 0")
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._secret = _load_secret(path)
        except (OSError, ValueError) as exc:
            raise QStoreCacheError(f"cannot open the template cache at {path}: {exc}") from exc
        self.directory = path
        self.size_limit = int(size_limit)
        self.lock_lease = float(lock_lease)
        self.lock_timeout = float(lock_timeout)
        self._lock = threading.Lock()
        self._stats = dict.fromkeys(("hits", "misses", "rejected", "writes", "lock_waits"), 0)
        # diskcache's Cache is opened on first write (or lock, delete, stats): opening
        # it runs ~70 SQL statements, several of them write transactions (its settings,
        # tables and triggers), ~15-60 ms, which a restarted run that only loads
        # templates never needs. Reads go through _reader (see fetch).
        self._opened: Cache | None = None
        self._disk = _BytesDisk(str(path))
        self._db = str(path / DBNAME)
        self._local = threading.local()

    @property
    def _cache(self) -> Cache:
        """The diskcache :class:`~diskcache.Cache`, opened on first use."""
        cache = self._opened
        if cache is None:
            with self._lock:
                cache = self._opened
                if cache is None:
                    try:
                        cache = self._opened = Cache(
                            str(self.directory),
                            disk=_BytesDisk,
                            size_limit=self.size_limit,
                            eviction_policy="least-recently-stored",
                            cull_limit=10,
                            statistics=0,
                            tag_index=0,
                        )
                    except (OSError, ValueError, sqlite3.Error) as exc:
                        raise QStoreCacheError(
                            f"cannot open the template cache at {self.directory}: {exc}"
                        ) from exc
        return cache

    def _reader(self) -> sqlite3.Connection | None:
        """This thread's read connection to the database, or ``None`` if there is none yet."""
        local = self._local
        con = getattr(local, "con", None)
        if con is not None and local.pid == os.getpid():
            return con
        if not os.path.exists(self._db):
            return None  # nothing stored yet; connecting would create an empty file
        # Same busy timeout as diskcache's connections; WAL mode (set by diskcache) is a
        # property of the database file, so readers never block its writers.
        con = sqlite3.connect(self._db, timeout=60, isolation_level=None, check_same_thread=True)
        local.con, local.pid = con, os.getpid()
        return con

    def _read(self, key: str) -> bytes | None:
        """The raw row stored under ``key`` by :meth:`put`, read without opening diskcache.

        The query is diskcache's own lookup (``Cache.get``: key, ``raw`` flag, expiry);
        the row's value goes through :meth:`_BytesDisk.fetch`, the same checks as a read
        through diskcache (plain bytes inline, or a value file inside the directory).
        Raises what that raises.
        """
        if self._opened is not None:
            return self._cache.get(key, default=None, retry=True)
        try:
            con = self._reader()
            if con is None:
                return None
            row = con.execute(
                "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1"
                " AND (expire_time IS NULL OR expire_time > ?)",
                (key, time.time()),
            ).fetchone()
        except sqlite3.Error:
            # No table yet (another process is creating the database), locked, damaged:
            # let diskcache open (and if need be create) it and answer.
            return self._cache.get(key, default=None, retry=True)
        if row is None:
            return None
        mode, filename, value = row
        return self._disk.fetch(mode, filename, value, False)

    def __repr__(self) -> str:
        return f"<PersistentTemplateStore {str(self.directory)!r} size_limit={self.size_limit}>"

    # -- entries ------------------------------------------------------------------------

    def _mac(self, key: str, body: bytes) -> bytes:
        return hmac.new(self._secret, key.encode() + b"\0" + body, hashlib.sha256).digest()

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def get(self, key: str) -> bytes | None:
        """The document stored under ``key`` if it passes its integrity check, else ``None``.

        An entry that fails (not written by this cache, truncated, altered, unreadable)
        is deleted and counted as ``rejected``.
        """
        return self.fetch(key)[1]

    def fetch(self, key: str) -> tuple[str, bytes | None]:
        """Like :meth:`get`, with the outcome: ``("hit" | "miss" | "rejected", document)``."""
        try:
            raw = self._read("t:" + key)
        except (_UnsafeEntry, OSError, UnicodeError, sqlite3.DatabaseError):
            raw = b""  # an unreadable row: treat like a tampered one
        if raw is None:
            self._count("misses")
            return "miss", None
        if type(raw) is bytes and len(raw) > len(_MAGIC) + _MAC_LEN and raw.startswith(_MAGIC):
            mac, body = raw[len(_MAGIC) : len(_MAGIC) + _MAC_LEN], raw[len(_MAGIC) + _MAC_LEN :]
            if hmac.compare_digest(mac, self._mac(key, body)):
                self._count("hits")
                return "hit", body
        self.reject(key)
        return "rejected", None

    def reject(self, key: str) -> None:
        """Delete the entry under ``key`` (it failed a check) and count it."""
        self._count("rejected")
        with contextlib.suppress(Exception):
            self._cache.delete("t:" + key, retry=True)

    def put(self, key: str, body: bytes) -> None:
        """Store ``body`` under ``key`` (replacing any entry)."""
        self._cache.set("t:" + key, _MAGIC + self._mac(key, body) + body, retry=True)
        self._count("writes")

    def claim(self, key: str) -> bool:
        """Record that this process met ``key`` first: ``True`` unless another one did."""
        return bool(self._cache.add("s:" + key, b"", retry=True))

    def __contains__(self, key: str) -> bool:
        try:
            if self._opened is not None:
                return ("t:" + key) in self._cache
            con = self._reader()
            return con is not None and con.execute(
                "SELECT 1 FROM Cache WHERE key = ? AND raw = 1 AND (expire_time IS NULL OR expire_time > ?)",
                ("t:" + key, time.time()),
            ).fetchone() is not None
        except (_UnsafeEntry, OSError, sqlite3.Error):
            return False

    # -- cross-process single flight ----------------------------------------------------

    @contextlib.contextmanager
    def single_flight(self, key: str) -> Iterator[bool]:
        """Serialise compiles of ``key`` across processes.

        Yields ``True`` when the caller should compile (and :meth:`put`) now: it holds the
        lock, or waited ``lock_timeout`` for a holder. Yields ``False`` when another
        process stored ``key`` while the caller waited: load it with :meth:`get`.
        Callers that get ``True`` should still check :meth:`get` first, since the entry
        may have been stored just before the lock was taken.
        """
        lock = "l:" + key
        token = f"{_HOST}:{os.getpid()}:{secrets.token_hex(8)}".encode()
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        held = waited = False
        while True:
            try:
                if self._cache.add(lock, token, expire=self.lock_lease, retry=True):
                    held = True
                    break
            except (_UnsafeEntry, TypeError):
                self._break_lock(lock, force=True)
                continue
            if not waited:
                waited = True
                self._count("lock_waits")
            if key in self:
                yield False
                return
            self._break_lock(lock)
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        try:
            yield True
        finally:
            if held:
                self._release(lock, token)

    def _break_lock(self, lock: str, force: bool = False) -> None:
        """Remove ``lock`` if its holder is a dead process on this host (or ``force``)."""
        try:
            with self._cache.transact(retry=True):
                value = self._cache.get(lock, default=None, retry=True)
                if value is None:
                    return
                if not force:
                    host, _, rest = value.decode("ascii", "replace").partition(":")
                    pid_text = rest.partition(":")[0]
                    if host != _HOST or not pid_text.isdigit():
                        return
                    pid = int(pid_text)
                    if pid == os.getpid() or _pid_alive(pid):
                        return
                self._cache.delete(lock, retry=True)
        except _UnsafeEntry:
            with contextlib.suppress(Exception):
                self._cache.delete(lock, retry=True)

    def _release(self, lock: str, token: bytes) -> None:
        with contextlib.suppress(Exception), self._cache.transact(retry=True):
            if self._cache.get(lock, default=None, retry=True) == token:
                self._cache.delete(lock, retry=True)

    # -- maintenance ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """This process's counters (``hits``, ``misses``, ``rejected``, ``writes``,
        ``lock_waits``) and the store's ``entries`` and ``volume`` (bytes on disk)."""
        with self._lock:
            out: dict[str, Any] = dict(self._stats)
        try:
            out["entries"] = sum(1 for k in self._cache.iterkeys() if k.startswith("t:"))
            out["volume"] = self._cache.volume()
        except Exception:  # noqa: BLE001 - stats must not fail on a damaged store
            out["entries"] = out["volume"] = None
        out["directory"] = str(self.directory)
        return out

    def clear(self) -> None:
        """Delete every entry."""
        self._cache.clear(retry=True)

    def close(self) -> None:
        """Close the database connections (reopened on next use)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            self._local.con = None
            con.close()
        if self._opened is not None:
            self._opened.close()


#: What a backend option or ``TemplateCache(store=...)`` may say about persistence.
StoreSetting = Union[PersistentTemplateStore, str, "os.PathLike[str]", bool, None]

_OPEN: dict[tuple[int, str], PersistentTemplateStore] = {}
_OPEN_AS_GIVEN: dict[tuple[int, str], PersistentTemplateStore] = {}
_OPEN_LOCK = threading.Lock()


def open_store(
    setting: StoreSetting | Callable[[], StoreSetting] = None, *, size_limit: int | None = None
) -> PersistentTemplateStore | None:
    """Resolve a persistence setting to a (shared) store, or ``None`` for none.

    Args:
        setting: a :class:`PersistentTemplateStore` (used as is); ``False`` (off);
            ``None`` or ``True`` (the default directory, :func:`default_cache_dir`,
            which ``QSTORE_CACHE_DIR=off`` turns off); or a directory. A callable is called
            first (a backend passes its current option this way).
        size_limit: size limit of a newly opened store (default :data:`DEFAULT_SIZE_LIMIT`).

    Returns:
        One store per directory per process (stores are thread-safe), or ``None``.
    """
    if callable(setting) and not isinstance(setting, PersistentTemplateStore):
        setting = setting()
    if isinstance(setting, PersistentTemplateStore):
        return setting
    if setting is False:
        return None
    if setting is None or setting is True:
        path = default_cache_dir()
        if path is None:
            return None
    elif isinstance(setting, (str, os.PathLike)):
        path = Path(setting).expanduser()
    else:
        raise QStoreCacheError(
            f"template cache setting must be a directory, None, True/False or a store, not {setting!r}"
        )
    # Asked at every miss of a cache: an absolute path seen before skips realpath()
    # (a dozen system calls), which only serves to share one store among spellings.
    given = (os.getpid(), os.fspath(path))
    if os.path.isabs(given[1]):
        store = _OPEN_AS_GIVEN.get(given)
        if store is not None:
            return store
    ident = (os.getpid(), os.path.realpath(path))
    with _OPEN_LOCK:
        store = _OPEN.get(ident)
        if store is None:
            kwargs = {} if size_limit is None else {"size_limit": size_limit}
            store = _OPEN[ident] = PersistentTemplateStore(path, **kwargs)
        if os.path.isabs(given[1]):
            _OPEN_AS_GIVEN[given] = store
        return store

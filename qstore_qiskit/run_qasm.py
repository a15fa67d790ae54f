"""``qstore-qiskit run FILE.qasm [...]``: run OpenQASM 2 or 3 files and print counts.

Each file is parsed with Qiskit (``qiskit.qasm2.load`` for ``OPENQASM 2.0``,
``qiskit.qasm3.loads`` for ``OPENQASM 3`` -- the latter needs the ``qiskit-qasm3-import``
package), compiled to IonQ native gates by the qstore backend and run; all files go
in one batch. Without an API key (``--token`` / ``IONQ_API_KEY``) or ``--url`` the
embedded local IonQ-API server runs them, so no account or network is needed.

Exit status: 0 on success, 2 when a file is missing or does not parse (nothing is run),
1 when running failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

_HEADER = re.compile(r"^\s*OPENQASM\s+(\d+)(?:\.(\d+))?\s*;", re.MULTILINE)
_POSITION = re.compile(r"(?:^|[:\s])(\d+),(\d+):")


class QasmFileError(Exception):
    """A file that cannot be run, with a message naming the file (and line)."""


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def qasm_version(text: str) -> int:
    """2 or 3 from the ``OPENQASM`` header; files without one are read as version 3
    unless they declare ``qreg``/``creg`` (OpenQASM 2 style)."""
    match = _HEADER.search(_strip_comments(text))
    if match:
        return int(match.group(1))
    return 2 if re.search(r"\b[qc]reg\b", text) else 3


def _position(message: str) -> str:
    """``line L, column C`` from a Qiskit parser message (``...:L,C: ...``), or ``""``."""
    match = _POSITION.search(message)
    if not match:
        return ""
    return f"{match.group(1)}:{match.group(2)}"


def load_file(path: str):
    """Parse one OpenQASM file into a ``QuantumCircuit``.

    Raises:
        QasmFileError: missing/unreadable file, parse error (with file and line), or
            ``qiskit-qasm3-import`` missing for an OpenQASM 3 file.
    """
    if not os.path.exists(path):
        raise QasmFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise QasmFileError(f"{path}: is a directory, not an OpenQASM file")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise QasmFileError(f"{path}: cannot read: {exc}") from exc
    version = qasm_version(text)
    if version == 2:
        import qiskit.qasm2 as qasm2

        try:
            circuit = qasm2.load(
                path,
                include_path=(os.path.dirname(os.path.abspath(path)),),
                custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS,
            )
        except qasm2.QASM2ParseError as exc:
            message = str(exc).strip().strip("\"'")
            where = _position(message)
            detail = re.sub(r"^.*?:\d+,\d+:\s*", "", message)
            raise QasmFileError(f"{path}:{where + ': ' if where else ' '}OpenQASM 2 parse error: {detail}") from exc
    elif version == 3:
        import importlib.util

        if importlib.util.find_spec("qiskit_qasm3_import") is None:
            raise QasmFileError(
                f"{path}: OpenQASM 3 needs the 'qiskit-qasm3-import' package, which is not installed "
                "(pip install qiskit-qasm3-import); OpenQASM 2 files work without it"
            )
        import qiskit.qasm3 as qasm3

        try:
            circuit = qasm3.loads(text)
        except Exception as exc:  # QASM3ImporterError, and the parser's own errors
            message = str(exc).strip().strip("\"'")
            where = _position(message)
            detail = re.sub(r"^.*?\d+,\d+:\s*", "", message) if where else message
            raise QasmFileError(f"{path}:{where + ': ' if where else ' '}OpenQASM 3 parse error: {detail}") from exc
    else:
        raise QasmFileError(f"{path}: unsupported OpenQASM version {version} (2 and 3 are supported)")
    if circuit.num_qubits == 0:
        raise QasmFileError(f"{path}: the program declares no qubits")
    if circuit.parameters:
        names = ", ".join(p.name for p in list(circuit.parameters)[:5])
        raise QasmFileError(f"{path}: unbound input parameters ({names}); give them values in the file")
    circuit.name = os.path.basename(path)
    return circuit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``qstore-qiskit run``."""
    parser.add_argument("files", nargs="+", metavar="FILE.qasm", help="OpenQASM 2 or 3 files")
    parser.add_argument("--backend", default="ionq_simulator",
                        help="backend name (default ionq_simulator; e.g. ionq_qpu.aria-1, local)")
    parser.add_argument("--shots", type=int, default=1024, help="shots per circuit (default 1024)")
    parser.add_argument("--url", default=None,
                        help="IonQ API base URL, e.g. http://127.0.0.1:8000/v0.4 from 'qstore-qiskit serve' "
                             "(default: IONQ_API_URL, else the embedded local server when no key is set)")
    parser.add_argument("--token", default=None, help="IonQ API key (default: IONQ_API_KEY)")
    parser.add_argument("--profile", default="instant", choices=["instant", "cloud"],
                        help="latency profile of the embedded local server (default instant)")
    parser.add_argument("--noise-model", default=None, help="simulator noise model (e.g. aria-1)")
    parser.add_argument("--seed", type=int, default=None, help="sampler seed (reproducible counts)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def _print_counts(name: str, counts: dict[str, int], shots: int, meta: dict[str, Any]) -> None:
    gates = meta.get("native_gate_counts") or {}
    two_q = gates.get("ms", 0) + gates.get("zz", 0)
    print(f"== {name}: {shots} shots, {sum(gates.values())} native gates ({two_q} two-qubit)")
    width = max((len(k) for k in counts), default=1)
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {key:>{width}}  {value:>7}  {value / shots:7.2%}")


def main(args: argparse.Namespace) -> int:
    """Load every file, run them in one batch, print counts per file."""
    if args.shots < 1:
        print("error: --shots must be positive", file=sys.stderr)
        return 2
    circuits = []
    errors = []
    for path in args.files:
        try:
            circuits.append((path, load_file(path)))
        except QasmFileError as exc:
            errors.append(str(exc))
    if errors:
        for message in errors:
            print(f"error: {message}", file=sys.stderr)
        print(f"qstore-qiskit run: {len(errors)} of {len(args.files)} file(s) could not be loaded; nothing was run",
              file=sys.stderr)
        return 2

    import warnings

    from .providers import QStoreProvider

    options: dict[str, Any] = {"shots": args.shots}
    if args.noise_model:
        options["noise_model"] = args.noise_model
    if args.seed is not None:
        options["sampler_seed"] = args.seed
    provider = QStoreProvider(token=args.token, url=args.url, local_profile=args.profile)
    where = "embedded local server" if provider.uses_local_server else (args.url or os.environ.get("IONQ_API_URL")
                                                                         or "IonQ cloud")
    try:
        backend = provider.get_backend(args.backend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = backend.run([c for _, c in circuits], **options).result()
    except ValueError as exc:  # unknown backend, bad option, circuit the backend cannot run
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # pylint: disable=broad-except
        print(f"error: running on {args.backend} ({where}) failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        provider.close()

    out = {}
    for index, (path, circuit) in enumerate(circuits):
        counts = result.get_counts(index)
        meta = result.results[index].metadata or {}
        out[path] = {"counts": dict(counts), "shots": args.shots, "qubits": circuit.num_qubits,
                     "native_gate_counts": meta.get("native_gate_counts")}
    if args.json:
        print(json.dumps({"backend": args.backend, "files": out}, indent=2, sort_keys=True))
    else:
        print(f"backend {args.backend} ({where})")
        for path, entry in out.items():
            _print_counts(path, entry["counts"], args.shots, entry)
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="qstore-qiskit run", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

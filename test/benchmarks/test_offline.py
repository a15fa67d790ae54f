"""The benchmark scripts that drive qiskit-ionq run against the local server only.

qiskit-ionq looks up a backend's qubit count at ``IONQ_API_URL`` (IonQ's cloud when it
is unset), whatever ``url=`` its provider was given, and carries on with a default when
the lookup fails: a script can reach for IonQ's cloud and still print a table. These
tests start the scripts in child processes with an audit hook (``offline_guard``) that
ends a process on any lookup of or connection to a non-local host, so such an attempt
fails the test, and check that the run printed its table.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUARD = ROOT / "test" / "offline_guard"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("IONQ_API_URL", None)  # the script must point qiskit-ionq at its own server
    env.pop("QISKIT_IONQ_API_URL", None)
    env["PYTHONPATH"] = os.pathsep.join([str(GUARD), str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=500, check=False,
    )


def test_guard_catches_an_outside_lookup():
    """The guard itself: a lookup of IonQ's cloud host ends the child with 97."""
    env = dict(os.environ, PYTHONPATH=str(GUARD))
    code = "import socket\ntry:\n    socket.getaddrinfo('api.ionq.co', 443)\nexcept OSError:\n    pass\n"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 97, proc.stderr
    assert "api.ionq.co" in proc.stderr


@pytest.mark.parametrize(
    "script, args, expect",
    [
        ("submit.py", ("--sizes", "2", "--runs", "0", "--repeat", "1"), "qiskit-ionq per-circuit"),
        ("training.py", ("--quick",), "(a) qiskit-ionq"),
        ("run_breakdown.py", ("--repeat", "1"), "loop-thread CPU"),
        ("small_compile.py", ("--repeat", "1", "--circuits", "5", "--peer"), "this / qiskit-ionq"),
        ("run_overhead.py", ("--repeat", "1", "--n", "3"), "cold non-compile"),
        ("run_instructions.py", ("3",), "counted regions"),
    ],
)
def test_script_stays_on_this_machine(script, args, expect):
    proc = _run(script, *args)
    assert proc.returncode == 0, f"{script} exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert expect in proc.stdout


def test_payload_snapshot_is_deterministic(tmp_path):
    """Two runs of the payload snapshot on the same code compare identical (and a
    changed record is reported)."""
    snap = tmp_path / "snap.json"
    proc = _run("payload_snapshot.py", "--scale", "1", "--save", str(snap))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _run("payload_snapshot.py", "--scale", "1", "--compare", str(snap))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "identical" in proc.stdout
    import json

    doc = json.loads(snap.read_text())
    doc["records"][3]["sha256"] = "0" * 64
    snap.write_text(json.dumps(doc))
    proc = _run("payload_snapshot.py", "--scale", "1", "--compare", str(snap))
    assert proc.returncode != 0
    assert "DIFFERENT #3" in proc.stdout

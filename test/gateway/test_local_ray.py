"""init_local_ray: a local Ray whose processes ask no outside host anything.

Ray's API server asks the cloud metadata services which cloud it runs on even with
usage statistics disabled and the dashboard off (see
:mod:`qstore_qiskit.gateway.local_ray`). These tests start Ray in a child process under
the offline guard (``test/offline_guard``), which every process Ray starts inherits: a
lookup of a non-local host ends that process before a packet leaves and is written to a
log that the test reads.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install 'qstore-qiskit[ray]'")

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUARD = ROOT / "test" / "offline_guard"

_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import ray
    from qstore_qiskit.gateway import init_local_ray

    home = os.environ.get("HOME")
    if sys.argv[1] == "shim":
        init_local_ray(num_cpus=1, _node_ip_address="127.0.0.1", log_to_driver=False)
    else:
        ray.init(num_cpus=1, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    assert os.environ.get("HOME") == home, "the caller's HOME is restored"

    @ray.remote
    def double(x):
        return 2 * x

    assert ray.get(double.remote(21)) == 42
    time.sleep(4)  # Ray's API server asks the metadata services within its first second
    ray.shutdown()
    print("ok")
    """
)


def _run_ray(mode: str, tmp_path: pathlib.Path) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "outside.log"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(GUARD), str(ROOT)]),
        QSTORE_OFFLINE_GUARD_LOG=str(log),
        RAY_USAGE_STATS_ENABLED="0",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=240, check=False,
    )
    return proc, (log.read_text() if log.exists() else "")


def test_init_local_ray_asks_no_outside_host(tmp_path):
    proc, outside = _run_ray("shim", tmp_path)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
    assert outside == ""


def test_plain_ray_init_is_caught_by_the_guard(tmp_path):
    """The control: without the shim Ray's API server looks up a metadata service (the
    guard stops it before any packet leaves), so the test above can fail."""
    proc, outside = _run_ray("plain", tmp_path)
    assert "non-local host" in outside, (proc.returncode, proc.stderr[-3000:])

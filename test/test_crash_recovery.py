"""Crash safety: SIGKILL a process mid-batch, then recover every job from its journal.

A child process submits 200 circuits (20 submissions of 10) through
``BatchSubmitter(..., journal_path=...)`` to a LocalServer (``cloud`` profile, so jobs
are queued and running) that lives in this, the parent, process. The child is killed
with ``SIGKILL`` while jobs are in flight. The parent then calls
``BatchSubmitter(...).recover(journal_path)``, resubmits what never reached the server
(``results is None``), retrieves the jobs the child had already finished, and checks
that every circuit has exactly one correct result and no job was created twice.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from collections import Counter

import numpy as np

from qstore_qiskit.client import BatchSubmitter, CircuitResult
from qstore_qiskit.server import LocalServer

ROOT = pathlib.Path(__file__).resolve().parents[1]
N_CIRCUITS = 200
PER_SUBMIT = 10


def workload(n: int = N_CIRCUITS) -> tuple[list[dict], list[np.ndarray]]:
    """``n`` distinct 2-qubit IonQ ``qis`` bodies (ry(a) q0; cnot; ry(b) q1) and their
    exact outcome probabilities (qubit 0 least significant)."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Statevector

    rng = np.random.default_rng(1234)
    bodies, exact = [], []
    for i in range(n):
        a, b = (float(x) for x in rng.uniform(0, np.pi, 2))
        qc = QuantumCircuit(2)
        qc.ry(a, 0)
        qc.cx(0, 1)
        qc.ry(b, 1)
        exact.append(Statevector(qc).probabilities())
        bodies.append({
            "qubits": 2,
            "name": f"c{i}",
            "circuit": [
                {"gate": "ry", "target": 0, "rotation": a},
                {"gate": "cnot", "control": 0, "target": 1},
                {"gate": "ry", "target": 1, "rotation": b},
            ],
        })
    return bodies, exact


CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[4])
    from qstore_qiskit.client import BatchSubmitter
    from test.test_crash_recovery import workload, PER_SUBMIT
    url, key, journal = sys.argv[1:4]
    bodies, _ = workload()
    sub = BatchSubmitter(key, url, journal_path=journal, max_circuits_per_job=PER_SUBMIT,
                         max_jobs_in_flight=8, batch_window=0.05)
    futures = [sub.submit(bodies[i:i + PER_SUBMIT], shots=100, gateset="qis")
               for i in range(0, len(bodies), PER_SUBMIT)]
    print(json.dumps({"tags": [f.request_tag for f in futures]}), flush=True)
    for k, f in enumerate(futures):
        f.result()
        print(json.dumps({"done": k}), flush=True)
    time.sleep(120)  # never reached: the parent kills us first
    """
)


def _journal(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


class TestCrashRecovery(unittest.TestCase):
    def test_sigkill_mid_batch_then_recover(self) -> None:
        bodies, exact = workload()
        key = secrets.token_hex(16)
        with tempfile.TemporaryDirectory() as tmp, LocalServer("cloud", api_key=key, seed=5) as srv:
            journal = os.path.join(tmp, "journal.jsonl")
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, srv.url, key, journal, str(ROOT)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            try:
                tags = json.loads(child.stdout.readline())["tags"]
                # Kill once some jobs exist on the server and most are still to come.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    records = _journal(journal)
                    created = sum(r["event"] == "created" for r in records)
                    delivered = sum(r["event"] == "delivered" for r in records)
                    if delivered >= 1 and created - delivered >= 3:
                        # ... and the server is still running some of them (on a loaded
                        # machine the child may lag behind a server that is done).
                        in_flight = [j for j in srv.jobs() if j["status"] not in ("completed", "failed", "canceled")]
                        if in_flight:
                            break
                    time.sleep(0.01)
                else:
                    self.fail("the child never created a job: " + child.stderr.read()[-2000:])
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait(10)
            self.assertEqual(child.returncode, -signal.SIGKILL)
            records = _journal(journal)
            delivered_before = {r["submission_id"]: r["job_id"] for r in records if r["event"] == "delivered"}
            self.assertLess(len(delivered_before), N_CIRCUITS // PER_SUBMIT, "killed too late")

            tag_index = {tag: k for k, tag in enumerate(tags)}
            got: dict[int, list[CircuitResult]] = {}

            def take(circuits: list, results: list) -> None:
                self.assertEqual(len(circuits), len(results))
                for (tag, idx), res in zip(circuits, results):
                    got.setdefault(tag_index[tag] * PER_SUBMIT + idx, []).append(res)

            with BatchSubmitter(key, srv.url) as rescuer:
                recovered = rescuer.recover(journal, timeout=120)
                submits = {r["submission_id"]: r for r in records if r["event"] == "submit"}
                # Jobs the child had finished (it may have died before using them):
                # their ids are in the journal, retrieve them like any earlier job.
                done_ids = list(delivered_before.items())
                for (sid, _), results in zip(done_ids, rescuer.retrieve([j for _, j in done_ids], timeout=120)):
                    take(submits[sid]["circuits"], results)
                resubmit = []
                for sid, entry in recovered.items():
                    results = entry["results"]
                    self.assertNotIsInstance(results, BaseException, f"{sid}: {results!r}")
                    if results is None:  # never reached the server: send again
                        resubmit.extend(entry["circuits"])
                        continue
                    self.assertEqual(entry["job_id"], next(
                        (r["job_id"] for r in records if r.get("submission_id") == sid and r["event"] == "created"),
                        entry["job_id"]))
                    take(entry["circuits"], results)
                # Submissions the child never journaled at all (it died before sending).
                journaled = {(t, i) for r in submits.values() for t, i in r["circuits"]}
                never = [[tags[k], i] for k in range(len(tags)) for i in range(PER_SUBMIT)
                         if (tags[k], i) not in journaled]
                resubmit.extend(never)
                if resubmit:
                    again = rescuer.submit(
                        [bodies[tag_index[t] * PER_SUBMIT + i] for t, i in resubmit],
                        shots=100, gateset="qis",
                    ).result(120)
                    take(resubmit, again)

            # Every circuit: exactly one result, and the right one.
            self.assertEqual(sorted(got), list(range(N_CIRCUITS)))
            for index, results in got.items():
                self.assertEqual(len(results), 1, f"circuit {index} has {len(results)} results")
                probs = np.zeros(4)
                for outcome, p in results[0].probabilities.items():
                    probs[outcome] = p
                np.testing.assert_allclose(probs, exact[index], atol=1e-9, err_msg=f"circuit {index}")
            # No submission id was created twice on the server.
            sids = Counter(j["metadata"].get("submission_id") for j in srv.jobs())
            self.assertEqual([s for s, n in sids.items() if n > 1], [])
            self.recovery = {
                "in_flight_at_kill": len(in_flight),
                "finished_before_kill": len(delivered_before),
                "recovered": sum(1 for e in recovered.values() if e["results"] is not None),
                "resubmitted": len(resubmit),
            }
            print("\ncrash recovery:", self.recovery)
            self.assertGreater(self.recovery["recovered"], 0, "nothing was in flight at the kill")
            self.assertGreater(self.recovery["in_flight_at_kill"], 0, "no job was running at the kill")


SPANNING_CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[4])
    from qstore_qiskit.client import BatchSubmitter
    from test.test_crash_recovery import workload
    url, key, journal = sys.argv[1:4]
    bodies, _ = workload(40)
    sub = BatchSubmitter(key, url, journal_path=journal, max_circuits_per_job=5, max_jobs_in_flight=2)
    future = sub.submit(bodies, shots=100, gateset="qis")  # one call, 8 jobs
    print(json.dumps({"tag": future.request_tag}), flush=True)
    future.result()
    print(json.dumps({"done": True}), flush=True)
    time.sleep(120)
    """
)


class TestRecoverAccountsForEveryCircuit(unittest.TestCase):
    """One ``submit`` spanning several jobs, killed after some of them finished: the
    journal alone accounts for every circuit, since the caller got none of them
    (regression test: jobs were journaled ``delivered`` when their results reached the
    submitter, not the caller, and jobs waiting for a slot were not journaled)."""

    def test_spanning_submit(self) -> None:
        bodies, exact = workload(40)
        key = secrets.token_hex(16)
        with tempfile.TemporaryDirectory() as tmp, LocalServer("cloud", api_key=key, seed=9) as srv:
            journal = os.path.join(tmp, "journal.jsonl")
            child = subprocess.Popen(
                [sys.executable, "-c", SPANNING_CHILD, srv.url, key, journal, str(ROOT)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            try:
                tag = json.loads(child.stdout.readline())["tag"]
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if sum(j["status"] == "completed" for j in srv.jobs()) >= 3:
                        break
                    time.sleep(0.01)
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait(10)
            self.assertEqual(child.returncode, -signal.SIGKILL, "the child finished before the kill")
            with BatchSubmitter(key, srv.url) as rescuer:
                recovered = rescuer.recover(journal, timeout=120)
            with_results, to_resend = {}, set()
            for entry in recovered.values():
                self.assertNotIsInstance(entry["results"], BaseException)
                for (t, i), res in zip(entry["circuits"], entry["results"] or [None] * len(entry["circuits"])):
                    self.assertEqual(t, tag)
                    if res is None:
                        to_resend.add(i)
                    else:
                        self.assertNotIn(i, with_results)
                        with_results[i] = res
            self.assertGreaterEqual(len(with_results), 15, "finished jobs were not recovered")
            self.assertEqual(set(with_results) | to_resend, set(range(40)))
            self.assertEqual(set(with_results) & to_resend, set())
            for i, res in with_results.items():
                probs = np.zeros(4)
                for outcome, p in res.probabilities.items():
                    probs[outcome] = p
                np.testing.assert_allclose(probs, exact[i], atol=1e-9)


if __name__ == "__main__":
    unittest.main()

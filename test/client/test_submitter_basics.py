"""BatchSubmitter behaviour against a small in-test server (no fault injection)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
import os
import threading
import unittest
from unittest import mock

from qstore_qiskit.client import (
    BatchSubmitter,
    IonQAuthenticationError,
    IonQJobFailedError,
    IonQResponseError,
    QueueTimeoutError,
    build_counts,
)
from qstore_qiskit.client.rest import IonQHttpClient

from .mini_server import MiniServer

TOKEN = "tok-SECRET-1234567890"


def x_circuit(bits: int, qubits: int = 4) -> dict:
    """A circuit whose only outcome is ``bits`` (X on every set bit)."""
    gates = [{"gate": "x", "target": q} for q in range(qubits) if bits >> q & 1]
    return {"qubits": qubits, "circuit": gates}


async def _bucket_sizes(sub: BatchSubmitter) -> list[int]:
    return [len(b) for b in sub._coalescer._buckets.values() if b]  # pylint: disable=protected-access


class TestAgainstMiniServer(unittest.TestCase):
    """Coalescing, splitting, ordering, async use, threads, cancellation."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = MiniServer(api_key=TOKEN).__enter__()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.__exit__(None, None, None)

    def setUp(self) -> None:
        self.server.mode = "ok"

    def test_results_in_order(self) -> None:
        with BatchSubmitter(TOKEN, self.server.url) as sub:
            res = sub.submit([x_circuit(b) for b in range(16)], shots=100).result(30)
        self.assertEqual([r.circuit_index for r in res], list(range(16)))
        for b, r in enumerate(res):
            self.assertEqual(r.probabilities, {b: 1.0})
            self.assertEqual(r.counts, {b: 100})
            self.assertEqual(r.num_qubits, 4)
            self.assertIsNotNone(r.child_job_id)
        self.assertEqual(len({r.child_job_id for r in res}), 16)

    def test_coalescing_single_calls_into_one_job(self) -> None:
        with BatchSubmitter(TOKEN, self.server.url, batch_window=0.5) as sub:
            futs = [sub.submit([x_circuit(b)]) for b in range(10)]
            results = [f.result(30)[0] for f in futs]
            stats = sub.stats()
        self.assertEqual(len({r.job_id for r in results}), 1)
        self.assertEqual(stats["jobs_created"], 1)
        self.assertEqual(stats["circuits_per_job"]["max"], 10)
        self.assertEqual([r.probabilities for r in results], [{b: 1.0} for b in range(10)])

    def test_stream_cut_early_on_simulator_only(self) -> None:
        """A stream of single circuits (arrivals closer than the window): a simulator
        bucket is cut every 2 windows while job slots are free; a QPU bucket is held
        for 20 windows (one job)."""
        import time

        jobs = {}
        for backend in ("simulator", "qpu.aria-1"):
            with BatchSubmitter(TOKEN, self.server.url, batch_window=0.2) as sub:
                futs = []
                for b in range(24):  # 1.2 s of arrivals, 50 ms apart (< the 0.2 s window)
                    futs.append(sub.submit([x_circuit(b % 16)], backend=backend))
                    time.sleep(0.05)
                results = [f.result(60)[0] for f in futs]
                jobs[backend] = sub.stats()["jobs_created"]
            self.assertEqual([r.probabilities for r in results], [{b % 16: 1.0} for b in range(24)])
        self.assertGreaterEqual(jobs["simulator"], 2)  # cut at 0.4 s, not 4 s
        self.assertEqual(jobs["qpu.aria-1"], 1)

    def test_send_now_cuts_a_waiting_simulator_bucket(self) -> None:
        """A caller about to block (``future.send_now()``) gets the circuits still
        waiting in its bucket, its own and later calls', sent as one job at once: with
        a 5 s window they would otherwise wait 5 s (the result() timeout below)."""
        with BatchSubmitter(TOKEN, self.server.url, batch_window=5.0) as sub:
            futs = [sub.submit([x_circuit(b)]) for b in range(3)]
            futs[0].send_now()
            results = [f.result(3)[0] for f in futs]
            stats = sub.stats()
        self.assertEqual(stats["jobs_created"], 1)
        self.assertEqual([r.probabilities for r in results], [{b: 1.0} for b in range(3)])

    def test_send_now_keeps_a_qpu_bucket(self) -> None:
        """On a QPU every job has a minimum charge: a waiting caller does not cut the
        bucket early (it is still there after the loop ran the request)."""
        with BatchSubmitter(TOKEN, self.server.url, batch_window=5.0) as sub:
            futs = [sub.submit([x_circuit(b)], backend="qpu.aria-1") for b in range(3)]
            futs[0].send_now()
            sub.stats()  # runs on the loop after the send_now request
            waiting = sub._call(_bucket_sizes(sub)).result(5)  # pylint: disable=protected-access
            self.assertEqual(waiting, [3])
            self.assertEqual(sub.stats()["jobs_created"], 0)
        self.assertEqual([f.result(30)[0].probabilities for f in futs], [{b: 1.0} for b in range(3)])

    def test_incompatible_settings_not_coalesced(self) -> None:
        with BatchSubmitter(TOKEN, self.server.url, batch_window=0.2) as sub:
            f1 = sub.submit([x_circuit(1)], shots=100)
            f2 = sub.submit([x_circuit(2)], shots=200)
            r1, r2 = f1.result(30)[0], f2.result(30)[0]
        self.assertNotEqual(r1.job_id, r2.job_id)
        self.assertEqual((r1.shots, r2.shots), (100, 200))

    def test_split_at_cap(self) -> None:
        with BatchSubmitter(TOKEN, self.server.url, max_circuits_per_job=7) as sub:
            res = sub.submit([x_circuit(b % 16) for b in range(30)]).result(30)
            stats = sub.stats()
        self.assertEqual(stats["jobs_created"], 5)  # ceil(30 / 7), balanced: 6+6+6+6+6
        self.assertEqual(stats["circuits_per_job"]["max"], 6)
        self.assertEqual([r.probabilities for r in res], [{b % 16: 1.0} for b in range(30)])

    def test_no_batch_api_one_job_per_circuit(self) -> None:
        with BatchSubmitter(TOKEN, self.server.url, use_batch_api=False) as sub:
            res = sub.submit([x_circuit(b) for b in range(5)]).result(30)
        self.assertEqual(len({r.job_id for r in res}), 5)
        self.assertTrue(all(r.child_job_id is None for r in res))

    def test_submit_async_inside_asyncio_run(self) -> None:
        with BatchSubmitter(TOKEN, self.server.url) as sub:

            async def main() -> list:
                return await asyncio.gather(*(sub.submit_async([x_circuit(b)]) for b in range(6)))

            out = asyncio.run(main())
        self.assertEqual([r[0].probabilities for r in out], [{b: 1.0} for b in range(6)])

    def test_blocking_result_while_caller_loop_runs(self) -> None:
        """Like Jupyter: a loop is running in this thread; submit().result() still works."""
        with BatchSubmitter(TOKEN, self.server.url) as sub:

            async def cell() -> tuple[list, list]:
                blocking = sub.submit([x_circuit(3)]).result(30)  # blocking call inside a loop
                # ...and from a worker thread while this loop keeps running
                loop = asyncio.get_running_loop()
                threaded = await loop.run_in_executor(None, lambda: sub.submit([x_circuit(5)]).result(30))
                return blocking, threaded

            out, threaded = asyncio.run(cell())
        self.assertEqual(out[0].probabilities, {3: 1.0})
        self.assertEqual(threaded[0].probabilities, {5: 1.0})

    def test_many_threads(self) -> None:
        with BatchSubmitter(TOKEN, self.server.url, batch_window=0.02) as sub:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                outs = list(pool.map(lambda b: sub.submit([x_circuit(b % 16)] * 3).result(30), range(40)))
        for b, res in enumerate(outs):
            self.assertEqual([r.probabilities for r in res], [{b % 16: 1.0}] * 3)

    def test_cancel_before_send(self) -> None:
        with BatchSubmitter(TOKEN, self.server.url, batch_window=0.5) as sub:
            before = len(self.server.jobs)
            fut = sub.submit([x_circuit(1)])
            self.assertTrue(sub.cancel(fut))
            other = sub.submit([x_circuit(2)])
            self.assertEqual(other.result(30)[0].probabilities, {2: 1.0})
            stats = sub.stats()
        self.assertTrue(fut.cancelled())
        self.assertEqual(stats["jobs_created"], 1)
        job = list(self.server.jobs.values())[before]
        self.assertEqual(len(job["circuits"]), 1)  # the cancelled circuit was not sent

    def test_cancel_async_task(self) -> None:
        self.server.mode = "never_done"
        with BatchSubmitter(TOKEN, self.server.url, max_queue_wait_time=30) as sub:

            async def main() -> None:
                task = asyncio.ensure_future(sub.submit_async([x_circuit(1)]))
                await asyncio.sleep(0.3)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task

            asyncio.run(main())
            sub.close(wait=False)

    def test_queue_timeout_then_retrieve(self) -> None:
        self.server.mode = "never_done"
        with BatchSubmitter(TOKEN, self.server.url, max_queue_wait_time=0.3) as sub:
            fut = sub.submit([x_circuit(5), x_circuit(6)])
            with self.assertRaises(QueueTimeoutError) as ctx:
                fut.result(30)
            self.assertEqual(len(ctx.exception.job_ids), 1)
            self.assertEqual(sub.stats()["unfinished_jobs"], ctx.exception.job_ids)
            self.server.mode = "ok"
            (res,) = sub.retrieve(ctx.exception.job_ids, timeout=30)
        self.assertEqual([r.probabilities for r in res], [{5: 1.0}, {6: 1.0}])
        self.assertEqual([r.circuit_index for r in res], [0, 1])

    def test_job_failed(self) -> None:
        self.server.mode = "job_failed"
        with BatchSubmitter(TOKEN, self.server.url) as sub:
            with self.assertRaises(IonQJobFailedError) as ctx:
                sub.submit([x_circuit(1), x_circuit(2)]).result(30)
        self.assertIn("boom", str(ctx.exception))

    def test_closed_submitter_rejects(self) -> None:
        sub = BatchSubmitter(TOKEN, self.server.url)
        sub.close()
        with self.assertRaises(Exception):
            sub.submit([x_circuit(1)])


class TestMalformedResponses(unittest.TestCase):
    """Malformed or inconsistent answers become IonQResponseError."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = MiniServer().__enter__()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.__exit__(None, None, None)

    def _expect(self, mode: str, circuits: list[dict]) -> IonQResponseError:
        self.server.mode = mode
        with BatchSubmitter(TOKEN, self.server.url, max_retries=1) as sub:
            with self.assertRaises(IonQResponseError) as ctx:
                sub.submit(circuits).result(30)
        return ctx.exception

    def test_truncated_json(self) -> None:
        err = self._expect("truncated_json", [x_circuit(1)])
        self.assertIn("malformed JSON", str(err))

    def test_wrong_child_count(self) -> None:
        err = self._expect("wrong_child_count", [x_circuit(1), x_circuit(2), x_circuit(3)])
        self.assertIn("child jobs for 3 circuits", str(err))

    def test_wrong_qubit_count(self) -> None:
        err = self._expect("wrong_qubits", [x_circuit(1), x_circuit(2)])
        self.assertIn("qubit", str(err))

    def test_result_keys_not_children(self) -> None:
        err = self._expect("wrong_result_keys", [x_circuit(1), x_circuit(2)])
        self.assertIn("child job ids", str(err))

    def test_children_out_of_order(self) -> None:
        err = self._expect("swapped_children", [x_circuit(1), x_circuit(2)])
        self.assertIn("out of order", str(err))

    def test_unreadable_create_response(self) -> None:
        # The job was created but the answer is garbage: it is adopted via its
        # submission id, never sent twice.
        self.server.mode = "bad_create"
        before = len(self.server.jobs)
        with BatchSubmitter(TOKEN, self.server.url) as sub:
            fut = sub.submit([x_circuit(1), x_circuit(2)])
            res = fut.result(30)
            stats = sub.stats()
        self.assertEqual(len(self.server.jobs), before + 1)
        self.assertEqual(stats["jobs_adopted"], 1)
        self.assertEqual([r.probabilities for r in res], [{1: 1.0}, {2: 1.0}])


class TestSecrets(unittest.TestCase):
    """401 handling; the token never leaks into messages, reprs or logs."""

    def test_wrong_key(self) -> None:
        log = io.StringIO()
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(name)s %(message)s %(args)s"))
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            with MiniServer(api_key="the-right-key") as srv:
                with BatchSubmitter(TOKEN, srv.url) as sub:
                    text = repr(sub) + repr(sub._http)
                    with self.assertRaises(IonQAuthenticationError) as ctx:
                        sub.submit([x_circuit(1)]).result(30)
                    text += str(sub.stats())
                with BatchSubmitter("the-right-key", srv.url) as sub:
                    self.assertEqual(sub.submit([x_circuit(1)]).result(30)[0].probabilities, {1: 1.0})
                self.assertIn(f"apiKey {TOKEN}", srv.seen_auth)  # it was sent...
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
        err = ctx.exception
        self.assertEqual(err.status, 401)
        self.assertIn("invalid API key", str(err))
        self.assertIsNone(err.__cause__)
        for blob in (str(err), repr(err), text, log.getvalue()):  # ...and never shown
            self.assertNotIn(TOKEN, blob)
            self.assertNotIn("the-right-key", blob)

    def test_refuses_plain_http_to_remote_host(self) -> None:
        with self.assertRaises(ValueError):
            IonQHttpClient(TOKEN, "http://example.com/v0.4")
        IonQHttpClient(TOKEN, "http://example.com/v0.4", allow_insecure_http=True)
        IonQHttpClient(TOKEN, "http://localhost:1/v0.4")
        self.assertNotIn(TOKEN, repr(IonQHttpClient(TOKEN, "https://api.ionq.co/v0.4")))


class TestCounts(unittest.TestCase):
    """Counts match qiskit-ionq's construction."""

    def test_sampler_matches_qiskit_ionq(self) -> None:
        from qiskit_ionq.ionq_job import _build_counts

        probs = {"0": 0.25, "3": 0.5, "5": 0.25}
        ref, _ = _build_counts(probs, 3, [0, 1, 2], 1000, use_sampler=True, sampler_seed=11)
        ours = build_counts({int(k): v for k, v in probs.items()}, 1000, use_sampler=True, sampler_seed=11)
        self.assertEqual({format(k, "03b"): v for k, v in ours.items()}, ref)
        self.assertEqual(sum(ours.values()), 1000)

    def test_rounding_sums_to_shots(self) -> None:
        probs = {0: 1 / 3, 1: 1 / 3, 2: 1 / 3}
        counts = build_counts(probs, 100, use_sampler=False)
        self.assertEqual(sum(counts.values()), 100)
        self.assertTrue(all(33 <= c <= 34 for c in counts.values()))
        self.assertEqual(build_counts({0: 0.5, 1: 0.5}, 10, use_sampler=False), {0: 5, 1: 5})


class TestWireFormat(unittest.TestCase):
    """Our job bodies have the shape qiskit-ionq sends (the official service accepts)."""

    def test_payload_matches_qiskit_ionq(self) -> None:
        from qiskit import QuantumCircuit
        from qiskit_ionq import IonQProvider
        from qiskit_ionq.helpers import qiskit_to_ionq

        from qstore_qiskit.client.records import Item as _Item, Job as _Job, Request as _Request

        qcs = []
        for b in range(2):
            qc = QuantumCircuit(2, name=f"c{b}")
            qc.x(b)
            qc.measure_all()
            qcs.append(qc)
        with MiniServer() as srv, mock.patch.dict(os.environ, {"IONQ_API_URL": srv.url}):
            # IONQ_API_URL: qiskit-ionq looks a backend's qubit count up there, not in IonQ's cloud.
            backend = IonQProvider("k", url=srv.url).get_backend("simulator")
            with warnings_ignored():
                theirs = json.loads(qiskit_to_ionq(qcs, backend, {"shots": 100}))
            with BatchSubmitter("k", srv.url) as sub:
                fut = concurrent.futures.Future()
                settings = {"backend": "simulator", "shots": 100, "gateset": "qis", "noise": None,
                            "metadata": {}, "sampler_seed": None, "name": None}
                bodies = [{"qubits": 2, "circuit": c["circuit"]} for c in theirs["input"]["circuits"]]
                req = _Request(bodies, (), settings, fut, None, {}, 0.0)
                ours = sub._runner._payload(_Job("sid", settings, [_Item(req, 0), _Item(req, 1)]))
        self.assertLessEqual(set(ours), set(theirs))
        for key in ("type", "backend", "shots"):
            self.assertEqual(ours[key], theirs[key])
        self.assertEqual(set(ours["input"]), set(theirs["input"]))
        self.assertEqual(ours["input"]["qubits"], theirs["input"]["qubits"])
        self.assertEqual([set(c) for c in ours["input"]["circuits"]], [set(c) for c in theirs["input"]["circuits"]])
        self.assertEqual([c["circuit"] for c in ours["input"]["circuits"]],
                         [c["circuit"] for c in theirs["input"]["circuits"]])
        self.assertTrue(all(isinstance(v, str) for v in ours["metadata"].values()))
        self.assertEqual(ours["noise"]["model"], theirs["noise"]["model"])


def warnings_ignored():
    """Silence qiskit-ionq's network warnings (no real IonQ host here)."""
    import warnings

    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")

    class _Exit:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            ctx.__exit__(*exc)

    return _Exit()


if __name__ == "__main__":
    unittest.main()


class TestRequestTags(unittest.TestCase):
    def test_tags_are_random_hex_and_distinct(self):
        from qstore_qiskit.client.records import _RandomTags

        tags = _RandomTags()
        drawn = [tags() for _ in range(3 * _RandomTags._PER_FILL + 5)]  # across refills
        self.assertTrue(all(len(t) == 12 and int(t, 16) >= 0 for t in drawn))
        self.assertEqual(len(set(drawn)), len(drawn))

    def test_forked_child_draws_its_own_tags(self):
        import os

        from qstore_qiskit.client.records import _new_tag

        if not hasattr(os, "fork"):
            self.skipTest("no fork")
        _new_tag()  # a buffer the child must not reuse
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(read)
            os.write(write, _new_tag().encode())
            os._exit(0)
        os.close(write)
        child = os.read(read, 64).decode()
        os.close(read)
        os.waitpid(pid, 0)
        self.assertNotEqual(child, _new_tag())
        self.assertEqual(len(child), 12)

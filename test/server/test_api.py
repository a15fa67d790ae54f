"""REST surface, profiles, capacity limits and the job log."""

from __future__ import annotations

import dataclasses
import datetime
import time
import unittest
import requests
from qiskit_ionq.ionq_client import IonQClient

from qstore_qiskit.server import PROFILES, LocalServer, ServerConfig, create_app
from qstore_qiskit.server.app import STATE
from qstore_qiskit.server.qasm import qasm3_available

from .helpers import http
from .test_errors import bell_body
from .test_faults import wait_final

GHZ3 = [{"gate": "h", "targets": [0]}, {"gate": "cnot", "control": 0, "target": 1},
        {"gate": "x", "targets": [2], "controls": [1]}]


def multi_body(n: int = 3, **extra):
    circuits = []
    for i in range(n):
        gates = [{"gate": "x", "targets": [q]} for q in range(3) if (i >> q) & 1]
        circuits.append({"name": f"c{i}", "circuit": gates})
    body = {"type": "ionq.multi-circuit.v1", "backend": "simulator", "shots": 50,
            "input": {"gateset": "qis", "qubits": 3, "circuits": circuits}}
    body.update(extra)
    return body


class TestRestSurface(unittest.TestCase):
    """Jobs, results, listing, cancel/delete, backends, v0.3 paths."""

    @classmethod
    def setUpClass(cls):
        cls.srv = LocalServer(seed=3).start()
        cls.client = IonQClient("any", cls.srv.url)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def create(self, body):
        status, _, payload = http("POST", self.srv.url + "/jobs", body=body, key="any")
        self.assertEqual(status, 201, payload)  # documented: 201 {id, status, session_id}
        self.assertEqual(set(payload), {"id", "status", "session_id"})
        return payload["id"]

    def test_job_record_shape(self):
        meta = {"submission_id": "shape-1", "nested": '{"a": [1, 2]}', "s": "x"}
        job_id = self.create(bell_body(metadata=meta, name="bell"))
        record = self.client.retrieve_job(job_id)
        self.assertEqual(record["id"], job_id)
        self.assertEqual(record["status"], "completed")
        self.assertEqual(record["metadata"], meta)  # echoed unchanged
        self.assertEqual(record["type"], "ionq.circuit.v1")
        self.assertEqual(record["stats"]["qubits"], 2)
        self.assertEqual(record["stats"]["circuits"], 1)
        self.assertEqual(record["stats"]["gate_counts"], {"1q": 1, "2q": 1})
        self.assertIsNone(record["child_job_ids"])
        url = record["results"]["probabilities"]["url"]
        self.assertEqual(url, f"/v0.4/jobs/{job_id}/results/probabilities")
        probs = self.client.get_results(url)
        self.assertEqual(set(probs), {"0", "3"})
        self.assertAlmostEqual(probs["0"], 0.5)
        for key in ("submitted_at", "started_at", "completed_at"):
            datetime.datetime.fromisoformat(record[key].replace("Z", "+00:00"))

    def test_multicircuit_children_in_order(self):
        job_id = self.create(multi_body(5, metadata={"submission_id": "multi-1"}))
        record = self.client.retrieve_job(job_id)
        children = record["child_job_ids"]
        self.assertEqual(len(children), 5)
        self.assertEqual(record["stats"]["circuits"], 5)
        results = self.client.get_results(record["results"]["probabilities"]["url"])
        self.assertEqual(list(results), children)  # submission order
        for i, child in enumerate(children):
            self.assertEqual(results[child], {str(i): 1.0})  # circuit i prepares |i>
            child_record = self.client.retrieve_job(child)
            self.assertEqual(child_record["parent_job_id"], job_id)
            self.assertIsNone(child_record["metadata"])
            self.assertEqual(child_record["name"], f"c{i}")
            own = self.client.get_results(child_record["results"]["probabilities"]["url"])
            self.assertEqual(own, {str(i): 1.0})
        status, _, listing = http("GET", f"{self.srv.url}/jobs?parent_job_id={job_id}",
                                  key="any")
        self.assertEqual(status, 200)
        self.assertEqual(sorted(j["id"] for j in listing["jobs"]), sorted(children))
        self.assertEqual({j["name"] for j in listing["jobs"]}, {f"c{i}" for i in range(5)})

    def test_native_gateset_job(self):
        body = bell_body()
        body["input"] = {"gateset": "native", "qubits": 2, "circuit": [
            {"gate": "ms", "targets": [0, 1], "phases": [0, 0], "angle": 0.25},
            {"gate": "gpi2", "target": 0, "phase": 0.25},
            {"gate": "zz", "targets": [0, 1], "angle": 0.125},
            {"gate": "gpi", "target": 1, "phase": 0.0},
        ]}
        probs = self.client.get_results(f"/v0.4/jobs/{self.create(body)}/results/probabilities")
        self.assertAlmostEqual(sum(probs.values()), 1.0)

    def test_list_by_metadata_and_pagination(self):
        ids = [self.create(bell_body(metadata={"submission_id": f"page-{i}", "batch": "p"}))
               for i in range(5)]
        status, _, payload = http("GET", self.srv.url + "/jobs?metadata.submission_id=page-3",
                                  key="any")
        self.assertEqual(status, 200)
        self.assertEqual([j["id"] for j in payload["jobs"]], [ids[3]])
        self.assertEqual(payload["jobs"][0]["metadata"]["submission_id"], "page-3")
        status, _, payload = http("GET", self.srv.url + "/jobs?metadata[batch]=p&limit=2",
                                  key="any")
        seen = [j["id"] for j in payload["jobs"]]
        while "next" in payload:  # absent on the last page (cirq-ionq stops on that)
            _, _, payload = http(
                "GET", f"{self.srv.url}/jobs?metadata[batch]=p&limit=2&next={payload['next']}",
                key="any")
            seen += [j["id"] for j in payload["jobs"]]
        self.assertEqual(seen, ids[::-1])  # newest first
        _, _, payload = http("GET", f"{self.srv.url}/jobs?ids={ids[0]},{ids[1]},unknown",
                             key="any")
        self.assertEqual([j["id"] for j in payload["jobs"]], [ids[1], ids[0]])
        _, _, payload = http("GET", self.srv.url + "/jobs?status=failed", key="any")
        self.assertTrue(all(j["status"] == "failed" for j in payload["jobs"]))
        status, _, payload = http("GET", self.srv.url + "/jobs?limit=0", key="any")
        self.assertEqual(status, 400)

    def test_job_log_has_no_duplicate_submission_ids(self):
        for i in range(3):
            self.create(bell_body(metadata={"submission_id": f"log-{i}"}))
        jobs = self.srv.jobs()
        for record in jobs:
            self.assertTrue(set(record) >= {"id", "status", "metadata", "circuits", "created"})
        sub_ids = [j["metadata"]["submission_id"] for j in jobs
                   if j["metadata"] and "submission_id" in j["metadata"]]
        self.assertEqual(len(sub_ids), len(set(sub_ids)))

    def test_delete_and_bulk(self):
        ids = [self.create(bell_body()) for _ in range(3)]
        self.assertEqual(self.client.delete_job(ids[0])["status"], "deleted")
        logged = {j["id"]: j for j in self.srv.jobs()}
        self.assertTrue(logged[ids[0]]["deleted"])  # the job log keeps deleted jobs
        self.assertFalse(logged[ids[1]]["deleted"])
        status, _, _ = http("GET", f"{self.srv.url}/jobs/{ids[0]}", key="any")
        self.assertEqual(status, 404)
        status, _, payload = http("DELETE", self.srv.url + "/jobs", body={"ids": ids[1:]},
                                  key="any")
        self.assertEqual(status, 200, payload)
        self.assertEqual(sorted(payload["ids"]), sorted(ids[1:]))
        status, _, payload = http("PUT", self.srv.url + "/jobs/status/cancel",
                                  body={"ids": ["nope"]}, key="any")
        self.assertEqual(status, 404)

    def test_dry_run(self):
        job_id = self.create(bell_body(dry_run=True))
        record = self.client.retrieve_job(job_id)
        self.assertTrue(record["dry_run"])
        self.assertIsNone(record["results"])

    def test_noisy_job_histogram_and_shots(self):
        job_id = self.create(bell_body(noise={"model": "aria-1", "seed": 4}, shots=300))
        record = self.client.retrieve_job(job_id)
        hist = self.client.get_results(record["results"]["histogram"]["url"])
        shots = self.client.get_results(record["results"]["shots"]["url"])
        self.assertEqual(sum(hist.values()), 300)
        self.assertEqual(len(shots), 300)
        self.assertEqual({str(s) for s in shots}, set(hist))

    @unittest.skipUnless(qasm3_available(), "needs qiskit-qasm3-import")
    def test_ideal_job_sampled_histogram_is_seeded(self):
        hists = []
        for _ in range(2):
            with LocalServer(seed=42) as srv:
                job_id = http("POST", srv.url + "/jobs", body=bell_body(shots=4000),
                              key="k")[2]["id"]
                record = srv.job_record(job_id)
                hists.append(http("GET", srv.base_url + record["results"]["histogram"]["url"],
                                  key="k")[2])
        self.assertEqual(hists[0], hists[1])
        self.assertEqual(set(hists[0]), {"0", "3"})
        self.assertEqual(sum(hists[0].values()), 4000)
        self.assertLess(abs(hists[0]["0"] / 4000 - 0.5), 5 * (0.25 / 4000) ** 0.5)

    def test_qasm3_job_artifact(self):
        body = {"type": "ionq.qasm3.v1", "backend": "simulator", "shots": 100,
                "metadata": {"m": "1"},
                "input": {"qubits": 2, "data": (
                    'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[1] a; bit[1] b;'
                    "x q[0]; a[0] = measure q[0]; reset q[0]; b[0] = measure q[0];")}}
        job_id = self.create(body)
        record = self.client.retrieve_job(job_id)
        self.assertEqual(record["type"], "ionq.qasm3.v1")
        artifact_id = record["results"]["ionq.result.shots.json.v2"]["id"]
        payload = self.client.get_artifact(job_id, artifact_id)
        self.assertEqual(len(payload["shots"]), 100)
        self.assertEqual(payload["shots"][0]["registers"], {"a": [1], "b": [0]})
        probs = self.client.get_results(record["results"]["probabilities"]["url"])
        self.assertEqual(probs, {"1": 1.0})

    def test_v03_paths(self):
        job_id = self.create(bell_body(metadata={"k": "v"}))
        base = self.srv.base_url + "/v0.3"
        status, _, record = http("GET", f"{base}/jobs/{job_id}", key="any")
        self.assertEqual(status, 200)
        self.assertEqual(record["results_url"], f"/v0.3/jobs/{job_id}/results")
        self.assertEqual(record["target"], "simulator")
        self.assertEqual(record["metadata"], {"k": "v"})
        status, _, results = http("GET", self.srv.base_url + record["results_url"], key="any")
        self.assertEqual(status, 200)
        self.assertEqual(set(results), {"0", "3"})
        v03_body = {"target": "simulator", "shots": 10,
                    "input": {"format": "ionq.circuit.v0", "qubits": 1,
                              "circuit": [{"gate": "x", "target": 0}]}}
        status, _, created = http("POST", f"{base}/jobs", body=v03_body, key="any")
        self.assertEqual(status, 200, created)  # v0.3 keeps its 200 {id, status, request}
        self.assertIn("request", created)

    def test_backends_and_characterizations(self):
        status, _, backends = http("GET", self.srv.url + "/backends", key="any")
        self.assertEqual(status, 200)
        names = {b["backend"] for b in backends}
        self.assertTrue({"simulator", "qpu.aria-1", "qpu.forte-1"} <= names)
        self.assertEqual(self.client.get_calibration_data("simulator"), [])
        char = self.client.get_latest_calibration("qpu.aria-1")
        self.assertEqual(char.backend, "qpu.aria-1")
        self.assertGreater(char.qubits, 0)
        self.assertTrue(0 < char.median_spam_fidelity <= 1)
        status, _, one = http("GET", f"{self.srv.url}/backends/qpu.aria-1/characterizations/"
                                     f"{char.id}", key="any")
        self.assertEqual(status, 200)
        self.assertEqual(one["id"], char.id)

    def test_estimate(self):
        estimate = self.client.estimate_job(backend="simulator", oneq_gates=10, twoq_gates=5,
                                            qubits=3, shots=100)
        self.assertEqual(estimate.shots, 100)
        self.assertGreaterEqual(estimate.exec_time, 0.0)


class TestProfilesAndLimits(unittest.TestCase):
    """Profiles, latency model, queueing, concurrency cap, rate limit, cancel."""

    def test_profiles(self):
        self.assertEqual(set(PROFILES), {"instant", "cloud", "qpu"})
        instant, cloud = PROFILES["instant"], PROFILES["cloud"]
        self.assertEqual((instant.network_delay, instant.queue_wait), (0.0, 0.0))
        self.assertTrue(instant.inline_execution)
        self.assertIsNone(instant.rate_limit)
        self.assertGreater(cloud.network_delay, 0.0)
        self.assertGreater(cloud.queue_wait, 0.0)
        self.assertGreater(cloud.per_gate_shot_time, 0.0)
        self.assertIsNotNone(cloud.max_running_jobs)
        self.assertIsNotNone(cloud.rate_limit)
        # cloud: a job's round trip + queue is 0.1-0.3 s; 200 circuits in 2 jobs stay fast
        self.assertTrue(0.1 <= cloud.network_delay + cloud.queue_wait <= 0.3)
        self.assertLess(cloud.lower_bound_seconds([200] * 100, 1000), 3.0)
        self.assertEqual(cloud.queue_model, "concurrent")
        # qpu: the cloud profile's request latency and circuit times, its queue wait
        # and job overhead turned into machine time of a fair-share, one-job machine.
        qpu = PROFILES["qpu"]
        self.assertEqual(qpu.queue_model, "fair_share")
        self.assertEqual(qpu.queue_wait, 0.0)
        self.assertAlmostEqual(qpu.job_overhead, cloud.queue_wait + cloud.job_overhead)
        self.assertEqual((qpu.per_circuit_time, qpu.per_shot_time, qpu.rate_limit),
                         (cloud.per_circuit_time, cloud.per_shot_time, cloud.rate_limit))
        with self.assertRaises(ValueError):
            ServerConfig(queue_model="fifo")
        with self.assertRaises(ValueError):
            LocalServer(profile="nope")
        with self.assertRaises(TypeError):
            LocalServer(not_a_field=1)
        with self.assertRaises(ValueError):
            ServerConfig(fault_rate=2.0)
        with self.assertRaises(ValueError):
            ServerConfig(fault_weights={"bogus": 1.0})

    def test_lower_bound_model(self):
        cfg = PROFILES["cloud"]
        with LocalServer(profile="cloud") as srv:
            self.assertEqual(srv.config, dataclasses.replace(cfg, seed=None, api_key=None,
                                                             fault_rate=0.0))
            lb = srv.lower_bound_seconds([100, 50], 1000)
            expected = (cfg.network_delay + cfg.queue_wait + cfg.job_overhead
                        + 2 * cfg.per_circuit_time + 2 * 1000 * cfg.per_shot_time
                        + 150 * 1000 * cfg.per_gate_shot_time)
            self.assertAlmostEqual(lb, expected)
            self.assertLess(srv.lower_bound_seconds([10], 1000), lb)
            self.assertLess(srv.lower_bound_seconds([100, 50], 100), lb)
            with LocalServer() as fast:
                self.assertEqual(fast.lower_bound_seconds([100, 50], 1000), 0.0)

    def test_cloud_lifecycle_and_predictions(self):
        with LocalServer(profile="cloud", queue_wait=1.0, rate_limit=None) as srv:
            status, _, created = http("POST", srv.url + "/jobs", body=bell_body(), key="k")
            self.assertEqual(created["status"], "submitted")
            seen = set()
            early_codes = set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                rec = http("GET", f"{srv.url}/jobs/{created['id']}", key="k")[2]
                seen.add(rec["status"])
                if rec["status"] == "completed":
                    break
                status, _, _ = http("GET", f"{srv.url}/jobs/{created['id']}/results/"
                                           "probabilities", key="k")
                early_codes.add(status)
            # Before completion results answer 404, as IonQ documents ("Job not found or
            # not yet completed"); both official clients fetch only completed jobs.
            self.assertIn(404, early_codes)
            self.assertLessEqual(early_codes, {404, 200})
            self.assertIn("completed", seen)
            self.assertIn("submitted", seen)
            self.assertEqual(rec["predicted_wait_time_ms"], 1000)
            self.assertGreater(rec["predicted_execution_duration_ms"], 0)

    def test_fewer_native_gates_predict_less_time(self):
        def native_body(num_gates):
            gates = [{"gate": "gpi2", "target": i % 2, "phase": (0.1 * i) % 1}
                     for i in range(num_gates)]
            return {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 1000,
                    "input": {"gateset": "native", "qubits": 2, "circuit": gates}}

        with LocalServer(profile="cloud", queue_wait=0.0, rate_limit=None) as srv:
            short = http("POST", srv.url + "/jobs", body=native_body(10), key="k")[2]["id"]
            long_ = http("POST", srv.url + "/jobs", body=native_body(400), key="k")[2]["id"]
            fast = srv.job_record(short)["predicted_execution_duration_ms"]
            slow = srv.job_record(long_)["predicted_execution_duration_ms"]
            self.assertLess(fast, slow)
            cfg = srv.config
            self.assertEqual(slow, round(1000 * cfg.job_execution_seconds([400], 1000)))

    def test_cancel_queued_job(self):
        with LocalServer(profile="cloud", queue_wait=30.0, rate_limit=None) as srv:
            job_id = http("POST", srv.url + "/jobs", body=bell_body(), key="k")[2]["id"]
            client = IonQClient("k", srv.url)
            self.assertEqual(client.cancel_job(job_id)["status"], "canceled")
            self.assertEqual(client.retrieve_job(job_id)["status"], "canceled")
            status, _, body = http("GET", f"{srv.url}/jobs/{job_id}/results/probabilities",
                                   key="k")
            self.assertEqual(status, 404)
            self.assertIn("canceled", body["message"])
            # delete works on an active job too
            other = http("POST", srv.url + "/jobs", body=bell_body(), key="k")[2]["id"]
            self.assertEqual(client.delete_job(other)["status"], "deleted")

    def test_concurrency_cap(self):
        with LocalServer(profile="instant", inline_execution=False, max_running_jobs=1,
                         job_overhead=0.15) as srv:
            ids = [http("POST", srv.url + "/jobs", body=bell_body(), key="k")[2]["id"]
                   for _ in range(3)]
            wait_final(srv)
            intervals = []
            for job_id in ids:
                rec = srv.job_record(job_id)
                start = datetime.datetime.fromisoformat(rec["started_at"][:-1])
                end = datetime.datetime.fromisoformat(rec["completed_at"][:-1])
                intervals.append((start, end))
            intervals.sort()
            for (_, end), (start, _) in zip(intervals, intervals[1:]):
                self.assertLessEqual(end, start)  # never two running at once

    def test_rate_limit_429_with_retry_after(self):
        with LocalServer(rate_limit=0.05, rate_limit_burst=2) as srv:
            codes = []
            headers = None
            for _ in range(4):
                status, hdrs, payload = http("GET", srv.url + "/jobs", key="k")
                codes.append(status)
                if status == 429:
                    headers, body = hdrs, payload
            self.assertEqual(codes, [200, 200, 429, 429])
            self.assertGreaterEqual(int(headers["Retry-After"]), 1)
            self.assertEqual(body["statusCode"], 429)
            self.assertEqual(body["error"], "Too Many Requests")
            self.assertGreaterEqual(srv.stats()["rate_limited"], 1)
            # qiskit-ionq classifies 429 as retriable
            from qiskit_ionq.exceptions import IonQAPIError, IonQRetriableError
            with self.assertRaises(IonQRetriableError):
                IonQAPIError.raise_for_status(requests.get(srv.url + "/jobs", timeout=5))

    def test_stats_and_create_app(self):
        app = create_app(max_qubits=5)
        self.assertEqual(app[STATE].config.max_qubits, 5)
        with LocalServer() as srv:
            http("GET", srv.url + "/jobs", key="k")
            http("GET", srv.url + "/jobs/missing", key="k")
            stats = srv.stats()
            self.assertGreaterEqual(stats["requests"], 2)
            self.assertEqual(stats["by_route_status"]["get_job 404"], 1)
            self.assertIn("faults", stats)
            # The same counters over HTTP, for a server in another process; reading them
            # does not count as a request.
            status, _, remote = http("GET", srv.base_url + "/_qstore/stats", key="k")
            self.assertEqual(status, 200)
            self.assertEqual(remote["requests"], stats["requests"])
            self.assertEqual(srv.stats()["requests"], stats["requests"])
        with LocalServer(api_key="right") as srv:
            status, _, body = http("GET", srv.base_url + "/_qstore/stats", key="wrong")
            self.assertEqual(status, 401)
            self.assertNotIn("right", str(body))

    def test_clean_stop_no_leaked_threads(self):
        import threading

        before = {t.name for t in threading.enumerate()}
        srv = LocalServer(profile="cloud", fault_rate=1.0, seed=1,
                          fault_weights={"slow_response": 1.0}, slow_response_delay=60.0)
        srv.start()
        stalled = threading.Thread(
            target=lambda: self.assertRaises(Exception, requests.get, srv.url + "/jobs",
                                             timeout=30))
        stalled.start()  # a request stalled inside the server while it stops
        while srv.fault_counts()["slow_response"] == 0:
            time.sleep(0.01)
        thread = srv._thread  # pylint: disable=protected-access
        srv.stop()
        self.assertFalse(thread.is_alive())
        stalled.join(30)
        srv.stop()  # idempotent
        time.sleep(0.05)
        leaked = {t.name for t in threading.enumerate()} - before
        self.assertEqual({n for n in leaked if n.startswith("qstore")}, set())


if __name__ == "__main__":
    unittest.main()

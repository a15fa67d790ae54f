"""The Ray gateway on a real local Ray cluster against the real local IonQ-API server.

One small cluster (2 CPUs, loopback only, no dashboard) serves the whole module; every
test starts its own server, so each gets its own gateway (the name derives from the URL)
and its own request counters. The key reaches the Ray processes only through the job's
runtime environment, never through ``os.environ`` of this process (other tests' default
providers read ``IONQ_API_KEY``).
"""

from __future__ import annotations

import os
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'qstore-qiskit[ray]'")

from qstore_qiskit.gateway.identity import NAMESPACE, actor_name, key_fingerprint  # noqa: E402
from qstore_qiskit.gateway.local_ray import init_local_ray  # noqa: E402
from qstore_qiskit.server import LocalServer  # noqa: E402

KEY = "gateway-test-key-" + "7f3a9c" * 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    journal_dir = str(tmp_path_factory.mktemp("gateway-journals"))
    init_local_ray(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        namespace="qstore-gateway-tests",
        runtime_env={"env_vars": {"IONQ_API_KEY": KEY, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}},
    )
    try:
        yield journal_dir
    finally:
        ray.shutdown()


@pytest.fixture
def server(request):
    overrides = getattr(request, "param", {})
    srv = LocalServer(profile="instant", api_key=KEY, seed=3, **overrides)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _gateway(url: str):
    return ray.get_actor(actor_name(url, key_fingerprint(url, KEY)), namespace=NAMESPACE)


def _wait(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@ray.remote(num_cpus=0.25, max_retries=0)
def run_worker(url: str, journal_dir: str, worker: int, circuits: int, shots: int = 64) -> list:
    """Run ``circuits`` basis-state circuits; circuit j of worker w prepares |w*8+j>."""
    from qiskit import QuantumCircuit

    from qstore_qiskit import QStoreProvider

    provider = QStoreProvider(url=url, gateway="ray", gateway_options={"journal_dir": journal_dir})
    backend = provider.get_backend("ionq_simulator")
    batch = []
    for j in range(circuits):
        value = worker * 8 + j
        qc = QuantumCircuit(6, 6, name=f"w{worker}c{j}")
        for q in range(6):
            if value >> q & 1:
                qc.x(q)
        qc.measure(range(6), range(6))
        batch.append(qc)
    result = backend.run(batch, shots=shots, sampler_seed=11).result()
    out = [(result.results[i].header["name"], result.get_counts(i)) for i in range(circuits)]
    provider.close()
    return out


def _expected(worker: int, circuits: int, shots: int = 64) -> list:
    return [(f"w{worker}c{j}", {format(worker * 8 + j, "06b"): shots}) for j in range(circuits)]


def test_results_reach_the_right_worker_and_circuit(cluster, server):
    workers = 4
    refs = [run_worker.remote(server.url, cluster, w, 3 + w % 3) for w in range(workers)]
    outs = ray.get(refs, timeout=120)
    for w, out in enumerate(outs):
        assert out == _expected(w, 3 + w % 3)
    stats = ray.get(_gateway(server.url).stats.remote())
    circuits = sum(3 + w % 3 for w in range(workers))
    assert stats["gateway"]["requests"] == workers
    assert stats["gateway"]["circuits"] == circuits
    assert stats["gateway"]["requests_failed"] == 0
    assert server.stats()["circuits_created"] == circuits  # nothing sent twice


@pytest.mark.parametrize("server", [{"queue_wait": 1.5, "inline_execution": False}], indirect=True)
def test_killed_worker_loses_only_its_own_pending_results(cluster, server):
    victim = run_worker.remote(server.url, cluster, 7, 4)
    gateway = None
    def victim_pending() -> bool:
        nonlocal gateway
        try:
            gateway = gateway or _gateway(server.url)
        except ValueError:  # not created yet
            return False
        return ray.get(gateway.stats.remote())["gateway"]["requests_in_flight"] >= 1

    _wait(victim_pending, what="the victim's request at the gateway")
    survivors = [run_worker.remote(server.url, cluster, w, 2) for w in (1, 2)]
    ray.cancel(victim, force=True)  # kills the worker process while it waits for results
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(victim, timeout=60)
    assert ray.get(survivors, timeout=120) == [_expected(1, 2), _expected(2, 2)]
    # ... and it keeps serving new work.
    assert ray.get(run_worker.remote(server.url, cluster, 3, 2), timeout=120) == _expected(3, 2)
    stats = ray.get(gateway.stats.remote())
    assert stats["gateway"]["requests_failed"] == 0
    assert stats["gateway"]["requests"] == 4


@pytest.mark.parametrize("server", [{"queue_wait": 2.0, "inline_execution": False}], indirect=True)
def test_gateway_restart_recovers_through_the_journal(cluster, server):
    pending = run_worker.remote(server.url, cluster, 5, 3)
    _wait(lambda: server.stats()["jobs_created"] >= 1, what="the job's creation")
    gateway = _gateway(server.url)
    pid = ray.get(gateway.ping.remote())["pid"]
    ray.kill(gateway, no_restart=False)  # Ray restarts it and retries the pending call
    assert ray.get(pending, timeout=120) == _expected(5, 3)
    after = ray.get(gateway.ping.remote())
    assert after["pid"] != pid  # a new gateway process answered
    stats = ray.get(gateway.stats.remote())
    assert stats["gateway"]["requests_recovered"] == 1
    assert stats["gateway"]["circuits_recovered"] == 3
    assert stats["gateway"]["circuits_resubmitted"] == 0
    assert server.stats()["jobs_created"] == 1  # recovered from the service, not re-sent


@ray.remote(num_cpus=0.25, max_retries=0)
def run_and_record_sends(url: str, journal_dir: str) -> list[bytes]:
    """Run one circuit through the gateway, recording every Ray call this worker sends."""
    import ray.actor
    from ray import cloudpickle

    sent: list[bytes] = []
    originals = (ray.actor.ActorMethod._remote, ray.actor.ActorClass._remote)

    def method_remote(self, args=None, kwargs=None, **options):
        sent.append(cloudpickle.dumps((args, kwargs, options)))
        return originals[0](self, args=args, kwargs=kwargs, **options)

    def class_remote(self, args=None, kwargs=None, **options):
        sent.append(cloudpickle.dumps((args, kwargs, options)))
        return originals[1](self, args=args, kwargs=kwargs, **options)

    ray.actor.ActorMethod._remote, ray.actor.ActorClass._remote = method_remote, class_remote
    try:
        ray.get(run_worker.remote(url, journal_dir, 0, 1))  # warm: nothing recorded there
        from qiskit import QuantumCircuit

        from qstore_qiskit import QStoreProvider

        backend = QStoreProvider(url=url, gateway="ray", gateway_options={"journal_dir": journal_dir}).get_backend(
            "ionq_simulator"
        )
        qc = QuantumCircuit(1, 1)
        qc.x(0)
        qc.measure(0, 0)
        assert backend.run(qc, shots=10).result().get_counts() == {"1": 10}
    finally:
        ray.actor.ActorMethod._remote, ray.actor.ActorClass._remote = originals
    return sent


def test_the_key_is_not_in_what_workers_send(cluster, server):
    sent = ray.get(run_and_record_sends.remote(server.url, cluster), timeout=120)
    assert sent, "recorded no calls: the recording hook did not run"
    fingerprint = key_fingerprint(server.url, KEY).encode()
    assert any(fingerprint in blob for blob in sent)  # the recording does see the arguments
    for blob in sent:
        assert KEY.encode() not in blob
    name = actor_name(server.url, fingerprint.decode())
    assert KEY not in name and server.url not in name


@ray.remote(num_cpus=0.25, max_retries=0)
def run_with_token(url: str, journal_dir: str, token: str) -> str:
    # The gateway client directly: a provider would refuse the wrong key at
    # get_backend (GET /whoami) before the gateway is asked at all.
    from qstore_qiskit.gateway import GatewayClient

    client = GatewayClient(url, token, journal_dir=journal_dir)
    try:
        client.submit([{"qubits": 1, "circuit": [{"gate": "gpi2", "target": 0, "phase": 0.0}]}],
                      shots=10).result(timeout=60)
    except Exception as exc:  # noqa: BLE001 - the message is the test's subject
        return str(exc)
    finally:
        client.close()
    return "no error"


def test_a_gateway_whose_key_differs_from_the_workers_refuses_to_start(cluster, server):
    wrong = "another-key-" + "0" * 20
    message = ray.get(run_with_token.remote(server.url, cluster, wrong), timeout=120)
    assert "is not the key this worker uses" in message
    assert wrong not in message and KEY not in message


@ray.remote(num_cpus=0.25, max_retries=0)
def estimate(url: str, journal_dir: str, gateway: bool) -> list[float]:
    """Qiskit's BackendEstimatorV2 over a qstore backend, unchanged but for ``gateway``."""
    import numpy as np
    from qiskit.circuit.library import real_amplitudes
    from qiskit.primitives import BackendEstimatorV2
    from qiskit.quantum_info import SparsePauliOp

    from qstore_qiskit import QStoreProvider

    options = {"gateway": "ray", "gateway_options": {"journal_dir": journal_dir}} if gateway else {}
    backend = QStoreProvider(url=url, **options).get_backend("ionq_simulator", template_cache_dir=False)
    estimator = BackendEstimatorV2(backend=backend, options={"default_precision": 1 / 32, "seed_simulator": 9})
    ansatz = real_amplitudes(3, reps=1)
    values = np.linspace(0.1, 1.2, ansatz.num_parameters * 3).reshape(3, -1)
    result = estimator.run([(ansatz, SparsePauliOp(["ZZI", "IXX"]), values)]).result()
    return [float(v) for v in np.asarray(result[0].data.evs).ravel()]


def test_primitives_give_the_same_values_through_the_gateway(cluster, server):
    alone, shared = ray.get(
        [estimate.remote(server.url, cluster, False), estimate.remote(server.url, cluster, True)], timeout=120
    )
    assert len(alone) == 3
    assert shared == alone  # same circuits, same sampler seed: the same counts


@pytest.mark.parametrize("server", [{"queue_wait": 2.0, "inline_execution": False}], indirect=True)
def test_a_gateway_killed_for_good_is_replaced_and_recovers(cluster, server):
    pending = run_worker.remote(server.url, cluster, 4, 2)
    _wait(lambda: server.stats()["jobs_created"] >= 1, what="the job's creation")
    gateway = _gateway(server.url)
    ray.kill(gateway, no_restart=True)  # no Ray restart: the worker's client starts a new one
    assert ray.get(pending, timeout=120) == _expected(4, 2)
    stats = ray.get(_gateway(server.url).stats.remote())
    assert stats["gateway"]["requests_recovered"] == 1
    assert server.stats()["jobs_created"] == 1  # recovered, not re-sent


@ray.remote(num_cpus=0.25, max_retries=0)
def run_bound(url: str, journal_dir: str, cache_dir: str, worker: int) -> tuple[int, list]:
    """Two calls of bound circuits of one structure (other values per worker and call)."""
    import numpy as np
    from qiskit.circuit.library import real_amplitudes

    from qstore_qiskit import QStoreProvider

    provider = QStoreProvider(url=url, gateway="ray", gateway_options={"journal_dir": journal_dir})
    backend = provider.get_backend("ionq_simulator", template_cache_dir=cache_dir)
    ansatz = real_amplitudes(3, reps=1)
    ansatz.measure_all()
    rng = np.random.default_rng(worker)
    counts = []
    for _ in range(2):
        bound = [ansatz.assign_parameters(rng.uniform(-3, 3, ansatz.num_parameters)) for _ in range(2)]
        counts += backend.run(bound, shots=32, sampler_seed=4).result().get_counts()
    compiles = backend.performance_stats()["circuit_cache"]["compiles"]
    provider.close()
    return compiles, counts


def test_workers_compile_each_structure_once_for_the_cluster(cluster, server, tmp_path):
    cache_dir = str(tmp_path / "templates")
    outs = ray.get([run_bound.remote(server.url, cluster, cache_dir, w) for w in range(3)], timeout=120)
    # One structure: one (lifted) compile for all workers, none of them compiling the
    # first values exactly (adaptive lifting is off behind the gateway).
    assert sum(compiles for compiles, _ in outs) == 1
    for _, counts in outs:
        assert len(counts) == 4 and all(sum(c.values()) == 32 for c in counts)



# ---------------------------------------------------------------- job ids before results
PENDING = {"submitted", "ready", "started", "running"}


def _basis(value: int, width: int = 3):
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(width, width, name=f"b{value}")
    for q in range(width):
        if value >> q & 1:
            qc.x(q)
    qc.measure(range(width), range(width))
    return qc


def _results_requests(server) -> int:
    """Result fetches the server has answered so far (any job)."""
    return int(server.stats()["by_route"].get("get_probabilities", 0))


@pytest.mark.parametrize(
    "server", [{"queue_wait": 3.0, "inline_execution": False, "max_circuits_per_job": 4}], indirect=True
)
def test_job_id_names_the_ionq_jobs_before_results(cluster, server):
    from qiskit.providers import JobStatus

    from qstore_qiskit import QStoreProvider

    provider = QStoreProvider(token=KEY, url=server.url, gateway="ray", gateway_options={"journal_dir": cluster})
    try:
        backend = provider.get_backend("ionq_simulator")
        fetched = _results_requests(server)
        job = backend.run([_basis(v) for v in range(6)], shots=20)  # 6 circuits, 4 per job
        job_id = job.job_id()
        assert _results_requests(server) == fetched  # no result was asked for
        ids = job.ionq_job_ids()
        assert job_id.split("+") == ids and len(ids) == 2  # two whole IonQ jobs, in order
        created = [j["id"] for j in server.jobs()]
        assert sorted(created) == sorted(ids)  # exactly the jobs the server created
        for jid in ids:
            assert server.job_record(jid)["status"] in PENDING
        assert job.status() in (JobStatus.QUEUED, JobStatus.RUNNING)
        counts = job.result().get_counts()
        assert counts == [{format(v, "03b"): 20} for v in range(6)]
        assert job.job_id() == job_id and job.result().job_id == job_id
        assert job.status() is JobStatus.DONE
        # ... and the id retrieves the same results (a fresh provider: nothing cached).
        fresh = QStoreProvider(token=KEY, url=server.url)
        try:
            retrieved = fresh.get_backend("ionq_simulator").retrieve_job(job_id)
            assert retrieved.job_id() == job_id
            assert retrieved.result().get_counts() == counts
        finally:
            fresh.close()
        assert server.stats()["jobs_created"] == 2  # nothing sent twice
    finally:
        provider.close()


@pytest.mark.parametrize("server", [{"queue_wait": 3.0, "inline_execution": False}], indirect=True)
def test_placements_only_to_the_request_holder(cluster, server):
    import secrets

    from qstore_qiskit.gateway import GatewayClient

    client = GatewayClient(server.url, KEY, journal_dir=cluster)
    try:
        body = {"qubits": 1, "circuit": [{"gate": "x", "target": 0}]}
        future = client.submit([body, body], shots=10, gateset="qis")
        placements = future.jobs_created.result(timeout=30)
        assert not future.done()  # ids before results
        assert [(p.position, p.size) for p in placements] == [(0, 2), (1, 2)]
        assert {p.job_id for p in placements} == {j["id"] for j in server.jobs()}
        # Another caller's id gets nothing: the gateway answers placements by request id only.
        probe = _gateway(server.url).created.remote(secrets.token_urlsafe(32))
        with pytest.raises(ray.exceptions.GetTimeoutError):
            ray.get(probe, timeout=1.0)
        ray.cancel(probe)
        assert [r.counts for r in future.result(timeout=60)] == [{1: 10}] * 2
    finally:
        client.close()


@pytest.mark.parametrize("server", [{"network_delay": 2.0}], indirect=True)
def test_a_request_cancelled_before_its_jobs_exist_cancels_job_id(cluster, server):
    from qiskit.providers import JobError, JobStatus

    from qstore_qiskit import QStoreProvider

    provider = QStoreProvider(token=KEY, url=server.url, gateway="ray", gateway_options={"journal_dir": cluster})
    try:
        job = provider.get_backend("ionq_simulator").run(_basis(5), shots=10)
        assert job.status() is JobStatus.INITIALIZING  # POST /jobs takes 2 s: no IonQ job yet
        assert job.cancel()
        with pytest.raises(JobError, match="cancelled before its IonQ jobs were created"):
            job.job_id()
        assert job.status() is JobStatus.CANCELLED
    finally:
        provider.close()


def test_a_request_refused_by_the_service_fails_its_placements(cluster, server):
    from qstore_qiskit.client import IonQClientError
    from qstore_qiskit.gateway import GatewayClient

    client = GatewayClient(server.url, KEY, journal_dir=cluster)
    try:
        bad = {"qubits": 1, "circuit": [{"gate": "no-such-gate", "target": 0}]}
        future = client.submit([bad], shots=10, gateset="qis")
        # The service's 400 reaches both futures. (Ray cannot rebuild IonQRequestError
        # from its pickle today, so both carry it as Ray's UnserializableException,
        # whose text keeps the message.)
        with pytest.raises((IonQClientError, ray.exceptions.RayError)) as created_error:
            future.jobs_created.result(timeout=60)
        with pytest.raises((IonQClientError, ray.exceptions.RayError)) as result_error:
            future.result(timeout=60)
        assert type(created_error.value) is type(result_error.value)
        assert "unknown gate 'no-such-gate'" in str(created_error.value)
        assert server.stats()["jobs_created"] == 0
    finally:
        client.close()


def test_a_round_split_into_concurrent_jobs_reaches_every_caller(cluster, server):
    from qstore_qiskit.gateway import GatewayClient, start_gateway

    # One round of the 4 callers: release="round", and their first calls (newcomers) wait
    # for each other until none has come for 2 s (not 0.3 s: on a loaded machine the 4
    # calls may reach the gateway more than 0.3 s apart), within a 10 s window.
    start_gateway(server.url, KEY, journal_dir=cluster, round_jobs=3, release="round", gather_window=10.0,
                  newcomer_quiet=2.0)
    clients = [GatewayClient(server.url, KEY) for _ in range(4)]  # 4 callers, one round
    for client in clients:
        client._actor()  # look the gateway up first: the 4 calls then go out within milliseconds
    try:
        # Caller c's circuit j prepares |12c + j> on 6 qubits (qis gates), 12 per caller.
        def body(value: int) -> dict:
            return {"qubits": 6, "circuit": [{"gate": "x", "target": q} for q in range(6) if value >> q & 1]}

        futures = [
            client.submit([body(12 * c + j) for j in range(12)], shots=10, gateset="qis")
            for c, client in enumerate(clients)
        ]
        outs = [f.result(timeout=120) for f in futures]
        placements = [f.jobs_created.result(timeout=60) for f in futures]
    finally:
        for client in clients:
            client.close()
    for c, out in enumerate(outs):
        assert [(r.circuit_index, r.counts) for r in out] == [(j, {12 * c + j: 10}) for j in range(12)]
        # Each result names the job its placement named, at its position there.
        assert [r.job_id for r in out] == [p.job_id for p in placements[c]]
    stats = ray.get(_gateway(server.url).stats.remote())["gateway"]
    assert stats["rounds"] == 1 and stats["requests"] == 4 and stats["requests_failed"] == 0
    # 48 circuits of one round over round_jobs = 3 concurrent jobs of 16: the callers
    # second and third in the round (in arrival order) have circuits in two jobs each.
    jobs = server.jobs()
    assert len(jobs) == 3 and sorted(j["circuits"] for j in jobs) == [16, 16, 16]
    assert sorted(len({p.job_id for p in ps}) for ps in placements) == [1, 1, 2, 2]
    assert {p.job_id for ps in placements for p in ps} == {j["id"] for j in jobs}
    assert server.stats()["circuits_created"] == 48  # nothing sent twice

"""V2 primitives: qstore's SamplerV2/EstimatorV2 vs Qiskit's BackendSamplerV2, side by side.

One local IonQ-API server in the ``instant`` profile runs in its own process
(:class:`~qstore_qiskit.server.ServerProcess`, so the server's simulation never counts as
client time). In one run, on the same server:

Sampler, one PUB of an 8-qubit ansatz (``efficient_su2(8, reps=2)``, 48 parameters,
measured) with ``--sets`` (default 1,000) parameter sets, ``--shots`` each:

(a) ``qstore_qiskit.primitives.SamplerV2`` over a ``QStoreBackend``, the circuit
    transpiled with ``generate_preset_pass_manager(1, backend=backend)``;
(b) Qiskit's ``BackendSamplerV2`` over the same kind of backend, same ISA circuit;
(c) Qiskit's ``BackendSamplerV2`` over qiskit-ionq's ``IonQProvider`` backend
    (``IONQ_API_URL`` and ``url`` pointing at the local server), the circuit transpiled
    with qiskit-ionq's own preset pass manager.

Client-side time is the CPU time of this process (``time.process_time``, all its
threads) from ``run()`` to the finished result, divided by the number of parameter
sets, the least of ``--repeat`` (3) runs of each setup: what the
client spends per parameter set, excluding waits on the service (qiskit-ionq polls
every few seconds) and the server's work. Wall times are printed too.

Estimator: ``EstimatorV2`` with 20 random Pauli observables on 6 qubits and ``--est-sets``
parameter sets; the server's count of circuits created, per parameter set, is compared
with the number of qubit-wise commuting groups (Qiskit's ``group_commuting``).

EstimatorQNN (``--only qnn``): one forward + backward through Qiskit's preset pass manager
and through ``generate_ionq_pass_manager``, side by side, then the preset pass manager's
CPU per pass on the QNN's ISA circuit (where ``pm.run`` spends its time).

Usage::

    python benchmarks/primitives.py              # 1,000 parameter sets
    python benchmarks/primitives.py --sets 200   # quicker
    QISKIT_IN_PARALLEL=TRUE python benchmarks/primitives.py --only qnn --repeat 30

``QISKIT_IN_PARALLEL=TRUE`` is the switch Qiskit sets in its own worker processes: its
Rust passes then run on the calling thread instead of a thread pool (the QNN table
prints how much CPU that pool's threads burn during ``pm.run`` either way).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings

import numpy as np

SEED = 1234
TOKEN = "benchmark-key"


def ansatz(num_qubits: int = 8):
    from qiskit.circuit.library import efficient_su2

    qc = efficient_su2(num_qubits, reps=2)
    qc.measure_all()
    return qc


REPEAT = 3


def timed(fn):
    """``(result, client CPU seconds, wall seconds)`` of ``fn()``: the run with the least
    CPU time of ``REPEAT`` runs (steady state; every setup is treated alike)."""
    best = None
    for _ in range(REPEAT):
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn()
        sample = (out, time.process_time() - cpu, time.perf_counter() - wall)
        if best is None or sample[1] < best[1]:
            best = sample
    return best


#: What any client of IonQ's API that returns shuffled per-shot bits must spend, measured
#: on the (a) run: decoding the service's result documents and shuffling the shots.
FLOOR: dict = {}


def floor(server, job_ids: list[str], sets: int, shots: int) -> dict:
    """Client CPU seconds no implementation can avoid for the sampler PUB: decoding the
    ``GET /jobs/{id}/results/probabilities`` bodies of its IonQ jobs with orjson (the
    fastest JSON decoder at hand) and one ``Generator.permuted`` of the ``sets x shots``
    outcomes (the shuffle that makes counts into shots). The least of 3 each."""
    import urllib.request

    import orjson

    def fetch(form: str) -> list[bytes]:
        """Every job's results in IonQ's ``form`` (``probabilities``, ``histogram``)."""
        out = []
        for job_id in job_ids:
            request = urllib.request.Request(f"{server.url}/jobs/{job_id}/results/{form}",
                                             headers={"Authorization": f"apiKey {TOKEN}"})
            with urllib.request.urlopen(request, timeout=60) as response:  # loopback only
                out.append(response.read())
        return out

    bodies = fetch("probabilities")

    def least(fn) -> float:
        best = None
        for _ in range(3):
            start = time.process_time()
            fn()
            took = time.process_time() - start
            best = took if best is None else min(best, took)
        return best

    # IonQ's other documented result form, ``GET /jobs/{id}/results/histogram``
    # (ionq.result.histogram.json.v1: integer counts), for comparison: smaller, but on
    # the ideal simulator it holds the service's draw, not the ``sampler_seed`` counts
    # qiskit-ionq computes from the probabilities.
    histograms = fetch("histogram")

    outcomes = np.zeros((sets, shots), dtype=np.uint8)
    rng = np.random.default_rng(SEED)
    return {
        "decode": least(lambda: [orjson.loads(b) for b in bodies]),
        "bytes": sum(len(b) for b in bodies),
        "histogram_decode": least(lambda: [orjson.loads(b) for b in histograms]),
        "histogram_bytes": sum(len(b) for b in histograms),
        "shuffle": least(lambda: rng.permuted(outcomes, axis=1)),
        "sets": sets,
    }


def sampler_stages(backend, isa, values, shots: int, job_ids: list[str], server) -> list[tuple[str, float]]:
    """Where (a)'s client CPU goes: each stage of ``SamplerV2.run`` re-run on its own
    with the same data (the least of ``REPEAT``), CPU seconds per stage. What the stages
    do not cover (HTTP, the event loop, job bookkeeping, the garbage collector) is the
    end-to-end time less their sum."""
    import urllib.request

    import orjson
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    from qstore_qiskit.client.counts import count_matrix, positive_count_rows
    from qstore_qiskit.client.results import parse_histogram_groups
    from qstore_qiskit.primitives import SamplerV2

    def least(fn):
        best, out = None, None
        for _ in range(REPEAT):
            start = time.process_time()
            out = fn()
            took = time.process_time() - start
            best = took if best is None else min(best, took)
        return best, out

    sampler = SamplerV2(backend, seed=SEED)
    binds = [{p: values[:, i] for i, p in enumerate(isa.parameters)}]
    opts = backend._merged_options({"shots": shots, "sampler_seed": SEED})
    rows = []
    t_bind, _ = least(lambda: backend._native_bind_many(isa, values))
    t_prep, prepared = least(lambda: backend._prepare([isa], binds, opts))
    rows.append(("bind_many: template -> gate lists", t_bind))
    rows.append(("PreparedCircuit bookkeeping, job fields", t_prep - t_bind + least(lambda: backend._job_fields(prepared, opts))[0]))
    body = {"input": {"circuits": [p.body for p in prepared]}}
    rows.append(("job body JSON (orjson.dumps)", least(lambda: orjson.dumps(body))[0]))
    raw, listing = [], []
    for job_id in job_ids:
        for path, store in ((f"/jobs/{job_id}/results/probabilities", raw),
                            (f"/jobs?parent_job_id={job_id}&limit=1000", listing)):
            request = urllib.request.Request(server.url + path, headers={"Authorization": f"apiKey {TOKEN}"})
            with urllib.request.urlopen(request, timeout=60) as response:  # loopback only
                store.append(response.read())
    t_dec, decoded = least(lambda: [orjson.loads(b) for b in raw])
    rows.append((f"results JSON decode ({sum(map(len, raw)) / 1e6:.1f} MB, orjson)", t_dec))
    rows.append((f"child job listing decode ({sum(map(len, listing)) / 1e6:.1f} MB)",
                 least(lambda: [orjson.loads(b) for b in listing])[0]))
    hists = [h for doc in decoded for h in doc.values()]

    def counts():
        for group in parse_histogram_groups(hists, [isa.num_qubits] * len(hists), [""] * len(hists)):
            positive_count_rows(group.outcomes, count_matrix(group.probabilities, shots, use_sampler=True,
                                                             sampler_seed=SEED))

    rows.append(("histogram validation + seeded counts (matrix)", least(counts)[0]))
    pairs = backend.run([isa], parameter_binds=binds, shots=shots, sampler_seed=SEED).circuit_results()
    pub = SamplerPub.coerce((isa, values), shots)
    rows.append(("counts -> shuffled shots -> BitArray, result", least(lambda: sampler._pub_result(pub, pairs, shots, 0))[0]))
    with collector_time() as collected:
        total, _ = least(lambda: sampler.run([(isa, values)], shots=shots).result())
    rows.append(("rest: HTTP, event loop, job bookkeeping, GC", total - sum(t for _, t in rows)))
    rows.append((f"  of which garbage collection ({collected['counts']})",
                 collected["seconds"] / REPEAT))
    rows.append(("end to end (least of the runs here)", total))
    return rows


@contextlib.contextmanager
def collector_time():
    """CPU seconds Python's cyclic garbage collector spent while the body ran, in any
    thread (``time.thread_time`` around each collection, from ``gc.callbacks``), and the
    collections per generation (``counts``: ``"young/middle/full"`` per run)."""
    import gc
    import threading

    started: dict[int, float] = {}
    out = {"seconds": 0.0, "counts": ""}
    per_gen = [0, 0, 0]

    def callback(phase: str, info: dict) -> None:
        ident = threading.get_ident()
        if phase == "start":
            started[ident] = time.thread_time()
        elif ident in started:
            out["seconds"] += time.thread_time() - started.pop(ident)
            per_gen[info["generation"]] += 1

    gc.callbacks.append(callback)
    try:
        yield out
    finally:
        gc.callbacks.remove(callback)
        out["counts"] = "collections per run " + "/".join(f"{n / REPEAT:.1f}" for n in per_gen)


STAGES: list = []


def print_stages(sets: int) -> None:
    if not STAGES:
        return
    print(f"  where (a)'s client CPU goes (each stage re-run alone, least of {REPEAT}):")
    for name, seconds in STAGES:
        print(f"    {name:52s} {1000 * seconds / sets:8.4f} ms/set")


def print_floor(rows: list[dict]) -> None:
    if not FLOOR:
        return
    per_set = (FLOOR["decode"] + FLOOR["shuffle"]) / FLOOR["sets"]
    print(f"  floor of any IonQ-API client: decoding {FLOOR['bytes'] / 1e6:.1f} MB of results "
          f"{1000 * FLOOR['decode']:.1f} ms + shuffling the shots {1000 * FLOOR['shuffle']:.1f} ms "
          f"= {1000 * per_set:.3f} ms/set")
    print(f"  (the documented histogram form of the same jobs: {FLOOR['histogram_bytes'] / 1e6:.1f} MB, "
          f"decoded in {1000 * FLOOR['histogram_decode']:.1f} ms)")
    for r in rows:
        if "error" not in r and r["name"].startswith("(c)"):
            print(f"  (c) / floor = {r['cpu'] / r['sets'] / per_set:.1f}x (the most any client could reach "
                  "against (c) on this machine in this run)")


def circuits_created(server) -> int:
    return int(server.stats()["circuits_created"])


def sampler_rows(server, sets: int, shots: int) -> list[dict]:
    from qiskit.primitives import BackendSamplerV2
    from qiskit.transpiler import generate_preset_pass_manager

    from qstore_qiskit import QStoreProvider
    from qstore_qiskit.primitives import SamplerV2

    circuit = ansatz()
    values = np.random.default_rng(SEED).uniform(-np.pi, np.pi, (sets, circuit.num_parameters))
    rows = []

    provider = QStoreProvider(token=TOKEN, url=server.url)
    try:
        backend = provider.get_backend("ionq_simulator")
        isa = generate_preset_pass_manager(1, backend=backend).run(circuit)
        assert isa.num_parameters == circuit.num_parameters, "the ISA circuit lost parameters"
        # Warm-up (template analysis, HTTP pool) outside the timed region, for both.
        SamplerV2(backend, seed=SEED).run([(isa, values[:2])], shots=shots).result()
        BackendSamplerV2(backend=backend, options={"seed_simulator": SEED}).run([(isa, values[:2])], shots=shots).result()
        for name, make in (
            ("(a) qstore SamplerV2", lambda: SamplerV2(backend, seed=SEED)),
            ("(b) BackendSamplerV2(QStoreBackend)", lambda: BackendSamplerV2(backend=backend, options={"seed_simulator": SEED})),
        ):
            before = circuits_created(server)
            sampler = make()
            result, cpu, wall = timed(lambda: sampler.run([(isa, values)], shots=shots).result())
            assert result[0].data.meas.shape == (sets,)
            rows.append(dict(name=name, cpu=cpu, wall=wall, sets=sets,
                             circuits=(circuits_created(server) - before) // REPEAT))
            if name.startswith("(a)"):
                FLOOR.update(floor(server, result.metadata["ionq_job_ids"], sets, shots))
                STAGES[:] = sampler_stages(backend, isa, values, shots, result.metadata["ionq_job_ids"], server)
    finally:
        provider.close()

    try:
        from qiskit_ionq import IonQProvider

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            backend = IonQProvider(TOKEN, url=server.url).get_backend("simulator")
            backend.set_options(sampler_seed=SEED)
            isa = generate_preset_pass_manager(1, backend=backend, seed_transpiler=SEED).run(circuit)
            sampler = BackendSamplerV2(backend=backend, options={"seed_simulator": SEED})
            before = circuits_created(server)
            result, cpu, wall = timed(lambda: sampler.run([(isa, values)], shots=shots).result())
        assert result[0].data.meas.shape == (sets,)
        rows.append(dict(name="(c) BackendSamplerV2(qiskit-ionq)", cpu=cpu, wall=wall, sets=sets,
                         circuits=(circuits_created(server) - before) // REPEAT))
    except Exception as exc:  # keep the other rows
        rows.append(dict(name="(c) BackendSamplerV2(qiskit-ionq)", error=f"{type(exc).__name__}: {exc}"[:200]))
    return rows


def estimator_rows(server, sets: int) -> tuple[list[dict], int]:
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import real_amplitudes
    from qiskit.primitives import BackendEstimatorV2
    from qiskit.quantum_info import PauliList, SparsePauliOp

    from qstore_qiskit import QStoreProvider
    from qstore_qiskit.primitives import EstimatorV2

    rng = np.random.default_rng(SEED)
    labels: list[str] = []
    while len(labels) < 20:
        label = "".join(rng.choice(list("IXYZ"), 6))
        if label not in labels and set(label) != {"I"}:
            labels.append(label)
    observable = SparsePauliOp(labels, rng.uniform(-1, 1, 20))
    groups = len(PauliList(labels).group_commuting(qubit_wise=True))
    circuit: QuantumCircuit = real_amplitudes(6, reps=2)
    values = rng.uniform(-np.pi, np.pi, (sets, circuit.num_parameters))
    rows = []
    provider = QStoreProvider(token=TOKEN, url=server.url)
    try:
        backend = provider.get_backend("ionq_simulator")
        for name, make in (
            ("(a) qstore EstimatorV2", lambda: EstimatorV2(backend, seed=SEED)),
            ("(b) BackendEstimatorV2(QStoreBackend)",
             lambda: BackendEstimatorV2(backend=backend, options={"seed_simulator": SEED})),
        ):
            estimator = make()
            estimator.run([(circuit, observable, values[:2])], precision=1 / 32).result()  # warm-up
            before = circuits_created(server)
            result, cpu, wall = timed(lambda: estimator.run([(circuit, observable, values)], precision=1 / 32).result())
            assert result[0].data.evs.shape == (sets,)
            rows.append(dict(name=name, cpu=cpu, wall=wall, sets=sets,
                             circuits=(circuits_created(server) - before) // REPEAT))
    finally:
        provider.close()
    return rows, groups


def _timed_pass_manager(pm, spent: list) -> None:
    """Count the seconds ``pm.run`` takes (on this instance only: EstimatorQNN and its
    gradient call the same object), so the table can show how much of the QNN's time is
    the pass manager's: ``spent`` is ``[process CPU, circuits, CPU of the calling
    thread]``. The process CPU less the caller's is what other threads burnt meanwhile:
    Qiskit's Rust passes run on a thread pool (rayon) whose idle workers spin before they
    sleep, and ``time.process_time`` counts that too."""
    run = pm.run

    def timed_run(*args, **kwargs):
        start, start_thread = time.process_time(), time.thread_time()
        try:
            return run(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start
            spent[1] += len(args[0]) if isinstance(args[0], list) else 1
            spent[2] += time.thread_time() - start_thread

    pm.run = timed_run


class _Collections:
    """CPU seconds of Python's cyclic garbage collector (any thread, from
    ``gc.callbacks``) and full collections, since the last :meth:`reset`."""

    def __init__(self) -> None:
        import gc
        import threading

        self._get_ident = threading.get_ident
        self._started: dict[int, float] = {}
        self.reset()
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.seconds, self.full = 0.0, 0

    def _callback(self, phase: str, info: dict) -> None:
        ident = self._get_ident()
        if phase == "start":
            self._started[ident] = time.thread_time()
        elif ident in self._started:
            self.seconds += time.thread_time() - self._started.pop(ident)
            self.full += info["generation"] == 2

    def close(self) -> None:
        import gc

        gc.callbacks.remove(self._callback)


def qnn_rows(server, repeat: int = 3) -> dict:
    """EstimatorQNN (forward + parameter-shift backward) through Qiskit's preset pass
    manager vs the package's own ``generate_ionq_pass_manager``, both with
    ``BackendEstimatorV2`` on a qstore backend (the setup of issue #13, defect 2).

    Per setup: client CPU seconds and wall seconds of one forward + backward (the least
    of ``repeat``, the setups taking turns), the CPU seconds spent inside the pass
    manager's ``run`` (the gradient re-runs it on every shifted circuit) and how many
    circuits it ran, and the largest gradient error against the exact (statevector)
    gradient; then the medians over the runs of the CPU other threads burnt during
    ``pm.run`` (Qiskit's thread pool), of the garbage collector's CPU, and the full
    collections per run. Under ``"ratios"`` the sorted preset / own CPU ratios of the
    runs paired by turn (on a loaded machine their median is steadier than the ratio of
    the least times), under ``"ratios_no_gc"`` the same without the collector's CPU and
    under ``"ratios_no_pool"`` without the CPU of other threads during ``pm.run``.
    """
    from qiskit.circuit.library import real_amplitudes, zz_feature_map
    from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    import qstore_qiskit
    from qstore_qiskit import QStoreProvider

    feature_map, ansatz_ = zz_feature_map(4, reps=1), real_amplitudes(4, reps=1)
    circuit = feature_map.compose(ansatz_)
    rng = np.random.default_rng(SEED)
    X, w = rng.uniform(0, np.pi, (6, 4)), rng.uniform(-1, 1, ansatz_.num_parameters)
    exact = EstimatorQNN(circuit=circuit, input_params=feature_map.parameters,
                         weight_params=ansatz_.parameters, estimator=StatevectorEstimator()).backward(X, w)[1]
    out = {}
    provider = QStoreProvider(token=TOKEN, url=server.url)
    try:
        backend = provider.get_backend("ionq_simulator")
        setups = {}
        for name, pm in (("own", qstore_qiskit.generate_ionq_pass_manager(backend)),
                         ("preset", generate_preset_pass_manager(optimization_level=1, backend=backend))):
            spent = [0.0, 0, 0.0]
            _timed_pass_manager(pm, spent)
            qnn = EstimatorQNN(
                circuit=circuit, input_params=feature_map.parameters, weight_params=ansatz_.parameters,
                estimator=BackendEstimatorV2(backend=backend, options={"default_precision": 0.01, "seed_simulator": SEED}),
                pass_manager=pm,
            )
            qnn.forward(X, w), qnn.backward(X, w)  # warm-up: compiles, caches
            setups[name] = (qnn, spent)
        # The two setups take turns (own, preset, preset, own, ...), so that both see the
        # same load; the least CPU of each is kept, and the median of the ratios of the
        # runs paired by turn.
        samples: dict = {name: [] for name in setups}
        collections = _Collections()
        try:
            for turn in range(repeat):
                for name in (("own", "preset") if turn % 2 == 0 else ("preset", "own")):
                    qnn, spent = setups[name]
                    spent[:] = [0.0, 0, 0.0]
                    collections.reset()
                    cpu, wall = time.process_time(), time.perf_counter()
                    qnn.forward(X, w)
                    grad = qnn.backward(X, w)[1]
                    samples[name].append(
                        (time.process_time() - cpu, time.perf_counter() - wall, spent[0], spent[1],
                         float(np.abs(grad - exact).max()), spent[0] - spent[2], collections.seconds,
                         collections.full)
                    )
        finally:
            collections.close()
        for name, runs in samples.items():
            least = min(runs, key=lambda sample: sample[0])
            out[name] = least[:5] + tuple(float(np.median([r[k] for r in runs])) for k in (5, 6, 7))
        pairs = list(zip(samples["own"], samples["preset"]))
        out["ratios"] = sorted(p[0] / o[0] for o, p in pairs)
        out["ratios_no_gc"] = sorted((p[0] - p[6]) / (o[0] - o[6]) for o, p in pairs)
        out["ratios_no_pool"] = sorted((p[0] - p[5]) / (o[0] - o[5]) for o, p in pairs)
    finally:
        provider.close()
    return out


def qnn_pass_table(server, circuits: int = 96, repeat: int = 3) -> tuple[float, int, list]:
    """Where Qiskit's preset pass manager spends its time on the QNN's ISA circuit: CPU
    per circuit of each pass (``pm.run([isa] * circuits)`` with a callback taking
    ``time.process_time`` and the calling thread's ``time.thread_time`` between passes;
    the first pass of each circuit also carries the conversions between circuits; the
    difference of the two is what other threads, Qiskit's thread pool, burnt meanwhile).
    Returns ``(pm.run ms per circuit without the callback, ISA width, [(pass, ms per
    circuit, runs per circuit, calling thread's ms per circuit)])``."""
    import collections

    from qiskit.circuit.library import real_amplitudes, zz_feature_map
    from qiskit.transpiler import generate_preset_pass_manager

    from qstore_qiskit import QStoreProvider

    provider = QStoreProvider(token=TOKEN, url=server.url)
    try:
        backend = provider.get_backend("ionq_simulator")
        pm = generate_preset_pass_manager(optimization_level=1, backend=backend)
        isa = pm.run(zz_feature_map(4, reps=1).compose(real_amplitudes(4, reps=1)))
        pm.run([isa] * 4)  # warm-up
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            pm.run([isa] * circuits)
            best = min(best, (time.process_time() - start) / circuits)
        spent: dict = collections.defaultdict(float)
        spent_thread: dict = collections.defaultdict(float)
        runs: collections.Counter = collections.Counter()
        last = [0.0, 0.0]

        def callback(pass_, count, **_):
            now, now_thread = time.process_time(), time.thread_time()
            name = type(pass_).__name__
            if count == 0:
                name = f"(between circuits) + {name}"
            spent[name] += now - last[0]
            spent_thread[name] += now_thread - last[1]
            runs[name] += 1
            last[:] = [time.process_time(), time.thread_time()]

        for _ in range(repeat):
            last[:] = [time.process_time(), time.thread_time()]
            pm.run([isa] * circuits, callback=callback)
        n = circuits * repeat
        rows = sorted(((k, 1000 * v / n, runs[k] / n, 1000 * spent_thread[k] / n) for k, v in spent.items()),
                      key=lambda r: -r[1])
        return 1000 * best, isa.num_qubits, rows
    finally:
        provider.close()


def print_pass_table(table: tuple[float, int, list]) -> None:
    total, width, rows = table
    print(f"\nPreset pass manager (level 1) on the QNN's ISA circuit ({width} qubits): "
          f"pm.run {total:.3f} ms CPU per circuit; per pass (with a callback, which adds its own overhead; "
          "process CPU, and the calling thread's):")
    for name, ms, per, ms_thread in rows:
        print(f"  {name:60s} {ms:8.3f} ms {ms_thread:8.3f} ms  x{per:.0f}")


def print_table(title: str, rows: list[dict], reference: str | None) -> None:
    print(f"\n{title}")
    print(f"  {'setup':40s} {'client ms/set':>14s} {'wall s':>8s} {'circuits':>9s} {'circ/set':>9s} {'vs (a)':>8s}")
    base = next((r for r in rows if "error" not in r), None)
    for r in rows:
        if "error" in r:
            print(f"  {r['name']:40s} failed: {r['error']}")
            continue
        per_set = 1000 * r["cpu"] / r["sets"]
        ratio = (r["cpu"] / base["cpu"]) if base and base["cpu"] > 0 else float("nan")
        print(f"  {r['name']:40s} {per_set:14.3f} {r['wall']:8.2f} {r['circuits']:9d} "
              f"{r['circuits'] / r['sets']:9.2f} {ratio:7.1f}x")


def print_qnn(qnn: dict) -> None:
    print("\nEstimatorQNN (zz_feature_map(4) + real_amplitudes(4), 6 samples, one forward + backward, "
          f"BackendEstimatorV2 on a qstore backend, precision 0.01; least client CPU of {REPEAT}, "
          "the two setups taking turns)")
    print(f"  {'pass manager':40s} {'CPU s':>7s} {'wall s':>7s} {'in pm.run s':>12s} {'pm circuits':>12s} "
          f"{'max |grad - exact|':>19s}")
    for name, label in (("own", "generate_ionq_pass_manager(backend)"),
                        ("preset", "generate_preset_pass_manager(1, backend)")):
        cpu, wall, in_pm, pm_circuits, error = qnn[name][:5]
        print(f"  {label:40s} {cpu:7.3f} {wall:7.3f} {in_pm:12.3f} {pm_circuits:12d} {error:19.4f}")
    own, preset = qnn["own"], qnn["preset"]
    print(f"  preset / own: client CPU {preset[0] / own[0]:.2f}x, wall {preset[1] / own[1]:.2f}x; "
          f"outside pm.run: CPU {(preset[0] - preset[2]) / (own[0] - own[2]):.2f}x")
    print("  medians of the runs (own, preset): CPU of other threads during pm.run (Qiskit's thread pool) "
          f"{own[5]:.4f} s, {preset[5]:.4f} s; garbage collector {own[6]:.4f} s, {preset[6]:.4f} s; "
          f"full collections per run {own[7]:.1f}, {preset[7]:.1f}")

    def median(ratios: list) -> str:
        return f"{ratios[len(ratios) // 2]:.2f}x (range {ratios[0]:.2f}x-{ratios[-1]:.2f}x)"

    ratios = qnn["ratios"]
    print(f"  preset / own client CPU of the {len(ratios)} runs paired by turn: median {median(ratios)}")
    print(f"    the same without the garbage collector's CPU: median {median(qnn['ratios_no_gc'])}; "
          f"without the CPU of other threads during pm.run: median {median(qnn['ratios_no_pool'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=1000, help="parameter sets of the sampler PUB")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--est-sets", type=int, default=100, help="parameter sets of the estimator PUB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setup (the least CPU time is kept)")
    parser.add_argument("--only", choices=("sampler", "estimator", "qnn"), action="append",
                        help="run only these parts (repeatable; default: all)")
    args = parser.parse_args(argv)
    global REPEAT
    REPEAT = max(1, args.repeat)

    from qstore_qiskit.server import ServerProcess

    with ServerProcess(profile="instant", seed=SEED) as server:
        # qiskit-ionq reads IONQ_API_URL: never let it reach IonQ's cloud from here.
        os.environ["IONQ_API_URL"] = server.url
        parts = set(args.only or ("sampler", "estimator", "qnn"))
        rows: list[dict] = []
        if "sampler" in parts:
            rows = sampler_rows(server, args.sets, args.shots)
            print_table(
                f"Sampler: efficient_su2(8, reps=2), 48 parameters, {args.sets} parameter sets x {args.shots} shots "
                "(client CPU time per parameter set; 'vs (a)' = how many times more client CPU than (a))",
                rows, None,
            )
            print_floor(rows)
            print_stages(args.sets)
        if "estimator" in parts:
            est_rows, groups = estimator_rows(server, args.est_sets)
            print_table(
                f"Estimator: real_amplitudes(6, reps=2), 20 Pauli observables, {args.est_sets} parameter sets, "
                f"precision 1/32 ({groups} qubit-wise commuting groups)",
                est_rows, None,
            )
        if "qnn" in parts:
            print_qnn(qnn_rows(server, REPEAT))
            print_pass_table(qnn_pass_table(server, repeat=REPEAT))
    ok = all("error" not in r for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

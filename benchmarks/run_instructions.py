"""Instructions per cold and warm ``backend.run(qc)`` outside the compiler, per thread.

Run under callgrind; the load of a shared machine does not change the counts::

    PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 RAYON_NUM_THREADS=1 \\
    valgrind --tool=callgrind --separate-threads=yes \\
        --callgrind-out-file=/tmp/cg/run.%p python benchmarks/run_instructions.py 30
    grep -m1 '^summary:' /tmp/cg/run.*.1-01   # caller thread, cold region
    grep -m1 '^summary:' /tmp/cg/run.*.2-01   # caller thread, warm region

``N`` distinct logical 4-qubit circuits (``benchmarks/submit.py``'s
``_distinct_logical``) are compiled first; the backend's template cache then gets them
from a dictionary instead of the compiler, so that the counted regions hold everything
``run()`` does except the pass manager. Region 1 (dump ``.1``): ``N`` separate
``run()`` calls on a fresh backend and their results (each circuit new: exact template
built and bound); region 2 (dump ``.2``): the same circuits again (templates and bodies
cached). The counters are zeroed and dumped around each region with
``callgrind_control``; with ``N = 0`` the same script measures what that costs, to
subtract. Thread ``-01`` is the caller; the submitter's loop thread and the in-process
:class:`~qstore_qiskit.server.LocalServer` (``instant`` profile) threads are the others.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from submit import _distinct_logical  # noqa: E402  pylint: disable=wrong-import-position

from qstore_qiskit.providers import QStoreProvider  # noqa: E402
from qstore_qiskit.server import LocalServer  # noqa: E402


def _callgrind(flag: str) -> None:
    """Zero (``-z``) or dump (``-d``) this process's callgrind counters (no-op outside)."""
    try:
        subprocess.run(["callgrind_control", flag, str(os.getpid())], capture_output=True, check=False)
    except OSError:
        pass


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    circuits = _distinct_logical(max(n, 1), np.random.default_rng(8), "i")
    with LocalServer(profile="instant", seed=7) as srv:
        provider = QStoreProvider(token="benchmark", url=srv.url)
        first = provider.get_backend("ionq_simulator")
        natives = {id(qc): first._compile(qc, "simulator", 2) for qc in circuits}
        first.run(circuits[0]).result()  # imports and first-use costs, outside the regions
        backend = provider.get_backend("ionq_simulator")
        backend.set_options(template_cache_dir=False)
        backend._cache._compile_fn = lambda qc, device, level: natives[id(qc)]  # noqa: SLF001
        for _ in ("cold", "warm"):
            _callgrind("-z")
            jobs = [backend.run(qc, shots=1024) for qc in circuits[:n]]
            for job in jobs:
                job.result()
            _callgrind("-d")
        provider.close()
    print(f"counted regions: cold and warm, {n} run() calls each (callgrind dumps .1 and .2)")


if __name__ == "__main__":
    main()

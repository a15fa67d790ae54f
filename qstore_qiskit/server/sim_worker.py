"""Entry point of a simulation worker process (:class:`.sim_process.SimulationPool`).

Run as ``python -m qstore_qiskit.server.sim_worker``; it reads job frames on stdin and
answers on stdout until stdin closes. Kept apart from :mod:`.sim_process` so that
nothing is pickled under the name ``__main__``.
"""

import sys

from .sim_process import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())

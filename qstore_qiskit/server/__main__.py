"""``python -m qstore_qiskit.server``: run the local IonQ-API server (see :mod:`.cli`)."""

import sys

from .cli import run

sys.exit(run())

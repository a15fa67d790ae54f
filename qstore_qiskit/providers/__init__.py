"""IonQ backends with qstore's compiler, template cache and batching submitter.

A drop-in for qiskit-ionq's provider: see ``docs/coming_from_qiskit_ionq.rst``.
"""

from .backend import QStoreBackend
from .cost import CostEstimate, CostLimitError
from .job import QStoreJob
from .options import FEATURE_OPTIONS
from .passmanager import CachedIonQPassManager
from .prepared import PreparedCircuit
from .provider import BackendNotFoundError, QStoreProvider

#: qiskit-ionq's provider name, so that code written for it needs one changed import:
#: ``from qstore_qiskit import IonQProvider, ErrorMitigation``.
IonQProvider = QStoreProvider
from .results import QStoreResult
from .session import Session

__all__ = [
    "QStoreProvider",
    "IonQProvider",
    "QStoreBackend",
    "QStoreJob",
    "QStoreResult",
    "Session",
    "CostEstimate",
    "CostLimitError",
    "BackendNotFoundError",
    "CachedIonQPassManager",
    "FEATURE_OPTIONS",
    "PreparedCircuit",
]

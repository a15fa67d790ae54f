"""IonQ backends with qstore's compiler, template cache and batching submitter."""

from .backend import FEATURE_OPTIONS, PreparedCircuit, QStoreBackend
from .job import QStoreJob
from .passmanager import CachedIonQPassManager
from .provider import QStoreProvider

__all__ = ["QStoreProvider", "QStoreBackend", "QStoreJob", "CachedIonQPassManager", "FEATURE_OPTIONS", "PreparedCircuit"]

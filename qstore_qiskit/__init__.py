"""qstore-qiskit: fast Qiskit workloads on IonQ trapped-ion machines.

The package has four parts, one data path::

    circuit -> transpiler passes -> template cache -> payload -> batcher -> HTTP -> Result

* :mod:`qstore_qiskit.transpiler`: the native-gate compiler (GPi, GPi2, MS, ZZ) as
  Qiskit transpiler passes and stage plugins named ``qstore``.
* :mod:`qstore_qiskit.cache`: :class:`CompiledTemplate` and :class:`TemplateCache`.
* :mod:`qstore_qiskit.client`: the pooled, batching, retrying async submitter.
* :mod:`qstore_qiskit.providers`: :class:`QStoreProvider` and its ``BackendV2`` backends.
* :mod:`qstore_qiskit.server`: a local IonQ-API server for offline use and testing.

Public names are imported lazily so that ``import qstore_qiskit`` stays cheap and the
transpiler plugins can be loaded without the HTTP stack. Type checkers see the real
imports (the ``TYPE_CHECKING`` block below), so ``from qstore_qiskit import
QStoreProvider`` has its class type, not ``Any``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:  # the same names, as type checkers and IDEs should see them
    from .cache import CompiledTemplate as CompiledTemplate
    from .cache import TemplateCache as TemplateCache
    from .client import BatchSubmitter as BatchSubmitter
    from qiskit_ionq import ErrorMitigation as ErrorMitigation

    from .providers import CostLimitError as CostLimitError
    from .providers import IonQProvider as IonQProvider
    from .providers import QStoreBackend as QStoreBackend
    from .providers import Session as Session
    from .providers import QStoreProvider as QStoreProvider
    from .server import LocalServer as LocalServer
    from .transpiler import estimated_fidelity as estimated_fidelity
    from .transpiler import generate_ionq_pass_manager as generate_ionq_pass_manager
    from .transpiler import ionq_target as ionq_target

# name -> module that defines it (imported on first access, PEP 562).
_LAZY = {
    "generate_ionq_pass_manager": "qstore_qiskit.transpiler",
    "estimated_fidelity": "qstore_qiskit.transpiler",
    "ionq_target": "qstore_qiskit.transpiler",
    "CompiledTemplate": "qstore_qiskit.cache",
    "TemplateCache": "qstore_qiskit.cache",
    "QStoreProvider": "qstore_qiskit.providers",
    "QStoreBackend": "qstore_qiskit.providers",
    "IonQProvider": "qstore_qiskit.providers",
    "Session": "qstore_qiskit.providers",
    "CostLimitError": "qstore_qiskit.providers",
    "ErrorMitigation": "qiskit_ionq",
    "BatchSubmitter": "qstore_qiskit.client",
    "LocalServer": "qstore_qiskit.server",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:  # PEP 562; runtime only (see TYPE_CHECKING above)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qstore_qiskit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

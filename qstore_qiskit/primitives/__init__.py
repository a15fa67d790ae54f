"""Qiskit V2 primitives that run on a :class:`~qstore_qiskit.QStoreBackend`.

:class:`SamplerV2` and :class:`EstimatorV2` implement Qiskit's ``BaseSamplerV2`` /
``BaseEstimatorV2`` (named like :mod:`qiskit_aer.primitives`). Unlike Qiskit's
``BackendSamplerV2`` / ``BackendEstimatorV2``, they never build one bound
``QuantumCircuit`` per parameter set: every PUB goes through the backend's compiled
template once and its whole ``BindingsArray`` is bound into payloads in one vectorised
pass, then all PUBs of a call travel in one submission (split at the service's circuit
cap by the backend's submitter).

.. autosummary::

   SamplerV2
   EstimatorV2
"""

from .estimator import EstimatorV2
from .sampler import SamplerV2

__all__ = ["SamplerV2", "EstimatorV2"]

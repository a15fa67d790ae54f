"""Compiled circuit templates and a two-level template cache.

Parameter sweeps and training loops submit one circuit *structure* thousands of times
with new angles. :class:`CompiledTemplate` resolves everything that does not depend on
the values once (native compilation, an affine form of every emitted angle, a generated
gate-list emitter), so binding costs microseconds; :class:`TemplateCache` keys templates
by structure, so bound circuits that differ only in their angles share one template.

The package is split by responsibility (data flows top to bottom):

* :mod:`~qstore_qiskit.cache.analysis`: the structural key, canonical parameter columns
  and parameter lifting (:func:`structural_key`, :func:`lift_parameters`);
* :mod:`~qstore_qiskit.cache.compiler`: the default native compiler (:func:`default_compile`);
* :mod:`~qstore_qiskit.cache.builder`: native circuit -> slot tables, in named steps;
* :mod:`~qstore_qiskit.cache.emitter`: the bind kernel and the generated gate-list emitter;
* :mod:`~qstore_qiskit.cache.template`: :class:`CompiledTemplate`;
* :mod:`~qstore_qiskit.cache.store`: the in-memory LRU :class:`TemplateCache`;
* :mod:`~qstore_qiskit.cache.loader`: its persistent level (load, or compile once and store);
* :mod:`~qstore_qiskit.cache.serialize`: the safe on-disk format of a template;
* :mod:`~qstore_qiskit.cache.persistent`: :class:`PersistentTemplateStore`, compiled
  templates on disk shared by processes (``diskcache``).
"""

from __future__ import annotations

from .analysis import LIFTABLE_GATES, lift_parameters, structural_key
from .compiler import CompileFn, default_compile
from .errors import QStoreCacheError
from .persistent import (
    CACHE_DIR_ENV,
    DEFAULT_SIZE_LIMIT,
    PersistentTemplateStore,
    default_cache_dir,
    open_store,
)
from .store import TemplateCache
from .template import CompiledTemplate

__all__ = [
    "QStoreCacheError",
    "CompiledTemplate",
    "TemplateCache",
    "structural_key",
    "lift_parameters",
    "LIFTABLE_GATES",
    "CompileFn",
    "default_compile",
    "PersistentTemplateStore",
    "open_store",
    "default_cache_dir",
    "CACHE_DIR_ENV",
    "DEFAULT_SIZE_LIMIT",
]

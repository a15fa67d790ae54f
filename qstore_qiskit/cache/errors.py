"""The exception raised for bad input to the template cache."""

from __future__ import annotations

__all__ = ["QStoreCacheError"]


class QStoreCacheError(ValueError):
    """Bad input to a :class:`~qstore_qiskit.cache.CompiledTemplate` or
    :class:`~qstore_qiskit.cache.TemplateCache`."""

"""``parameter_binds`` of :meth:`QStoreBackend.run`: shape and value checks.

The accepted shape is Qiskit Aer's: a list with one dict per circuit, each mapping the
circuit's parameters (``Parameter`` objects or their names) to a real number or a flat
list of real numbers; a circuit runs once per value set. Anything else raises an error
that names what was given and what is expected, before anything is compiled or sent:

* ``TypeError``: the wrong outer container (a dict instead of a list of dicts, a
  string, a number...).
* ``ValueError``: an entry that is not a dict, wrong length, unknown or missing parameters, value lists of different
  lengths, empty value lists, values that are not finite real numbers (complex numbers,
  numpy or Python, are rejected: their imaginary part cannot be an angle, and dropping
  it silently would run another circuit than asked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit

_EXPECTED = "a list with one {Parameter: value or [values]} dict per circuit, e.g. parameter_binds=[{theta: [0.1, 0.2]}]"


def check_parameter_binds(parameter_binds: Any, num_circuits: int) -> list[Mapping] | None:
    """The per-circuit bind dicts, or ``None``; raises on a wrong outer shape."""
    if parameter_binds is None:
        return None
    if isinstance(parameter_binds, Mapping):
        raise TypeError(f"parameter_binds is a dict; expected {_EXPECTED}")
    if isinstance(parameter_binds, (str, bytes)) or not isinstance(parameter_binds, Sequence):
        raise TypeError(f"parameter_binds is a {type(parameter_binds).__name__}; expected {_EXPECTED}")
    binds = list(parameter_binds)
    if len(binds) != num_circuits:
        raise ValueError(
            f"parameter_binds has {len(binds)} entries for {num_circuits} circuits; give one dict per circuit"
        )
    return binds


def _column(value: Any, param: Parameter, circuit: QuantumCircuit) -> np.ndarray:
    where = f"parameter_binds value for {param.name} of circuit '{circuit.name}'"
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{where} is a string ({value!r}); expected a real number or a flat list of real numbers")
    if isinstance(value, (list, tuple)) and any(isinstance(x, (bool, np.bool_)) for x in value):
        raise ValueError(f"{where} contains a bool ({value!r}); expected real numbers")
    try:
        column = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nesting and the like
        raise ValueError(f"{where} is not a number or a flat list of numbers: {value!r}") from exc
    kind = column.dtype.kind
    if kind == "c":
        raise ValueError(f"{where} is complex ({value!r}); parameters take real angles only")
    if kind == "b":
        raise ValueError(f"{where} is a bool ({value!r}); expected a real number")
    if kind not in "iuf":
        raise ValueError(f"{where} is not a number or a flat list of numbers: {value!r}")
    if column.ndim > 1:
        raise ValueError(f"{where} must be a number or a flat list of numbers, got shape {column.shape}")
    column = np.atleast_1d(column.astype(float))
    if column.size == 0:
        raise ValueError(f"{where} is an empty list; give at least one value")
    return column


def value_table(circuit: QuantumCircuit, binds: Mapping | None) -> np.ndarray | None:
    """Rows of values ordered like ``circuit.parameters``; ``None`` if unparameterized."""
    # num_parameters first: circuit.parameters builds a sorted view (a bound circuit,
    # the usual case, has none)
    params = list(circuit.parameters) if circuit.num_parameters else []
    if not params:
        if binds:
            raise ValueError(f"parameter_binds given for circuit '{circuit.name}', which has no parameters")
        return None
    if not binds:
        names = ", ".join(p.name for p in params[:5])
        raise ValueError(
            f"circuit '{circuit.name}' has unbound parameters ({names}{', ...' if len(params) > 5 else ''}); "
            "bind them or pass parameter_binds"
        )
    if not isinstance(binds, Mapping):
        raise ValueError(
            f"parameter_binds entry for circuit '{circuit.name}' is a {type(binds).__name__}; "
            "give one {Parameter: value or [values]} dict per circuit"
        )
    by_name = {p.name: p for p in params}
    own = set(params)
    columns: dict[Parameter, np.ndarray] = {}
    for key, value in binds.items():
        param = key if isinstance(key, Parameter) else by_name.get(key) if isinstance(key, str) else None
        if param is None or param not in own:
            raise ValueError(f"parameter_binds names {key!s}, which circuit '{circuit.name}' does not have")
        if param in columns:
            raise ValueError(
                f"parameter_binds for circuit '{circuit.name}' gives {param.name} twice (by name and as a Parameter)"
            )
        columns[param] = _column(value, param, circuit)
    missing = [p.name for p in params if p not in columns]
    if missing:
        raise ValueError(f"parameter_binds for circuit '{circuit.name}' lacks {', '.join(missing)}")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"parameter_binds for circuit '{circuit.name}' have different lengths {sorted(lengths)}")
    table = np.column_stack([columns[p] for p in params])
    if not np.all(np.isfinite(table)):
        raise ValueError(f"parameter_binds for circuit '{circuit.name}' contain NaN or infinite values")
    return table

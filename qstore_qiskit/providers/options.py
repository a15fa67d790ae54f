"""Backend options: defaults, validation, and the qiskit-ionq names they share.

Every option is checked when set (``set_options``) and when overridden per ``run`` call,
so that a bad value fails before anything is compiled or sent, with a ``ValueError``
naming the option, what it expects and what it got.

Options shared with qiskit-ionq keep its names and meanings: ``shots``, ``memory``,
``sampler_seed``, ``noise_model``, ``error_mitigation`` (a
:class:`qiskit_ionq.ErrorMitigation`, sent as ``settings.error_mitigation``),
``job_settings`` (the job body's ``settings``), ``extra_metadata`` (merged into the job
metadata), ``name`` (the IonQ job name) and ``session_id``.
"""

from __future__ import annotations

import enum
import math
import os
from typing import Any, Mapping

import numpy as np
from qiskit.providers import Options

from .prepared import LAYOUT_KEY, PreparedCircuit, encode_layout

#: The seed's feature flags, all switchable per backend or per run for A/B comparison.
FEATURE_OPTIONS = ("use_batch_api", "use_native_gates", "enable_smart_caching", "adaptive_batch_sizing")
#: Options that configure the HTTP submitter (a new submitter is made when they change).
SUBMITTER_OPTIONS = (
    "connection_pool_size",
    "batch_window",
    "max_queue_wait_time",
    "adaptive_batch_sizing",
    "use_batch_api",
    "request_timeout",
    "max_retries",
    "journal_path",
)
#: IonQ job metadata values are strings of at most this many characters.
METADATA_VALUE_LIMIT = 400


def default_options() -> Options:
    """A fresh :class:`~qiskit.providers.Options` with every backend option's default."""
    options = Options(
        shots=1024,
        memory=False,
        sampler_seed=None,
        use_batch_api=True,
        use_native_gates=True,
        enable_smart_caching=True,
        adaptive_batch_sizing=False,
        connection_pool_size=16,
        batch_window=0.005,
        max_queue_wait_time=120.0,
        request_timeout=30.0,
        max_retries=6,
        journal_path=None,
        noise_model=None,
        optimization_level=2,
        progress_bar=None,
        error_mitigation=None,
        job_settings=None,
        extra_metadata=None,
        name=None,
        session_id=None,
        max_cost=None,
        template_cache_dir=None,  # None: default user cache dir; False: off; or a path
    )
    options.set_validator("shots", (1, 1_000_000))
    options.set_validator("connection_pool_size", (1, 1024))
    options.set_validator("batch_window", (0.0, 10.0))
    options.set_validator("max_queue_wait_time", (0.001, 7 * 24 * 3600.0))
    options.set_validator("request_timeout", (0.001, 3600.0))
    options.set_validator("max_retries", (0, 100))
    options.set_validator("optimization_level", [0, 1, 2, 3])
    for flag in (*FEATURE_OPTIONS, "memory"):
        options.set_validator(flag, bool)
    return options


def is_int(value: Any) -> bool:
    """An integer, numpy or Python, that is not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """A real number, numpy or Python, that is not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _error_mitigation(value: Any, bad) -> dict | None:
    """qiskit-ionq's ``ErrorMitigation`` enum (or its dict value) -> the settings block."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
        return dict(value)
    raise bad("None or a qiskit_ionq.ErrorMitigation (e.g. ErrorMitigation.DEBIASING)")


def check_option(key: str, value: Any, what: str) -> Any:
    """The validated (normalised) value of one option; ``ValueError`` naming it otherwise."""

    def bad(expected: str) -> ValueError:
        return ValueError(f"bad value for {what} {key!r}: expected {expected}, got {value!r}")

    if key == "shots":
        if not is_int(value):
            raise bad("an integer")
        if not 1 <= int(value) <= 1_000_000:
            raise bad("1 <= shots <= 1000000")
        return int(value)
    if key in (*FEATURE_OPTIONS, "memory"):
        if not isinstance(value, (bool, np.bool_)):
            raise bad("True or False")
        return bool(value)
    if key == "sampler_seed":
        if value is not None and (not is_int(value) or int(value) < 0):
            raise bad("None or a non-negative integer")
        return None if value is None else int(value)
    if key == "connection_pool_size":
        if not is_int(value) or not 1 <= int(value) <= 1024:
            raise bad("an integer in [1, 1024]")
        return int(value)
    if key == "batch_window":
        if not is_number(value) or not 0.0 <= float(value) <= 10.0:
            raise bad("seconds in [0, 10]")
        return float(value)
    if key == "max_queue_wait_time":
        if not is_number(value) or not 0.001 <= float(value) <= 7 * 24 * 3600.0:
            raise bad("seconds in [0.001, 604800]")
        return float(value)
    if key == "request_timeout":
        if not is_number(value) or not 0.001 <= float(value) <= 3600.0:
            raise bad("seconds in [0.001, 3600]")
        return float(value)
    if key == "max_retries":
        if not is_int(value) or not 0 <= int(value) <= 100:
            raise bad("an integer in [0, 100]")
        return int(value)
    if key == "journal_path":
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise bad("None or a file path")
        return None if value is None else os.fspath(value)
    if key == "noise_model":
        if value is not None and not isinstance(value, str):
            raise bad("None or a noise model name such as 'ideal' or 'aria-1'")
        return value
    if key == "optimization_level":
        if not is_int(value) or int(value) not in (0, 1, 2, 3):
            raise bad("0, 1, 2 or 3")
        return int(value)
    if key == "progress_bar":
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise bad("None, True or False")
        return None if value is None else bool(value)
    if key == "error_mitigation":
        return _error_mitigation(value, bad)
    if key == "job_settings":
        if value is not None and not (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
            raise bad("None or a dict of IonQ job settings")
        return None if value is None else dict(value)
    if key == "extra_metadata":
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise bad("None or a dict of string keys")
        out = {k: v if isinstance(v, str) else str(v) for k, v in value.items()}
        long = [k for k, v in out.items() if len(v) > METADATA_VALUE_LIMIT]
        if long:
            raise bad(f"metadata values of at most {METADATA_VALUE_LIMIT} characters ({', '.join(long)} too long)")
        return out
    if key in ("name", "session_id"):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise bad("None or a non-empty string")
        return value
    if key == "max_cost":
        if value is not None and (not is_number(value) or not math.isfinite(float(value)) or float(value) < 0):
            raise bad("None or a non-negative number (the service's cost unit, e.g. USD)")
        return None if value is None else float(value)
    return value


def job_fields(prepared: list[PreparedCircuit], opts: Mapping[str, Any], *, api_backend: str, simulator: bool) -> dict[str, Any]:
    """The :meth:`BatchSubmitter.submit` keywords for ``prepared`` under ``opts``.

    qiskit-ionq's meanings: ``noise_model``/``sampler_seed`` become the simulator's
    ``noise`` block; ``error_mitigation`` is merged into ``job_settings`` as
    ``settings.error_mitigation``; ``extra_metadata`` is merged into the job metadata,
    with the result layout (:func:`~.prepared.encode_layout`) that lets
    ``retrieve_job`` decode the results in another process.
    """
    noise = None
    if simulator and opts["noise_model"]:
        noise = {"model": opts["noise_model"]}
        if opts["sampler_seed"] is not None:
            noise["seed"] = opts["sampler_seed"]
    settings = dict(opts["job_settings"] or {})
    if opts["error_mitigation"]:
        block = dict(settings.get("error_mitigation") or {})
        block.update(opts["error_mitigation"])
        settings["error_mitigation"] = block
    metadata = dict(opts["extra_metadata"] or {})
    layout = encode_layout(prepared)
    if layout is not None:
        metadata[LAYOUT_KEY] = layout
    return {
        "backend": api_backend,
        "shots": opts["shots"],
        "gateset": prepared[0].gateset if prepared else "native",
        "noise": noise,
        "sampler_seed": opts["sampler_seed"],
        "name": opts["name"],
        "metadata": metadata,
        "session_id": opts["session_id"],
        "job_settings": settings or None,
    }

"""Start a local Ray for tests, benchmarks and examples without Ray asking an outside host.

Ray's API server process loads its usage-statistics module even with usage statistics
disabled (``RAY_USAGE_STATS_ENABLED=0``) and the dashboard off: at start it looks for
``~/ray_bootstrap_config.yaml`` and, when there is none, asks the cloud metadata
services (``169.254.169.254``, ``metadata.google.internal``) which cloud it runs on
(Ray 2.60, ``ray/_common/usage/usage_lib.py``). On a cloud machine those answer: a
local ``ray.init()`` reaches a host outside the machine. Ray has no switch for it, so
:func:`init_local_ray` starts Ray's processes with ``HOME`` pointing at a private
temporary directory holding that file (``provider: {type: local}``): the module reads
it and asks nobody. Only the processes Ray starts see that ``HOME`` (the calling process
gets its own back when ``ray.init`` returns); Ray keeps its session token there too.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

_BOOTSTRAP = "provider: {type: local}\n"


def init_local_ray(**kwargs: Any) -> Any:
    """``ray.init(**kwargs)`` for a local cluster that contacts no outside host.

    Sets ``RAY_USAGE_STATS_ENABLED=0`` unless the environment already says otherwise,
    defaults ``include_dashboard`` to ``False``, and starts Ray's processes with a
    private ``HOME`` (see the module docstring): a worker's ``~`` is that directory,
    which is removed when the interpreter exits, so give paths that must outlive the
    run explicitly (for example the backend option ``template_cache_dir``).

    Args:
        **kwargs: Passed to :func:`ray.init`.

    Returns:
        What :func:`ray.init` returns.
    """
    import ray  # pylint: disable=import-outside-toplevel  # the [ray] extra

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs.setdefault("include_dashboard", False)
    home = tempfile.mkdtemp(prefix="qstore-ray-home-")
    atexit.register(shutil.rmtree, home, True)
    with open(os.path.join(home, "ray_bootstrap_config.yaml"), "w", encoding="utf-8") as f:
        f.write(_BOOTSTRAP)
    saved = os.environ.get("HOME")
    os.environ["HOME"] = home
    try:
        return ray.init(**kwargs)
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved


__all__ = ["init_local_ray"]

"""Starting Ray for the zoo's parallel jobs (PBT, history collection, benchmark sweeps)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["WORKER_NICENESS", "init_ray"]

WORKER_NICENESS = "RAY_worker_niceness"
"""Ray's setting for its workers' ``nice`` value (Ray's own default: 15)."""


def init_ray(address: str | None = None, **kwargs: Any) -> bool:
    """Start Ray unless it is running; ``True`` when this call started it (the caller shuts it down).

    ``address=None`` starts a local Ray whose workers run at the same priority as the caller.
    Ray's default gives them niceness 15, so on a machine shared with any other busy process a
    local trial gets a few percent of a core (measured here beside two training processes: 40
    steps of a ReenGAGE benchmark cell took 461 s in a Ray trial; a plain process ran 300 steps
    of the same kind of cell in 19 s). An explicit
    ``RAY_worker_niceness`` in the environment is kept. With an ``address`` the cluster's own
    settings apply.

    :param address: ``None`` for a local Ray, else a cluster address (``"auto"``, ``"ray://…"``).
    :param kwargs: passed to ``ray.init`` (``num_cpus``, ``include_dashboard``, ``log_to_driver``).
    """
    import ray

    if ray.is_initialized():
        return False
    if address is None:
        os.environ.setdefault(WORKER_NICENESS, "0")
    ray.init(address=address, **kwargs)
    return True

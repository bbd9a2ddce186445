"""distill-zoo: Gymnasium environments and SB3-compatible agents for RL by distillation.

``import zoo`` registers every environment under the ``zoo/`` namespace. Agents live in
:mod:`zoo.agents` and Hub sharing in :mod:`zoo.hub`; both import torch, so they are not
imported here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from zoo import envs  # registers the environments

try:
    __version__ = version("distill-zoo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__", "envs"]

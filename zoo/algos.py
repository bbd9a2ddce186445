"""Names the CLI accepts for ``--algo``, resolved lazily to agent classes.

Plain SB3 / sb3-contrib algorithms and every zoo agent are listed; a name is resolved only
when used, so an optional family that fails to import does not break the others.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

#: ``--algo`` name -> ``module:Class``.
ALGOS: dict[str, str] = {
    "ppo": "stable_baselines3:PPO",
    "a2c": "stable_baselines3:A2C",
    "dqn": "stable_baselines3:DQN",
    "sac": "stable_baselines3:SAC",
    "td3": "stable_baselines3:TD3",
    "ddpg": "stable_baselines3:DDPG",
    "recurrent_ppo": "sb3_contrib:RecurrentPPO",
    "maskable_ppo": "sb3_contrib:MaskablePPO",
    "qrdqn": "sb3_contrib:QRDQN",
    "tqc": "sb3_contrib:TQC",
    "trpo": "sb3_contrib:TRPO",
    "kickstarted_ppo": "zoo.agents:KickstartedPPO",
    "kickstarted_a2c": "zoo.agents:KickstartedA2C",
    "kickstarted_recurrent_ppo": "zoo.agents:KickstartedRecurrentPPO",
    "kickstarted_maskable_ppo": "zoo.agents:KickstartedMaskablePPO",
    "reengage_ddpg": "zoo.agents:ReenGAGEDDPG",
    "reengage_td3": "zoo.agents:ReenGAGETD3",
    "reengage_sac": "zoo.agents:ReenGAGESAC",
    "reengage_dqn": "zoo.agents:ReenGAGEDQN",
    "multi_reengage": "zoo.agents:MultiReenGAGE",
}

#: Algorithms whose constructor takes ``teacher=``.
KICKSTARTED_ALGOS = frozenset(name for name in ALGOS if name.startswith("kickstarted_"))

_ON_POLICY_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
_MASKABLE_SPACES = ("Discrete", "MultiDiscrete", "MultiBinary")
#: ``--algo`` name -> the Gymnasium action spaces its SB3 base class accepts (SB3 asserts them
#: in the constructor; the runner checks them first to say which space is needed).
ACTION_SPACES: dict[str, tuple[str, ...]] = {
    "ppo": _ON_POLICY_SPACES,
    "a2c": _ON_POLICY_SPACES,
    "trpo": _ON_POLICY_SPACES,
    "recurrent_ppo": _ON_POLICY_SPACES,
    "kickstarted_ppo": _ON_POLICY_SPACES,
    "kickstarted_a2c": _ON_POLICY_SPACES,
    "kickstarted_recurrent_ppo": _ON_POLICY_SPACES,
    "maskable_ppo": _MASKABLE_SPACES,
    "kickstarted_maskable_ppo": _MASKABLE_SPACES,
    "dqn": ("Discrete",),
    "qrdqn": ("Discrete",),
    "reengage_dqn": ("Discrete",),
    "sac": ("Box",),
    "td3": ("Box",),
    "ddpg": ("Box",),
    "tqc": ("Box",),
    "reengage_ddpg": ("Box",),
    "reengage_td3": ("Box",),
    "reengage_sac": ("Box",),
    "multi_reengage": ("Box",),
}


def check_algo(name: str) -> str:
    """Return ``name`` if it is a known algorithm, else raise ValueError listing the valid ones."""
    if name in ALGOS:
        return name
    close = difflib.get_close_matches(name, ALGOS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"--algo {name!r} is not a known algorithm.{hint} Valid algorithms: {', '.join(ALGOS)}")


def check_action_space(name: str, env_id: str, action_space: Any) -> None:
    """Refuse ``--algo name`` on an env whose action space it cannot act in, naming the one it needs."""
    allowed = ACTION_SPACES.get(name)
    if allowed is None:
        return
    # A subclass of an allowed space (a custom Box) is fine; compare the Gymnasium space names in its MRO.
    if {klass.__name__ for klass in type(action_space).__mro__} & set(allowed):
        return
    space_name = type(action_space).__name__
    fitting = [algo for algo, spaces in ACTION_SPACES.items() if space_name in spaces]
    hint = f"; algorithms for {space_name} actions: {', '.join(fitting)}" if fitting else ""
    raise ValueError(
        f"--algo {name} needs a {' or '.join(allowed)} action space, but --env {env_id} has "
        f"{action_space}{hint}"
    )


def algo_class(name: str) -> Any:
    """Import and return the agent class registered under ``name``."""
    module_name, _, class_name = ALGOS[check_algo(name)].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def algo_name_of(model: Any) -> str:
    """The ``--algo`` name of a model instance (``"ppo"`` for a PPO), or its lower-cased class name."""
    target = f"{type(model).__module__.split('.')[0]}:{type(model).__name__}"
    for name, path in ALGOS.items():
        module_name, _, class_name = path.partition(":")
        if class_name == type(model).__name__ and target.split(":")[0] == module_name.split(".")[0]:
            return name
    return type(model).__name__.lower()

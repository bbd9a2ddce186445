"""Gymnasium environments of distill-zoo, registered under the ``zoo/`` namespace.

``import zoo`` (or ``import zoo.envs``) registers every environment, so that
``gym.make("zoo/DarkRoom-v0")`` works; ``gym.make("zoo:zoo/DarkRoom-v0")`` imports the
package itself. Meta-RL environments share one task interface, see :func:`tasks`.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec, load_env_creator, register

__all__ = ["ENV_IDS", "GOAL_ENV_IDS", "META_ENV_IDS", "register_envs", "task_from_json", "tasks"]

Split = Literal["train", "test", "all"]

#: Meta-RL environments with a task set and a fixed train/test split.
META_ENV_IDS: tuple[str, ...] = (
    "zoo/AdversarialBandit-v0",
    "zoo/DarkRoom-v0",
    "zoo/DarkRoomHard-v0",
    "zoo/DarkKeyToDoor-v0",
    "zoo/Watermaze-v0",
)
#: Multi-goal sparse-reward goal environments (ReenGAGE).
GOAL_ENV_IDS: tuple[str, ...] = (
    "zoo/ContinuousSeek-v0",
    "zoo/ContinuousSeek-d5-v0",
    "zoo/ContinuousSeek-d10-v0",
    "zoo/ContinuousSeek-d20-v0",
    "zoo/DriveSeek-v0",
    "zoo/NoisySeek-v0",
    "zoo/ContinuousSeek-v1",
    "zoo/ContinuousSeek-d5-v1",
    "zoo/ContinuousSeek-d10-v1",
    "zoo/ContinuousSeek-d20-v1",
    "zoo/DriveSeek-v1",
    "zoo/NoisySeek-v1",
    "zoo/BitFlip-v0",
    "zoo/BitFlip-n40-v0",
)
ENV_IDS: tuple[str, ...] = META_ENV_IDS + GOAL_ENV_IDS


def register_envs() -> None:
    """Register every zoo environment with Gymnasium (idempotent)."""
    if "zoo/DarkRoom-v0" in gym.registry:
        return

    # Meta-RL: bandit, grid worlds and pixel Watermaze, each with a native numpy vector version.
    register(
        id="zoo/AdversarialBandit-v0",
        entry_point="zoo.envs.bandit:AdversarialBanditEnv",
        vector_entry_point="zoo.envs.vector:BanditVectorEnv",
        max_episode_steps=1,
    )
    register(
        id="zoo/DarkRoom-v0",
        entry_point="zoo.envs.darkroom:DarkRoomEnv",
        vector_entry_point="zoo.envs.vector:DarkRoomVectorEnv",
        max_episode_steps=20,
    )
    register(
        id="zoo/DarkRoomHard-v0",
        entry_point="zoo.envs.darkroom:DarkRoomHardEnv",
        vector_entry_point="zoo.envs.vector:DarkRoomHardVectorEnv",
        max_episode_steps=20,
    )
    register(
        id="zoo/DarkKeyToDoor-v0",
        entry_point="zoo.envs.key_to_door:DarkKeyToDoorEnv",
        vector_entry_point="zoo.envs.vector:DarkKeyToDoorVectorEnv",
        max_episode_steps=50,
    )
    register(
        id="zoo/Watermaze-v0",
        entry_point="zoo.envs.watermaze:WatermazeEnv",
        vector_entry_point="zoo.envs.vector:WatermazeVectorEnv",
        max_episode_steps=50,
    )

    # Goal environments (Dict observation, vectorised compute_reward) for ReenGAGE + HER.
    # v1 is the paper's behaviour (the classes' defaults); v0 keeps the first release's.
    for version, success in (("v0", "step"), ("v1", "episode")):
        register(
            id=f"zoo/ContinuousSeek-{version}",
            entry_point="zoo.envs.seek:ContinuousSeekEnv",
            max_episode_steps=10,
            kwargs={"dim": 10, "success": success},
        )
        for dim in (5, 10, 20):
            register(
                id=f"zoo/ContinuousSeek-d{dim}-{version}",
                entry_point="zoo.envs.seek:ContinuousSeekEnv",
                max_episode_steps=10,
                kwargs={"dim": dim, "success": success},
            )
    register(
        id="zoo/DriveSeek-v0",
        entry_point="zoo.envs.seek:DriveSeekEnv",
        max_episode_steps=40,
        kwargs={"start": "random", "frame": "corner", "success": "step"},
    )
    register(id="zoo/DriveSeek-v1", entry_point="zoo.envs.seek:DriveSeekEnv", max_episode_steps=40)
    register(
        id="zoo/NoisySeek-v0",
        entry_point="zoo.envs.seek:NoisySeekEnv",
        max_episode_steps=40,
        kwargs={"goal_sampling": "geometric", "success": "step"},
    )
    register(id="zoo/NoisySeek-v1", entry_point="zoo.envs.seek:NoisySeekEnv", max_episode_steps=40)
    register(
        id="zoo/BitFlip-v0",
        entry_point="zoo.envs.bitflip:BitFlipEnv",
        max_episode_steps=20,
        kwargs={"n_bits": 20},
    )
    register(
        id="zoo/BitFlip-n40-v0",
        entry_point="zoo.envs.bitflip:BitFlipEnv",
        max_episode_steps=40,
        kwargs={"n_bits": 40},
    )


def _spec(env_id: str) -> EnvSpec:
    try:
        return gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"env_id={env_id!r} is not a registered environment; zoo environments: {', '.join(ENV_IDS)}"
        ) from error


def task_from_json(value: Any) -> Any:
    """Turn a task read from JSON or YAML (nested lists) back into the tuples the environments use.

    :param value: a task as stored, e.g. ``[[2, 2], [6, 6]]`` -> ``((2, 2), (6, 6))``.
    """
    if isinstance(value, list):
        return tuple(task_from_json(item) for item in value)
    return value


def tasks(env_id: str, split: Split = "train", **env_kwargs: Any) -> list[Any]:
    """Return the task list of a meta-RL environment.

    :param env_id: a registered meta-RL environment id, e.g. ``"zoo/DarkRoom-v0"``.
    :param split: ``"train"``, ``"test"`` or ``"all"``; the split is fixed and documented
        in each environment's docstring.
    :param env_kwargs: constructor arguments that change the task set (e.g. ``size``).
    :return: the tasks, each usable as ``gym.make(env_id, task=t)`` or
        ``env.reset(options={"task": t})``.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split={split!r} is not allowed; use 'train', 'test' or 'all'")
    spec = _spec(env_id)
    env_class = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    task_method = getattr(env_class, "tasks", None)
    if task_method is None:
        raise ValueError(
            f"env_id={env_id!r} has no task set; meta-RL environments: {', '.join(META_ENV_IDS)}"
        )
    kwargs = {**spec.kwargs, **env_kwargs}
    return list(task_method(split=split, **kwargs))


register_envs()

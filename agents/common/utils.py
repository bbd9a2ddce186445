"""Helpers shared by the agent families: resolving and freezing teacher policies."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file

from .type_aliases import TeacherLike

__all__ = ["check_teacher_spaces", "freeze_policy", "load_policy_from_zip", "resolve_teacher"]


def load_policy_from_zip(path: str | os.PathLike, device: th.device | str = "cpu") -> BasePolicy:
    """Rebuild only the policy of an SB3 ``.zip`` file, whatever algorithm saved it.

    The file is the caller's own local file; SB3's format stores the policy class with
    cloudpickle, so it is unpickled as ``Cls.load`` would.

    :param path: the ``.zip`` file written by ``model.save``.
    :param device: where to put the policy.
    :return: the policy with its saved weights, in evaluation mode.
    :raises ValueError: if the file holds no policy.
    """
    data, params, _ = load_from_zip_file(path, device=device)
    if data is None or "policy" not in params or "policy_class" not in data:
        raise ValueError(f"teacher={str(path)!r} is not an SB3 model file with a policy")
    policy_kwargs = dict(data.get("policy_kwargs", {}))
    policy_kwargs.pop("device", None)
    policy_class = data["policy_class"]
    policy = policy_class(
        data["observation_space"], data["action_space"], lambda _progress: 0.0, **policy_kwargs
    )
    policy.load_state_dict(params["policy"])
    return policy.to(device)


def resolve_teacher(teacher: TeacherLike, device: th.device | str = "cpu") -> BasePolicy:
    """Turn any accepted teacher form into an SB3 policy.

    Only the caller names a teacher: a saved agent's config never does (``zoo.hub.trust`` refuses
    a ``teacher`` field), so a repo cannot point at a pickle or at another repo. A ``.zip`` path
    is the caller's own file and is unpickled as SB3 does; a directory or a repo id is read
    pickle-free through ``zoo.hub``. Nested resolutions are limited to
    ``zoo.hub.trust.MAX_TEACHER_DEPTH``.

    :param teacher: an SB3 model (its ``.policy`` is used) or policy; a path to an SB3 ``.zip``
        file or to a directory written by ``zoo.hub.save_agent``; or a Hugging Face Hub repo id
        (``"org/name"``), loaded with ``zoo.hub.load_from_hub``.
    :param device: where to load weights read from disk or the hub.
    :return: the teacher's policy.
    :raises ValueError: if ``teacher`` is none of these or has no action distribution.
    """
    from zoo.hub.trust import resolving_teacher

    with resolving_teacher(teacher):
        policy = _resolve_teacher_policy(teacher, device)
    if not isinstance(policy, BasePolicy) or not hasattr(policy, "get_distribution"):
        raise ValueError(
            f"teacher={teacher!r}: its policy ({type(policy).__name__}) has no action distribution "
            "(get_distribution); teachers must be actor-critic policies"
        )
    return policy


def _resolve_teacher_policy(teacher: TeacherLike, device: th.device | str) -> Any:
    policy: Any
    if isinstance(teacher, BaseAlgorithm):
        policy = teacher.policy
    elif isinstance(teacher, BasePolicy):
        policy = teacher
    elif isinstance(teacher, (str, os.PathLike)):
        path = Path(teacher)
        if path.is_dir():
            hub = importlib.import_module("zoo.hub")
            policy = hub.load_agent(path, device=device).policy
        elif path.is_file() or (path.suffix == "" and path.with_suffix(".zip").is_file()):
            policy = load_policy_from_zip(path if path.is_file() else path.with_suffix(".zip"), device)
        elif isinstance(teacher, str) and teacher.count("/") == 1 and not teacher.endswith(".zip"):
            try:
                hub = importlib.import_module("zoo.hub")
                load_from_hub = hub.load_from_hub
            except (ImportError, AttributeError) as error:
                raise ValueError(
                    f"teacher={teacher!r} looks like a hub repo id but zoo.hub.load_from_hub is unavailable"
                ) from error
            loaded = load_from_hub(teacher, device=str(device))
            policy = loaded.policy if isinstance(loaded, BaseAlgorithm) else loaded
        else:
            raise ValueError(f"teacher={str(teacher)!r}: no such file or directory, and not a hub repo id")
    else:
        raise ValueError(
            f"teacher={teacher!r} (type {type(teacher).__name__}) must be an SB3 model or policy, "
            "a path to a saved model, or a hub repo id"
        )
    return policy


def is_recurrent_policy(policy: BasePolicy) -> bool:
    """Whether ``policy`` carries a hidden state (sb3-contrib's recurrent policies)."""
    return getattr(policy, "lstm_actor", None) is not None


def freeze_policy(policy: BasePolicy, device: th.device | str) -> BasePolicy:
    """Move a policy to ``device``, put it in evaluation mode and stop its gradients.

    :param policy: the policy (modified in place).
    :param device: target device.
    :return: the same policy.
    """
    policy = policy.to(device)
    policy.set_training_mode(False)
    for parameter in policy.parameters():
        parameter.requires_grad_(False)
    return policy


def check_teacher_spaces(
    name: str, teacher: BasePolicy, observation_space: spaces.Space, action_space: spaces.Space
) -> None:
    """Raise if a teacher does not share the student's spaces.

    :param name: how to call the teacher in the message (e.g. ``"teacher[3]"``).
    :param teacher: the teacher policy.
    :param observation_space: the student's observation space.
    :param action_space: the student's action space.
    :raises ValueError: naming both spaces when they differ.
    """
    if teacher.action_space != action_space:
        raise ValueError(
            f"{name} has action space {teacher.action_space} but the student has {action_space}; "
            "teacher and student must share the action space"
        )
    if teacher.observation_space != observation_space:
        raise ValueError(
            f"{name} has observation space {teacher.observation_space} but the student has "
            f"{observation_space}; teacher and student must share the observation space"
        )

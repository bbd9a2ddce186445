"""Stable-Baselines3 adapter for Gymnasium vector environments.

The only module of :mod:`zoo.envs` that imports ``stable_baselines3``, so ``import zoo``
stays light.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from .vector import TaskVectorEnv

__all__ = ["SB3VecEnv"]


def split_infos(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Turn a Gymnasium vector info dict (arrays plus ``"_key"`` masks) into one dict per env.

    Nested dicts (e.g. ``"episode"`` of ``RecordEpisodeStatistics``) are split recursively;
    ``final_obs``/``final_info`` are left out (the adapter handles them).

    :param infos: the info dict returned by a Gymnasium ``VectorEnv``.
    :param num_envs: number of sub-environments.
    """
    result: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, value in infos.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask = infos.get(f"_{key}")
        present = range(num_envs) if mask is None else np.flatnonzero(mask).tolist()
        if isinstance(value, dict):
            parts = split_infos(value, num_envs)
            for index in present:
                result[index][key] = parts[index]
        elif isinstance(value, np.ndarray) and value.dtype != object:
            items = value.tolist() if value.ndim == 1 else list(value)
            for index in present:
                result[index][key] = items[index]
        else:
            for index in present:
                result[index][key] = value[index]
    return result


class SB3VecEnv(VecEnv):
    """Present a Gymnasium ``VectorEnv`` as a Stable-Baselines3 ``VecEnv``.

    SB3 expects same-step autoreset: when a sub-environment finishes, ``step_wait`` returns
    the first observation of its next episode, with the last one in
    ``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]`` set for time-outs;
    the finished episode's last info is the one returned, the new episode's reset info goes
    to ``reset_infos``. How the adapter gets there depends on the env's
    ``metadata["autoreset_mode"]``:

    - ``SAME_STEP``: used as is (``info["final_obs"]``, ``info["final_info"]``).
    - ``DISABLED``: the adapter resets finished sub-envs with ``reset(options={"reset_mask": ...})``.
    - ``NEXT_STEP``: a zoo native env (:class:`~zoo.envs.vector.TaskVectorEnv`) is switched to
      ``SAME_STEP`` (so ``SB3VecEnv(gym.make_vec("zoo/DarkRoom-v0", 8))`` works); any other
      env raises ValueError (build it with ``vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}``).

    Episode statistics for SB3's logger come from wrapping this adapter in SB3's
    ``VecMonitor``. ``get_attr("task_index")`` returns each sub-env's task index;
    ``get_attr`` of another per-sub-env array attribute returns its entries; other
    attributes of a native env are the same for all sub-envs. ``env_method`` calls each
    sub-env's method on a ``SyncVectorEnv``/``AsyncVectorEnv``; on a native env it calls the
    vector env's method once and returns its result for every requested index.

    :param vector_env: the Gymnasium vector environment.
    """

    def __init__(self, vector_env: gym.vector.VectorEnv) -> None:
        self.vector_env = vector_env
        mode = AutoresetMode(vector_env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
        if mode == AutoresetMode.NEXT_STEP:
            if not isinstance(vector_env, TaskVectorEnv):
                raise ValueError(
                    f"vector_env={vector_env!r} uses autoreset_mode=NEXT_STEP, which SB3 cannot use; "
                    "build it with autoreset_mode SAME_STEP or DISABLED "
                    "(e.g. gym.make_vec(..., vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP}))"
                )
            vector_env.set_autoreset_mode(AutoresetMode.SAME_STEP)
            mode = AutoresetMode.SAME_STEP
        self.autoreset_mode = mode
        self._actions: np.ndarray | None = None
        super().__init__(
            vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space
        )

    # -- stepping ----------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        """Reset every sub-environment with the seeds/options set by ``seed``/``set_options``."""
        seeds: list[int | None] | None = (
            None if all(seed is None for seed in self._seeds) else list(self._seeds)
        )
        options = [dict(option) for option in self._options]
        if any(option != options[0] for option in options):
            raise ValueError(
                "per-sub-environment reset options differ; a Gymnasium VectorEnv takes one options dict"
            )
        observations, infos = self.vector_env.reset(seed=seeds, options=options[0] or None)
        self.reset_infos = split_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step the vector env and convert the result to SB3's conventions."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions)")
        observations, rewards, terminated, truncated, infos = self.vector_env.step(self._actions)
        self._actions = None
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        dones = terminated | truncated
        step_infos = split_infos(infos, self.num_envs)
        done_ids = np.flatnonzero(dones).tolist()
        if done_ids:
            if self.autoreset_mode == AutoresetMode.SAME_STEP:
                final_observations = infos["final_obs"]
                final_infos = split_infos(infos.get("final_info", {}), self.num_envs)
                for index in done_ids:
                    self.reset_infos[index] = step_infos[index]
                    step_infos[index] = final_infos[index]
                    step_infos[index]["terminal_observation"] = _take(final_observations, index)
            else:  # DISABLED: reset the finished sub-environments ourselves.
                final_observations = observations
                reset_observations, reset_info = self.vector_env.reset(options={"reset_mask": dones.copy()})
                reset_infos = split_infos(reset_info, self.num_envs)
                for index in done_ids:
                    step_infos[index]["terminal_observation"] = _take(final_observations, index)
                    self.reset_infos[index] = reset_infos[index]
                observations = reset_observations
        for index in range(self.num_envs):
            step_infos[index]["TimeLimit.truncated"] = bool(truncated[index] and not terminated[index])
        return observations, np.asarray(rewards, dtype=np.float32), dones, step_infos

    def close(self) -> None:
        """Close the vector environment."""
        self.vector_env.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Return one RGB frame per sub-environment (``render_mode="rgb_array"``)."""
        frames = self.vector_env.render()
        if frames is None:
            return [None] * self.num_envs
        return list(frames)

    # -- attributes and methods --------------------------------------------------------------
    def _sub_envs(self) -> list[gym.Env] | None:
        envs = getattr(self.vector_env, "envs", None)
        return list(envs) if envs is not None else None

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Return ``attr_name`` of each requested sub-environment (see the class docstring).

        :param attr_name: attribute name, e.g. ``"task_index"``.
        :param indices: sub-environment indices (all by default).
        """
        index_list = list(self._get_indices(indices))
        sub_envs = self._sub_envs()
        if sub_envs is not None:
            return [getattr(sub_envs[index], attr_name) for index in index_list]
        if not isinstance(self.vector_env, TaskVectorEnv) and hasattr(self.vector_env, "get_attr"):
            values = self.vector_env.get_attr(attr_name)
            return [values[index] for index in index_list]
        value = getattr(self.vector_env, attr_name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == self.num_envs:
            return [value[index].item() if value.ndim == 1 else value[index] for index in index_list]
        return [value for _ in index_list]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set ``attr_name`` on the requested sub-environments.

        :param attr_name: attribute name.
        :param value: the new value.
        :param indices: sub-environment indices (all by default).
        """
        index_list = list(self._get_indices(indices))
        sub_envs = self._sub_envs()
        if sub_envs is not None:
            for index in index_list:
                setattr(sub_envs[index], attr_name, value)
            return
        current = getattr(self.vector_env, attr_name, None)
        if isinstance(current, np.ndarray) and current.ndim >= 1 and current.shape[0] == self.num_envs:
            current[index_list] = value
        elif len(index_list) == self.num_envs:
            setattr(self.vector_env, attr_name, value)
        else:
            raise ValueError(
                f"attr_name={attr_name!r} is shared by all sub-environments of a native vector env; "
                f"indices={indices!r} must cover all {self.num_envs}"
            )

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call ``method_name`` (see the class docstring for native envs).

        :param method_name: the method to call.
        :param method_args: positional arguments.
        :param indices: sub-environment indices (all by default).
        :param method_kwargs: keyword arguments.
        """
        index_list = list(self._get_indices(indices))
        sub_envs = self._sub_envs()
        if sub_envs is not None:
            return [
                getattr(sub_envs[index], method_name)(*method_args, **method_kwargs) for index in index_list
            ]
        if not isinstance(self.vector_env, TaskVectorEnv) and hasattr(self.vector_env, "call"):
            results = self.vector_env.call(method_name, *method_args, **method_kwargs)
            return [results[index] for index in index_list]
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        return [result for _ in index_list]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Whether each sub-environment is wrapped with ``wrapper_class`` (never, for native envs).

        :param wrapper_class: a Gymnasium wrapper class.
        :param indices: sub-environment indices (all by default).
        """
        index_list: Iterable[int] = self._get_indices(indices)
        sub_envs = self._sub_envs()
        if sub_envs is None:
            return [False for _ in index_list]
        return [is_wrapped(sub_envs[index], wrapper_class) for index in index_list]


def _take(observations: Any, index: int) -> Any:
    if isinstance(observations, dict):
        return {key: _take(value, index) for key, value in observations.items()}
    return observations[index]

"""Hyperparameter files (``zoo/hyperparams/<algo>.yml``) and ``--params key:value`` overrides.

A file maps env ids to settings; ``default:`` applies to any env not listed, and an env's
entry is merged over the default. Besides the agent's constructor arguments, these keys are
understood by the runner:

- ``n_timesteps``: the training budget when ``-n`` is not given;
- ``n_envs``: number of parallel environments;
- ``vec_env``: ``"native"`` to use the zoo's numpy vector env, else ``"dummy"``;
- ``env_kwargs``: arguments for ``gym.make``;
- ``replay_buffer_class``: ``"HerReplayBuffer"`` selects SB3's HER buffer.

Schedules are written as strings (``lin_3e-4``, ``lin_2.0_0.0``, ``exp_2.0_0.999``) and turned
into callables by the agents / the runner.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

RUNNER_KEYS = frozenset({"n_timesteps", "n_envs", "vec_env", "env_kwargs", "eval_freq", "n_eval_episodes"})


def load_hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    """Return the merged hyperparameters for ``algo`` on ``env_id`` (empty if no file exists)."""
    path = resources.files("zoo.hyperparams").joinpath(f"{algo}.yml")
    if not path.is_file():
        return {}
    table = yaml.safe_load(path.read_text()) or {}
    if not isinstance(table, dict):
        raise ValueError(
            f"hyperparameter file {path} must map env ids to settings, got {type(table).__name__}"
        )
    merged: dict[str, Any] = dict(table.get("default") or {})
    merged.update(table.get(env_id) or {})
    return merged


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """Parse ``--params key:value`` pairs; values are YAML (numbers, lists, dicts, strings).

    :raises ValueError: naming the malformed pair and why it is malformed.
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw_value = pair.partition(":")
        key = key.strip()
        if not sep:
            raise ValueError(f"--params {pair!r} is malformed: expected key:value, e.g. learning_rate:3e-4")
        if not key.isidentifier():
            raise ValueError(f"--params {pair!r} is malformed: key {key!r} is not a valid parameter name")
        if raw_value.strip() == "":
            raise ValueError(f"--params {pair!r} is malformed: the value after ':' is empty")
        try:
            overrides[key] = yaml.safe_load(raw_value)
        except yaml.YAMLError as error:
            raise ValueError(
                f"--params {pair!r} is malformed: the value is not valid YAML ({error})"
            ) from error
    return overrides

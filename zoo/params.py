"""Hyperparameter files (``zoo/hyperparams/<algo>.yml``) and ``--params key:value`` overrides.

A file maps env ids to settings; ``default:`` applies to any env not listed. The files are
rl-baselines3-zoo hyperparameter files (``python -m rl_zoo3.train -conf zoo/hyperparams/ppo.yml``
reads them): rl_zoo3 takes an env's entry alone, without the default, so every entry is complete,
written as the default plus its own keys with YAML's merge key (``<<: *default``). The zoo still
merges an entry over ``default:``, so a hand-written file without the merge key works here too.
Besides the agent's constructor arguments, these keys are understood by the runner, and by rl_zoo3:

- ``n_timesteps``: the training budget when ``-n`` is not given;
- ``n_envs``: number of parallel environments;
- ``env_kwargs``: arguments for ``gym.make``;
- ``replay_buffer_class``: ``"HerReplayBuffer"`` selects SB3's HER buffer.

Which vector env runs the envs (the zoo's native numpy one or SB3's ``DummyVecEnv``) is the
``--vec-env`` flag, as in rl_zoo3, not a hyperparameter: a key rl_zoo3 does not know would reach
the agent's constructor there.

Schedules are written as strings (``lin_3e-4``, ``lin_2.0_0.0``, ``exp_2.0_0.999``) and turned
into callables by the agents / the runner.

:func:`check_hyperparams` refuses the values SB3 would only trip over later (a zero batch size, a
non-mapping ``policy_kwargs``, ``device`` given twice), naming the key, the value and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from importlib import resources
from typing import Any

import yaml

RUNNER_KEYS = frozenset({"n_timesteps", "n_envs", "env_kwargs"})

#: Counts and sizes of SB3 / sb3-contrib constructors and of the runner that must be 1 or more.
POSITIVE_INTEGER_KEYS = frozenset(
    {
        "n_timesteps",
        "n_envs",
        "n_steps",
        "batch_size",
        "n_epochs",
        "buffer_size",
        "target_update_interval",
        "policy_delay",
        "n_critics",
        "n_quantiles",
        "stats_window_size",
        "cg_max_steps",
        "n_critic_updates",
    }
)
#: Integer hyperparameters where 0 is meaningful (no warm-up, no quantiles dropped).
NON_NEGATIVE_INTEGER_KEYS = frozenset({"learning_starts", "top_quantiles_to_drop_per_net"})
#: Hyperparameters that are keyword-argument mappings.
MAPPING_KEYS = frozenset({"policy_kwargs", "replay_buffer_kwargs", "env_kwargs"})
#: Constructor arguments the runner sets itself, and the flag that sets each.
RESERVED_KEYS: dict[str, str] = {
    "device": "--device",
    "seed": "--seed",
    "verbose": "--verbose",
    "teacher": "--teacher",
    "env": "--env",
    "tensorboard_log": "the run folder (its tensorboard/ subfolder)",
    # Runner settings that are flags in rl_zoo3 too; in a hyperparameter file they would reach
    # the agent's constructor when rl_zoo3 reads it.
    "vec_env": "--vec-env",
    "eval_freq": "--eval-freq",
    "n_eval_episodes": "--eval-episodes",
}


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


def parse_params(pairs: list[str], flag: str = "--params") -> dict[str, Any]:
    """Parse ``key:value`` pairs of ``flag``; values are YAML (numbers, lists, dicts, strings).

    :param pairs: the pairs as typed.
    :param flag: the flag they were given with, named in errors (``--env-kwargs``, …).
    :raises ValueError: naming the flag, the malformed pair and why it is malformed.
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw_value = pair.partition(":")
        key = key.strip()
        if not sep:
            raise ValueError(f"{flag} {pair!r} is malformed: expected key:value, e.g. learning_rate:3e-4")
        if not key.isidentifier():
            raise ValueError(f"{flag} {pair!r} is malformed: key {key!r} is not a valid parameter name")
        if raw_value.strip() == "":
            raise ValueError(f"{flag} {pair!r} is malformed: the value after ':' is empty")
        if key in overrides:
            raise ValueError(f"{flag} {pair!r}: {key} is given twice; give it once")
        try:
            overrides[key] = _number_like(yaml.safe_load(raw_value))
        except yaml.YAMLError as error:
            raise ValueError(
                f"{flag} {pair!r} is malformed: the value is not valid YAML ({error})"
            ) from error
    return overrides


_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?\d+[eE][-+]?\d+$")


def _number_like(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; a user typing it means the number."""
    if isinstance(value, str) and _FLOAT_WITHOUT_DOT.match(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_number_like(item) for item in value]
    return value


def _as_integer(value: Any) -> int | None:
    """``value`` as an int if it is one, else None.

    YAML gives ``64.0`` for ``64.0`` and the string ``'1e6'`` for ``1e6`` (its floats need a dot
    and a signed exponent); both are integers to a user writing ``buffer_size:1e6``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _integer_rule(key: str, value: Any) -> tuple[Any, str | None]:
    """The normalised value and, if it breaks its key's rule, the rule it breaks."""
    number = _as_integer(value)
    if key in POSITIVE_INTEGER_KEYS:
        return (
            (number, None)
            if number is not None and number >= 1
            else (value, "a positive integer (1 or more)")
        )
    if key in NON_NEGATIVE_INTEGER_KEYS:
        return (number, None) if number is not None and number >= 0 else (value, "an integer, 0 or more")
    if key == "gradient_steps":
        valid = number is not None and (number >= 1 or number == -1)
        return (number, None) if valid else (value, "a positive integer, or -1 (as many as steps collected)")
    if key == "sde_sample_freq":
        return (number, None) if number is not None and number >= -1 else (value, "an integer, -1 or more")
    if key == "train_freq":
        if number is not None:
            return (number, None) if number >= 1 else (value, _TRAIN_FREQ_RULE)
        if isinstance(value, list | tuple) and len(value) == 2:
            count = _as_integer(value[0])
            if count is not None and count >= 1 and value[1] in ("step", "episode"):
                return [count, value[1]], None
        return value, _TRAIN_FREQ_RULE
    return value, None


_TRAIN_FREQ_RULE = 'a positive integer or [n, "step"] / [n, "episode"] with n at least 1'


def check_hyperparams(
    hyperparams: Mapping[str, Any], *, overrides: Collection[str] = (), source: str = "hyperparameter file"
) -> dict[str, Any]:
    """Check well-known hyperparameters; return a copy with integral floats made ints.

    :param hyperparams: the merged hyperparameters (file entry, then ``--params`` overrides).
    :param overrides: keys that came from ``--params`` (the message names that flag), the
        others are attributed to ``source``.
    :param source: where the other keys came from, e.g. ``zoo/hyperparams/ppo.yml``.
    :raises ValueError: naming the key, the value, where it came from and what is allowed.
    """
    checked = dict(hyperparams)
    for key, value in hyperparams.items():
        origin = (
            f"--params {key}:{_show(value)}"
            if key in overrides
            else f"{source} setting {key}: {_show(value)}"
        )
        if key in RESERVED_KEYS:
            raise ValueError(
                f"{origin} is not allowed: {key} is set by {RESERVED_KEYS[key]}; give it there, once"
            )
        if key in MAPPING_KEYS and value is not None and not isinstance(value, Mapping):
            raise ValueError(
                f"{origin} is not allowed: {key} must be a mapping of keyword arguments, "
                f"e.g. {key}:{{name: value}}; got {type(value).__name__}"
            )
        normalised, rule = _integer_rule(key, value)
        if rule is not None:
            raise ValueError(f"{origin} is not allowed: {key} must be {rule}; got {value!r}")
        checked[key] = normalised
    return checked


def _show(value: Any) -> str:
    """A value as it would be typed after ``key:`` (YAML flow style, one line)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()

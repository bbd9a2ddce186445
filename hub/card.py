"""Model cards: a pure function from evaluation results to the README.md pushed with an agent."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_SB3_ALGORITHMS = frozenset({"A2C", "DDPG", "DQN", "PPO", "SAC", "TD3"})
_SB3_CONTRIB_ALGORITHMS = frozenset({"ARS", "CrossQ", "MaskablePPO", "QRDQN", "RecurrentPPO", "TQC", "TRPO"})
#: rl_zoo3's --algo names whose class name lower-cased is the same.
_RL_ZOO_ALGORITHMS = frozenset(
    {"a2c", "ddpg", "dqn", "ppo", "sac", "td3", "ars", "crossq", "qrdqn", "tqc", "trpo"}
)


def generate_model_card(
    algo_name: str,
    env_id: str,
    mean_reward: float,
    std_reward: float,
    *,
    repo_id: str | None = None,
    n_eval_episodes: int | None = None,
    deterministic: bool = True,
    hyperparameters: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    has_video: bool = False,
    description: str | None = None,
    sb3_zip: str | None = None,
    dataset_repo_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Build a model card: the README.md text (YAML front matter + markdown) and its metadata.

    The metadata is built with huggingface_hub's ``ModelCardData`` and ``EvalResult`` and is what
    huggingface_sb3's ``package_to_hub`` writes: ``library_name: stable-baselines3``, the env id as
    the ``model-index`` dataset and ``mean_reward`` written ``"mean +/- std"``; ``distill-zoo``
    is a tag. The function has no side effects (no I/O, no clock, no network), so the same
    inputs give the same card.

    :param algo_name: algorithm class name, e.g. ``"PPO"`` or ``"KickstartedPPO"``.
    :param env_id: the Gymnasium environment id the agent was evaluated on.
    :param mean_reward: mean episodic return over the evaluation episodes.
    :param std_reward: standard deviation of the episodic return.
    :param repo_id: the Hub repo id, used in the usage snippet.
    :param n_eval_episodes: number of evaluation episodes, shown in the card.
    :param deterministic: whether evaluation used deterministic actions.
    :param hyperparameters: plain-JSON hyper-parameters to list in the card.
    :param tags: extra tags.
    :param has_video: whether ``replay.mp4`` is part of the repo.
    :param description: an optional paragraph placed under the title.
    :param sb3_zip: name of the SB3 ``.zip`` in the repo (``"<repo-name>.zip"``), if there is one:
        the card then shows how huggingface_sb3 and rl_zoo3 load it.
    :param dataset_repo_id: the dataset repo holding the training data (listed under
        ``datasets:`` in the metadata, with a loading snippet).
    :return: ``(readme_text, metadata)``; ``metadata`` is the dict written as YAML front matter.
    """
    if not algo_name:
        raise ValueError(f"algo_name={algo_name!r} must be a non-empty string")
    if not env_id:
        raise ValueError(f"env_id={env_id!r} must be a non-empty string")
    if n_eval_episodes is not None and n_eval_episodes < 1:
        raise ValueError(f"n_eval_episodes={n_eval_episodes} must be at least 1")
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    all_tags = [
        env_id,
        "deep-reinforcement-learning",
        "reinforcement-learning",
        "stable-baselines3",
        "distill-zoo",
    ]
    all_tags += [tag for tag in (algo_name, *tags) if tag not in all_tags]
    # The same metadata huggingface_sb3's package_to_hub writes (the Hub lists the repo under
    # stable-baselines3), with distill-zoo as a tag.
    card_data = ModelCardData(
        library_name="stable-baselines3",
        tags=all_tags,
        model_name=algo_name,
        eval_results=[
            EvalResult(
                task_type="reinforcement-learning",
                task_name="reinforcement-learning",
                dataset_type=env_id,
                dataset_name=env_id,
                metric_type="mean_reward",
                metric_name="mean_reward",
                metric_value=f"{mean_reward:.2f} +/- {std_reward:.2f}",
                verified=False,
            )
        ],
        datasets=[dataset_repo_id] if dataset_repo_id else None,
    )
    load_target = repo_id or f"<org>/{algo_name.lower()}-{env_id.replace('/', '-')}"
    episodes = f"{n_eval_episodes} " if n_eval_episodes is not None else ""
    mode = "deterministic" if deterministic else "stochastic"
    lines = [
        f"# **{algo_name}** agent playing **{env_id}**",
        "",
        description
        or (
            f"This is a trained **{algo_name}** agent playing **{env_id}**, saved with "
            "[distill-zoo](https://github.com/distill-zoo/distill-zoo) as safetensors weights and a JSON "
            "config (no pickle)."
        ),
        "",
        "## Evaluation",
        "",
        "| environment | mean reward ± std | episodes | actions |",
        "|---|---|---|---|",
        f"| {env_id} | {mean_reward:.2f} ± {std_reward:.2f} | {episodes.strip() or '?'} | {mode} |",
        "",
    ]
    if has_video:
        lines += ["## Replay", "", '<video src="replay.mp4" controls autoplay loop></video>', ""]
    lines += [
        "## Usage",
        "",
        "```python",
        "from zoo.hub import load_from_hub",
        "",
        f'model = load_from_hub("{load_target}")',
        "action, _ = model.predict(observation, deterministic=True)",
        "```",
        "",
        "Loading reads `config.json` and `model.safetensors` only; nothing is unpickled.",
        "",
    ]
    if dataset_repo_id:
        lines += [
            "## Training data",
            "",
            f"The data this agent was trained on is the dataset repo `{dataset_repo_id}`:",
            "",
            "```python",
            "from datasets import load_dataset",
            "",
            f'transitions = load_dataset("{dataset_repo_id}", split="train")',
            "```",
            "",
        ]
    if sb3_zip:
        package = (
            "stable_baselines3"
            if algo_name in _SB3_ALGORITHMS
            else "sb3_contrib"
            if algo_name in _SB3_CONTRIB_ALGORITHMS
            else "zoo.agents"
        )
        lines += [
            f"The repo also holds SB3's own `{sb3_zip}`, which huggingface_sb3 and rl_zoo3 download. "
            "It is a pickle: load it only if you trust this repo's author.",
            "",
            "```python",
            "from huggingface_sb3 import load_from_hub",
            f"from {package} import {algo_name}",
            "",
            f'checkpoint = load_from_hub("{load_target}", "{sb3_zip}")',
            f"model = {algo_name}.load(checkpoint)",
            "```",
            "",
        ]
        if algo_name.lower() in _RL_ZOO_ALGORITHMS:
            lines += [
                "```bash",
                f"python -m rl_zoo3.load_from_hub --algo {algo_name.lower()} --env {env_id} "
                f"-orga {load_target.split('/')[0]} -name {sb3_zip[: -len('.zip')]} -f logs/",
                "```",
                "",
            ]
    if hyperparameters:
        lines += [
            "## Hyperparameters",
            "",
            "```json",
            json.dumps(dict(hyperparameters), indent=2, sort_keys=True, default=str),
            "```",
            "",
        ]
    lines += [
        "## Files",
        "",
        "- `model.safetensors`: the weights needed to act",
        "- `config.json`: algorithm, policy, spaces, hyper-parameters, library versions",
        "- `results.json`: the evaluation above",
    ]
    if has_video:
        lines.append("- `replay.mp4`: one evaluation episode")
    if sb3_zip:
        lines.append(
            f"- `{sb3_zip}`, `config.yml`, `args.yml`, `env_kwargs.yml`, `train_eval_metrics.zip`: for SB3 and rl_zoo3"
        )
    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")
    return str(card), card_data.to_dict()

"""Model cards: a pure function from evaluation results to the README.md pushed with an agent."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml


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
) -> tuple[str, dict[str, Any]]:
    """Build a model card: the README.md text (YAML front matter + markdown) and its metadata.

    The metadata follows the Hub's ``model-index`` convention used by the SB3 ecosystem: the
    environment id is the dataset, the metric is ``mean_reward`` written ``"mean +/- std"``.
    The function has no side effects (no I/O, no clock), so the same inputs give the same card.

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
    :return: ``(readme_text, metadata)``; ``metadata`` is the dict written as YAML front matter.
    """
    if not algo_name:
        raise ValueError(f"algo_name={algo_name!r} must be a non-empty string")
    if not env_id:
        raise ValueError(f"env_id={env_id!r} must be a non-empty string")
    if n_eval_episodes is not None and n_eval_episodes < 1:
        raise ValueError(f"n_eval_episodes={n_eval_episodes} must be at least 1")
    metric_value = f"{mean_reward:.2f} +/- {std_reward:.2f}"
    # The files are distill-zoo's format (safetensors + JSON, no SB3 .zip), so the library that
    # loads them is distill-zoo even for plain SB3 algorithms; "stable-baselines3" stays a tag.
    library = "distill-zoo"
    all_tags = [
        env_id,
        "deep-reinforcement-learning",
        "reinforcement-learning",
        "distill-zoo",
        "stable-baselines3",
    ]
    all_tags += [tag for tag in (algo_name, *tags) if tag not in all_tags]
    metadata: dict[str, Any] = {
        "library_name": library,
        "tags": all_tags,
        "model-index": [
            {
                "name": algo_name,
                "results": [
                    {
                        "task": {"type": "reinforcement-learning", "name": "reinforcement-learning"},
                        "dataset": {"name": env_id, "type": env_id},
                        "metrics": [
                            {
                                "type": "mean_reward",
                                "value": metric_value,
                                "name": "mean_reward",
                                "verified": False,
                            }
                        ],
                    }
                ],
            }
        ],
    }

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
    front_matter = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    readme = f"---\n{front_matter}---\n\n" + "\n".join(lines) + "\n"
    return readme, metadata

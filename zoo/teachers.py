"""The zoo's recipe for its pretrained teachers: PPO experts trained per task, bundled in the package.

``python -m zoo.teachers`` trains every teacher in :data:`RECIPES` and writes each with
:func:`zoo.hub.save_agent` into the bundle folder that :func:`zoo.hub.load_teacher` reads
(``hub/teachers/<EnvName>/<task-slug>/``). Kickstarting uses them as teachers and the
quickstart loads the Dark Room one. Each teacher's card records the recipe and its return.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from zoo.hub.files import atomic_write_json


@dataclass(frozen=True)
class TeacherRecipe:
    """How one family of teachers is trained."""

    env_id: str
    """Environment id the teachers act in."""
    tasks: tuple[Any, ...]
    """Tasks that get a teacher; the first is the default of ``load_teacher(env_id)``."""
    algo: str = "ppo"
    """``ppo`` (memoryless MLP) or ``recurrent_ppo`` (LSTM, for tasks that need memory)."""
    total_timesteps: int = 60_000
    """Training budget per teacher."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments of the algorithm."""
    min_return: float = 0.0
    """A teacher whose deterministic evaluation return falls below this is not bundled."""


PPO_GRID = {
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 4,
    "learning_rate": 1e-3,
    "ent_coef": 0.02,
    "gamma": 0.99,
    "policy_kwargs": {"net_arch": [64, 64]},
}

#: Teachers bundled with the package.
RECIPES: tuple[TeacherRecipe, ...] = (
    TeacherRecipe(
        "zoo/DarkRoom-v0",
        tasks=((0, 8), (1, 7), (2, 2), (6, 1), (7, 6)),
        total_timesteps=60_000,
        hyperparams=PPO_GRID,
        min_return=21 - 8 - 0.5,
    ),
    TeacherRecipe(
        "zoo/DarkRoomHard-v0",
        tasks=((5, 11), (11, 6)),
        total_timesteps=100_000,
        hyperparams=PPO_GRID,
        min_return=0.99,
    ),
    # The key is invisible and not in the observation, so a memoryless policy cannot know whether
    # it still has to fetch it: Key-to-Door teachers are recurrent.
    TeacherRecipe(
        "zoo/DarkKeyToDoor-v0",
        tasks=(((2, 2), (6, 6)), ((7, 1), (1, 5))),
        algo="recurrent_ppo",
        total_timesteps=150_000,
        hyperparams={**PPO_GRID, "policy_kwargs": {"net_arch": [64], "lstm_hidden_size": 64}},
        min_return=1.9,
    ),
)


def train_teacher(recipe: TeacherRecipe, task: Any, seed: int = 0, n_envs: int = 8) -> tuple[Any, float]:
    """Train one teacher on ``task``; returns the model and its deterministic evaluation return."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from zoo.algos import algo_class

    env = make_vec_env(recipe.env_id, n_envs=n_envs, seed=seed, env_kwargs={"task": task})
    model = algo_class(recipe.algo)(
        "MlpLstmPolicy" if recipe.algo == "recurrent_ppo" else "MlpPolicy",
        env,
        seed=seed,
        device="cpu",
        **recipe.hyperparams,
    )
    model.learn(recipe.total_timesteps)
    evaluation_env = Monitor(gym.make(recipe.env_id, task=task))
    mean_return, _ = evaluate_policy(model, evaluation_env, n_eval_episodes=10, deterministic=True)
    env.close()
    return model, float(mean_return)


def build_bundle(
    output: Path, recipes: tuple[TeacherRecipe, ...] = RECIPES, seed: int = 0
) -> list[dict[str, Any]]:
    """Train and save every teacher of ``recipes`` under ``output``; returns one record per teacher."""
    from zoo.hub import save_agent
    from zoo.hub.teachers import teacher_folder

    records = []
    for recipe in recipes:
        for task in recipe.tasks:
            started = time.perf_counter()
            model, mean_return = train_teacher(recipe, task, seed=seed)
            record = {
                "env_id": recipe.env_id,
                "task": json.loads(json.dumps(task)),
                "algo": recipe.algo,
                "total_timesteps": recipe.total_timesteps,
                "seed": seed,
                "mean_return": mean_return,
                "train_seconds": round(time.perf_counter() - started, 1),
            }
            print(json.dumps(record))
            if mean_return < recipe.min_return:
                print(f"  not bundled: return {mean_return:.2f} < {recipe.min_return}")
                continue
            folder = teacher_folder(recipe.env_id, task, root=output)
            save_agent(
                model, folder, env_id=recipe.env_id, env_kwargs={"task": task}, extra={"teacher": record}
            )
            atomic_write_json(folder / "teacher.json", record)
            records.append(record)
        _write_index(output, recipe, [r for r in records if r["env_id"] == recipe.env_id])
    return records


def _write_index(output: Path, recipe: TeacherRecipe, records: list[dict[str, Any]]) -> None:
    """``<EnvName>/index.json``: the bundled tasks, the default task first (the recipe's order)."""
    from zoo.hub.teachers import env_name
    from zoo.io import atomic_write_text

    if not records:
        return
    index = {
        "env_id": recipe.env_id,
        "default_task": records[0]["task"],
        "tasks": [r["task"] for r in records],
    }
    atomic_write_text(output / env_name(recipe.env_id) / "index.json", json.dumps(index, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).resolve().parent.parent / "hub" / "teachers"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env", default=None, help="only the recipes of this env id")
    arguments = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    recipes = tuple(r for r in RECIPES if arguments.env in (None, r.env_id))
    records = build_bundle(arguments.output, recipes, seed=arguments.seed)
    print(f"{len(records)} teachers written under {arguments.output}")


if __name__ == "__main__":
    main()

"""The zoo's recipe for its pretrained teachers: PPO experts trained per task, bundled in the package.

``python -m zoo.teachers`` trains every teacher in :data:`RECIPES` and writes each with
:func:`zoo.hub.save_agent` into the bundle folder that :func:`zoo.hub.load_teacher` reads
(``hub/teachers/<EnvName>/<task-slug>/``). Kickstarting uses them as teachers. Each teacher's
card records the recipe and its return.

:data:`SUITES` are multi-task suites: one expert per task, trained in the *suite's* observation
(``make_multitask_vec_env(..., task_in_obs=True)``: one-hot cell + one-hot task index), so that
they share the observation space of a student that must tell the tasks apart and can be passed
together as ``KickstartedPPO(teacher={i: expert_i})``. They live under
``hub/teachers/multitask/<EnvName>/<task-slug>/`` with an ``index.json`` holding the tasks in
suite order (:func:`load_suite_teachers`); ``zoo quickstart`` kickstarts from the Dark Room one.
``python -m zoo.teachers --suites`` rebuilds them.
"""

from __future__ import annotations

import argparse
import json
import os
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


@dataclass(frozen=True)
class SuiteRecipe:
    """How the experts of one multi-task suite are trained: expert ``i`` learns ``tasks[i]`` alone,
    in every sub-env of a vector env with the suite's layout (``len(tasks)`` sub-envs, the task
    index in the observation), so it is right whatever task index it sees."""

    env_id: str
    """Environment id (a meta-RL env with a native vector version)."""
    tasks: tuple[Any, ...]
    """The suite's tasks, in task-index order."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """PPO constructor arguments."""
    chunk_timesteps: int = 4096
    """Training proceeds in chunks of this many env steps, checking the greedy return after each."""
    max_timesteps: int = 65_536
    """Most env steps one expert may take."""
    horizon: int = 20
    """Steps of one evaluation episode (the env's time limit)."""
    optimal_returns: tuple[float, ...] = ()
    """Per task: training stops when the greedy return reaches it; a lower one is not bundled."""


#: PPO settings of the multi-task Dark Room suite (those of ``benchmarks/kickstart.py``).
SUITE_PPO = {
    "n_steps": 64,
    "batch_size": 128,
    "learning_rate": 1e-3,
    "ent_coef": 0.01,
    "policy_kwargs": {"net_arch": [64]},
}

#: 4 corners (distance 8 from the centre start: best return 13) and 4 cells at distance 6 (best 15),
#: the suite of BENCHMARKS.md's kickstarting section.
DARKROOM_SUITE_GOALS: tuple[tuple[int, int], ...] = (
    (0, 0),
    (0, 8),
    (8, 0),
    (8, 8),
    (0, 2),
    (2, 8),
    (8, 6),
    (6, 0),
)

#: Multi-task suites bundled with the package.
SUITES: tuple[SuiteRecipe, ...] = (
    SuiteRecipe(
        "zoo/DarkRoom-v0",
        tasks=DARKROOM_SUITE_GOALS,
        hyperparams=SUITE_PPO,
        optimal_returns=tuple(21.0 - abs(row - 4) - abs(col - 4) for row, col in DARKROOM_SUITE_GOALS),
    ),
)

SUITE_FOLDER = "multitask"


def suite_root(bundle_root: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds the bundled suites (``hub/teachers/multitask`` by default).

    :param bundle_root: the teachers' bundle root (default: ``zoo.hub.teachers.BUNDLE_ROOT``).
    """
    from zoo.hub.teachers import BUNDLE_ROOT

    return Path(bundle_root if bundle_root is not None else BUNDLE_ROOT) / SUITE_FOLDER


def suite_tasks(env_id: str, bundle_root: str | os.PathLike[str] | None = None) -> list[Any]:
    """The tasks of the bundled suite of ``env_id``, in task-index order.

    :param env_id: Gymnasium env id.
    :param bundle_root: the teachers' bundle root (default: the package's).
    :raises FileNotFoundError: no suite is bundled for ``env_id``.
    """
    from zoo.envs import task_from_json
    from zoo.hub.teachers import env_name

    index = suite_root(bundle_root) / env_name(env_id) / "index.json"
    if not index.is_file():
        raise FileNotFoundError(
            f"no bundled multi-task suite for env_id={env_id!r}: {index} is missing "
            "(build it with `python -m zoo.teachers --suites`)"
        )
    try:
        tasks = json.loads(index.read_text())["tasks"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"the suite index {index} is corrupt: {error}") from error
    if not isinstance(tasks, list) or not tasks:
        raise ValueError(f"the suite index {index} lists no tasks")
    return [task_from_json(task) for task in tasks]


def load_suite_teachers(
    env_id: str, *, device: str = "auto", bundle_root: str | os.PathLike[str] | None = None
) -> tuple[list[Any], dict[int, Any]]:
    """The bundled suite of ``env_id``: its tasks and one expert per task index, from disk only.

    Pass the experts as ``KickstartedPPO(teacher=experts)`` to a student trained in
    ``make_multitask_vec_env(env_id, tasks, task_in_obs=True)``.

    :param env_id: Gymnasium env id (``"zoo/DarkRoom-v0"``).
    :param device: torch device of the experts.
    :param bundle_root: the teachers' bundle root (default: the package's).
    :return: ``(tasks, {task index: expert})``.
    """
    from zoo.hub import load_teacher

    tasks = suite_tasks(env_id, bundle_root)
    root = suite_root(bundle_root)
    experts = {
        index: load_teacher(env_id, task=task, source="bundled", device=device, bundle_root=root)
        for index, task in enumerate(tasks)
    }
    return tasks, experts


def suite_greedy_returns(model: Any, env_id: str, tasks: list[Any], horizon: int = 20) -> Any:
    """Greedy return of ``model`` on each task of a suite (sub-env ``i`` runs ``tasks[i]``, one
    episode each; Dark Room from its centre start is deterministic, so one episode is the return).

    :param model: an SB3 model acting on the suite's observations.
    :param env_id: Gymnasium env id.
    :param tasks: one task per sub-env (repeat a task to evaluate it under every task index).
    :param horizon: steps of the episode.
    :return: a float array, one return per sub-env.
    """
    import numpy as np

    from zoo.envs.sb3 import SB3VecEnv
    from zoo.envs.vector import make_multitask_vec_env

    env = SB3VecEnv(make_multitask_vec_env(env_id, tasks, task_in_obs=True, seed=12345))
    try:
        observations = env.reset()
        total = np.zeros(len(tasks))
        for _ in range(horizon):
            actions, _ = model.predict(observations, deterministic=True)
            observations, rewards, _, _ = env.step(actions)
            total += rewards
    finally:
        env.close()
    return total


def train_suite_expert(recipe: SuiteRecipe, index: int, seed: int = 0) -> tuple[Any, float, int]:
    """Train the expert of ``recipe.tasks[index]``; returns (model, greedy return, env steps)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from zoo.envs.sb3 import SB3VecEnv
    from zoo.envs.vector import make_multitask_vec_env

    tasks = [recipe.tasks[index]] * len(recipe.tasks)
    env = VecMonitor(SB3VecEnv(make_multitask_vec_env(recipe.env_id, tasks, task_in_obs=True, seed=seed)))
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", **recipe.hyperparams)
    target = recipe.optimal_returns[index]
    score = 0.0
    while model.num_timesteps < recipe.max_timesteps:
        model.learn(recipe.chunk_timesteps, reset_num_timesteps=False)
        # Under every task index, since the student shows expert i only index i but must not care.
        score = float(suite_greedy_returns(model, recipe.env_id, tasks, recipe.horizon).min())
        if score >= target:
            break
    env.close()
    return model, score, int(model.num_timesteps)


def build_suites(
    output: Path, suites: tuple[SuiteRecipe, ...] = SUITES, seed: int = 0
) -> list[dict[str, Any]]:
    """Train and save every suite's experts under ``output/multitask/<EnvName>/``.

    :param output: the teachers' bundle root (``hub/teachers``).
    :param suites: the suites.
    :param seed: base seed; expert ``i`` uses ``seed + 100 + i``.
    :return: one record per expert written.
    """
    from zoo.hub import save_agent
    from zoo.hub.teachers import env_name, teacher_folder
    from zoo.io import atomic_write_text

    records: list[dict[str, Any]] = []
    for recipe in suites:
        root = suite_root(output)
        written = []
        for index, task in enumerate(recipe.tasks):
            started = time.perf_counter()
            model, score, steps = train_suite_expert(recipe, index, seed=seed + 100 + index)
            record = {
                "env_id": recipe.env_id,
                "task": json.loads(json.dumps(task)),
                "task_index": index,
                "suite_tasks": json.loads(json.dumps(recipe.tasks)),
                "task_in_obs": True,
                "algo": "ppo",
                "total_timesteps": steps,
                "seed": seed + 100 + index,
                "mean_return": score,
                "optimal_return": recipe.optimal_returns[index],
                "train_seconds": round(time.perf_counter() - started, 1),
            }
            print(json.dumps(record), flush=True)
            if score < recipe.optimal_returns[index]:
                raise RuntimeError(
                    f"the expert for task {task!r} reached {score} < {recipe.optimal_returns[index]} "
                    f"in {steps} steps; raise max_timesteps"
                )
            folder = teacher_folder(recipe.env_id, task, root=root)
            save_agent(model, folder, env_id=recipe.env_id, extra={"teacher": record})
            atomic_write_json(folder / "teacher.json", record)
            written.append(record)
        index_file = {
            "env_id": recipe.env_id,
            "task_in_obs": True,
            "tasks": [record["task"] for record in written],
        }
        atomic_write_text(
            root / env_name(recipe.env_id) / "index.json", json.dumps(index_file, indent=2) + "\n"
        )
        records.extend(written)
    return records


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
    parser.add_argument(
        "--suites", action="store_true", help="build the multi-task suites (SUITES) instead of RECIPES"
    )
    arguments = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if arguments.suites:
        suites = tuple(r for r in SUITES if arguments.env in (None, r.env_id))
        written = build_suites(arguments.output, suites, seed=arguments.seed)
        print(f"{len(written)} suite experts written under {suite_root(arguments.output)}")
        return
    recipes = tuple(r for r in RECIPES if arguments.env in (None, r.env_id))
    records = build_bundle(arguments.output, recipes, seed=arguments.seed)
    print(f"{len(records)} teachers written under {arguments.output}")


if __name__ == "__main__":
    main()

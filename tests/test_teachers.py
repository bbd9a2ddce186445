"""The bundled pretrained teachers: present for every recipe, pickle-free, and as good as recorded."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from zoo.hub import load_teacher
from zoo.hub.teachers import BUNDLE_ROOT, bundled_teachers, default_task, teacher_folder
from zoo.teachers import RECIPES

BUNDLED = [(recipe, task) for recipe in RECIPES for task in recipe.tasks]


def greedy_return(model, env_id: str, task, seed: int) -> float:
    env = gym.make(env_id, task=task)
    obs, _ = env.reset(seed=seed)
    state, start, total, done = None, np.ones((1,), dtype=bool), 0.0, False
    while not done:
        action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        start = np.zeros((1,), dtype=bool)
        total += float(reward)
        done = terminated or truncated
    return total


def test_every_recipe_task_is_bundled() -> None:
    folders = set(bundled_teachers())
    for recipe, task in BUNDLED:
        assert teacher_folder(recipe.env_id, task) in folders, (recipe.env_id, task)


@pytest.mark.parametrize(("recipe", "task"), BUNDLED, ids=[f"{r.env_id}-{t}" for r, t in BUNDLED])
def test_bundled_teacher_acts_at_its_recorded_return(recipe, task) -> None:
    model, info = load_teacher(recipe.env_id, task=task, return_info=True, device="cpu")
    assert info.source == "bundled" and info.path == teacher_folder(recipe.env_id, task)
    record = json.loads((info.path / "teacher.json").read_text())
    assert record["algo"] == recipe.algo
    # Key-to-Door starts in a random cell; several starts check the teacher does not depend on one.
    returns = [greedy_return(model, recipe.env_id, task, seed) for seed in range(5)]
    assert min(returns) >= recipe.min_return
    assert np.mean(returns) == pytest.approx(record["mean_return"], abs=0.25)
    assert not list(info.path.glob("*.zip")) and not list(info.path.glob("*.pkl"))


def test_default_teacher_is_the_first_recipe_task() -> None:
    for recipe in RECIPES:
        assert default_task(recipe.env_id) == recipe.tasks[0]
        _, info = load_teacher(recipe.env_id, return_info=True, device="cpu")
        assert info.task == recipe.tasks[0]


def test_unknown_task_has_no_bundled_teacher() -> None:
    with pytest.raises(FileNotFoundError, match="no bundled teacher"):
        load_teacher("zoo/DarkRoom-v0", task=(0, 0), source="bundled")
    assert BUNDLE_ROOT.is_dir()

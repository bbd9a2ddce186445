"""The bandit fidelity diagnostic (``benchmarks/ad_bandit_fidelity.py``): Thompson's exact policy
and AD's teacher-forced one, which BENCHMARKS.md uses to split AD's regret gap."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from conftest import load_benchmark

from zoo.agents.ad import load_pretrained


@pytest.fixture(scope="module")
def fidelity() -> ModuleType:
    return load_benchmark("ad_bandit_fidelity")


def test_thompson_probabilities_follow_the_posterior(fidelity: ModuleType) -> None:
    rng = np.random.default_rng(0)
    fresh = fidelity.thompson_probabilities(np.zeros((1, 4)), np.zeros((1, 4)), 20_000, rng)
    np.testing.assert_allclose(fresh, 0.25, atol=0.02)  # no data: every arm alike
    # Arm 2 won 40 of 40 pulls, the others 0 of 40: Thompson pulls arm 2.
    successes, counts = np.array([[0.0, 0.0, 40.0, 0.0]]), np.full((1, 4), 40.0)
    confident = fidelity.thompson_probabilities(successes, counts, 2_000, rng)
    assert confident[0, 2] == pytest.approx(1.0)
    # Beta(2, 1) against Beta(1, 2): P(X > Y) = 5/6.
    two = fidelity.thompson_probabilities(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]]), 40_000, rng)
    assert two[0, 0] == pytest.approx(5 / 6, abs=0.01)
    with pytest.raises(ValueError, match="samples=0"):
        fidelity.thompson_probabilities(successes, counts, 0, rng)


def test_thompson_histories_are_drawn_from_their_recorded_distribution(fidelity: ModuleType) -> None:
    means = np.tile([0.1, 0.9, 0.5], (400, 1))
    actions, rewards, probabilities = fidelity.thompson_histories(means, 30, 500, np.random.default_rng(1))
    assert actions.shape == rewards.shape == (400, 30) and probabilities.shape == (400, 30, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0)
    # The chosen arms' frequency matches the recorded probabilities (pull 1: uniform).
    np.testing.assert_allclose(
        np.bincount(actions[:, 0], minlength=3) / 400, probabilities[:, 0].mean(0), atol=0.07
    )
    assert (actions[:, -5:] == 1).mean() > 0.8  # it learns the 0.9 arm
    assert set(np.unique(rewards)) <= {0.0, 1.0}


def test_the_bundled_model_is_read_over_the_histories_it_fits(fidelity: ModuleType) -> None:
    model = load_pretrained("zoo/AdversarialBandit-v0", device="cpu")
    means = np.tile(np.linspace(0.05, 0.95, 10), (3, 1))
    actions, rewards, _ = fidelity.thompson_histories(means, 20, 100, np.random.default_rng(2))
    probabilities = fidelity.model_probabilities(model, actions, rewards)
    assert probabilities.shape == (3, 20, 10)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0)
    report = fidelity.fidelity(model, means, 20, 100, seed=0)
    assert [row["pulls"] for row in report["ranges"]] == [[1, 10], [11, 20]]
    long = np.zeros((1, model.context_length + 1), dtype=np.int64)
    with pytest.raises(ValueError, match=f"do not fit the model's context of {model.context_length}"):
        fidelity.model_probabilities(model, long, long.astype(float))


def test_bad_arguments_name_themselves(fidelity: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    from zoo.agents.ad import pretrained_path

    darkroom = pretrained_path("zoo/DarkRoom-v0")
    for argv, message in (
        (["--model", str(darkroom)], "an AD model of 'zoo/DarkRoom-v0', not of 'zoo/AdversarialBandit-v0'"),
        (["--pulls", "101"], "--pulls 101: the model's context holds 100 pulls"),
        (["--eval-seeds", "0"], "--eval-seeds 0: must be >= 1"),
        (["--start", "5", "--stop", "5"], "no tasks"),
    ):
        with pytest.raises(SystemExit):
            fidelity.main(argv)
        assert message in capsys.readouterr().err

"""Population-based training of the kickstarting coefficient on Ray Tune (tiny, 2 members)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray", reason="needs the pbt extra (ray[tune])")

from stable_baselines3 import PPO

from zoo.agents.kickstart.pbt import PBTConfig, run_pbt


def test_bad_pbt_config_is_refused():
    with pytest.raises(ValueError, match="population_size"):
        PBTConfig(env_id="CartPole-v1", population_size=1)
    with pytest.raises(ValueError, match="algorithm"):
        PBTConfig(env_id="CartPole-v1", algorithm="DQN")
    with pytest.raises(ValueError, match="kickstart_coef_range"):
        PBTConfig(env_id="CartPole-v1", kickstart_coef_range=(1.0, 0.5))


@pytest.mark.slow
def test_exploit_restores_the_donors_weights_then_explores(tmp_path):
    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    teacher.save(tmp_path / "teacher.zip")
    config = PBTConfig(
        env_id="CartPole-v1",
        teacher=str(tmp_path / "teacher.zip"),
        agent_kwargs={"n_steps": 32, "batch_size": 32, "n_epochs": 2, "policy_kwargs": {"net_arch": [8]}},
        population_size=2,
        perturbations=2,
        steps_per_interval=64,
        eval_episodes=2,
        resample_probability=0.0,
        num_cpus=2,
        storage_path=str(tmp_path / "pbt"),
        device="cpu",
    )
    result = run_pbt(config)

    assert len(result.histories) == 2
    for records in result.histories.values():
        # A member that exploits a donor ahead of it inherits the donor's progress, so it may skip
        # an interval; every member ends after 3 intervals' worth of steps.
        assert [r["iteration"] for r in records] == sorted({r["iteration"] for r in records})
        assert records[-1]["iteration"] == 3 and records[-1]["num_timesteps"] == 192
    exploits = [
        (trial, position, record)
        for trial, records in result.histories.items()
        for position, record in enumerate(records)
        if record["restored_from_trial"] not in ("", trial)
    ]
    assert exploits, "with two members the worse one exploits the better at every perturbation"
    for trial, position, record in exploits:
        donor_records = result.histories[record["restored_from_trial"]]
        assert position > 0
        assert record["restored_fingerprint"] != result.histories[trial][position - 1]["saved_fingerprint"]
        donor_by_fingerprint = {r["saved_fingerprint"]: r for r in donor_records}
        # The donor's record of that checkpoint is in its history (no interval lost), and the weights
        # right after restoring are the donor's checkpointed weights, bit for bit.
        assert record["restored_from_iteration"] in {r["iteration"] for r in donor_records}
        assert record["restored_fingerprint"] in donor_by_fingerprint
        donor_saved = donor_by_fingerprint[record["restored_fingerprint"]]
        # Explore after exploit: the donor's λ scaled by one of PBT's factors.
        ratio = record["hp/kickstart_coef"] / donor_saved["hp/kickstart_coef"]
        assert ratio == pytest.approx(0.8) or ratio == pytest.approx(1.2)

    for trial, schedule in result.lambda_schedules.items():
        assert [steps for steps, _ in schedule] == [r["num_timesteps"] for r in result.histories[trial]]
        assert all(set(coefs) == {"kickstart_coef"} for _, coefs in schedule)
    assert result.best_checkpoint is not None
    assert set(result.best_config) == {"learning_rate", "ent_coef", "kickstart_coef"}

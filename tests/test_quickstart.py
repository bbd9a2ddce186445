"""``zoo quickstart``: what it writes and prints, its headline rules, its figures, video and suite teachers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from zoo.cli import main
from zoo.envs.darkroom import DarkRoomEnv

ENV_ID = "zoo/DarkRoom-v0"


# -- headline rules ----------------------------------------------------------------------------------
def test_steps_to_needs_the_threshold_held_to_the_end() -> None:
    from zoo.quickstart import steps_to

    steps = [0, 1024, 2048, 3072, 4096]
    # Touching the threshold early and falling back does not count; the second crossing does.
    assert steps_to(steps, [0.0, 5.0, 1.0, 5.0, 6.0], 5.0) == 3072
    assert steps_to(steps, [0.0, 5.0, 5.0, 5.0, 4.9], 5.0) is None
    assert steps_to(steps, [7.0, 7.0, 7.0, 7.0, 7.0], 5.0) == 0


def test_rounded_leaves_no_float32_noise() -> None:
    from zoo.quickstart import rounded

    noisy = {"a": np.float32(0.2), "b": [np.array([0.1, 0.7633878960000002]), (1, "x", None)], "c": 3}
    assert rounded(noisy) == {"a": 0.2, "b": [[0.1, 0.7634], [1, "x", None]], "c": 3}
    assert json.dumps(rounded(noisy)) == '{"a": 0.2, "b": [[0.1, 0.7634], [1, "x", null]], "c": 3}'


def test_episodes_to_counts_from_one() -> None:
    from zoo.quickstart import episodes_to

    assert episodes_to([1.0, 9.0, 13.0, 14.0], 12.0) == 3
    assert episodes_to([13.0, 14.0], 12.0) == 1
    assert episodes_to([1.0, 2.0], 12.0) is None


def test_typical_goal_is_the_median_first_success() -> None:
    from zoo.quickstart import typical_goal

    returns = np.array(
        [
            [0.0, 0.0, 0.0, 9.0],  # first success in episode 4
            [5.0, 9.0, 9.0, 9.0],  # episode 1
            [0.0, 0.0, 0.0, 0.0],  # never: later than all
            [0.0, 7.0, 9.0, 9.0],  # episode 2
            [0.0, 0.0, 3.0, 9.0],  # episode 3
        ]
    )
    assert typical_goal(returns) == 4
    assert typical_goal(returns[:1]) == 0
    with pytest.raises(ValueError, match="must be"):
        typical_goal(np.zeros((0, 3)))


# -- the bundled suite ---------------------------------------------------------------------------------
def test_bundled_suite_experts_are_optimal_under_their_task_index() -> None:
    from zoo.teachers import DARKROOM_SUITE_GOALS, load_suite_teachers, suite_greedy_returns

    tasks, experts = load_suite_teachers(ENV_ID, device="cpu")
    assert tasks == list(DARKROOM_SUITE_GOALS) and sorted(experts) == list(range(8))
    for index, task in enumerate(tasks):
        info = experts[index].teacher_info
        assert info.source == "bundled" and not list(info.path.glob("*.zip"))
        # Sub-env i runs task i: expert i sees its own index, as in the kickstarted student's env.
        returns = suite_greedy_returns(experts[index], ENV_ID, tasks)
        assert returns[index] == DarkRoomEnv.optimal_return(task), (index, task)


def test_suite_experts_share_the_students_observation_space() -> None:
    from zoo.envs.sb3 import SB3VecEnv
    from zoo.envs.vector import make_multitask_vec_env
    from zoo.teachers import load_suite_teachers

    tasks, experts = load_suite_teachers(ENV_ID, device="cpu")
    env = SB3VecEnv(make_multitask_vec_env(ENV_ID, tasks, task_in_obs=True))
    assert all(expert.observation_space == env.observation_space for expert in experts.values())
    env.close()


def test_missing_suite_is_a_clear_error(tmp_path: Path) -> None:
    from zoo.teachers import suite_tasks

    with pytest.raises(FileNotFoundError, match=r"no bundled multi-task suite.*--suites"):
        suite_tasks(ENV_ID, bundle_root=tmp_path)


def test_task_index_observation_matches_the_vector_env() -> None:
    from zoo.envs.vector import make_multitask_vec_env
    from zoo.quickstart import TaskIndexObservation
    from zoo.teachers import DARKROOM_SUITE_GOALS

    tasks = list(DARKROOM_SUITE_GOALS)
    vector = make_multitask_vec_env(ENV_ID, tasks, task_in_obs=True, seed=0)
    vector_obs, _ = vector.reset(seed=0)
    singles = [
        TaskIndexObservation(gym.make(ENV_ID, task=task), i, len(tasks)) for i, task in enumerate(tasks)
    ]
    single_obs = [env.reset(seed=0)[0] for env in singles]
    actions = np.array([0, 1, 2, 3, 4, 1, 2, 3])
    for _ in range(3):
        np.testing.assert_array_equal(np.stack(single_obs), vector_obs)
        vector_obs, *_ = vector.step(actions)
        single_obs = [env.step(int(action))[0] for env, action in zip(singles, actions, strict=True)]
    with pytest.raises(ValueError, match="task_index"):
        TaskIndexObservation(gym.make(ENV_ID), 8, 8)


# -- figures -----------------------------------------------------------------------------------------
def _panel(**overrides):
    from zoo.plots import Curve, Panel, ReferenceLine

    arguments = {
        "title": "env\nsplit, 2 tasks, 3 seeds",
        "xlabel": "episode",
        "ylabel": "return",
        "curves": [Curve("method", [1, 2, 3], [0.5, 5.0, 9.5], [-3.0, 1.0, 6.0], [4.0, 9.0, 13.0])],
        "band": "mean ± std over 3 seeds",
        "y_range": (0.0, 10.0),
        "references": [ReferenceLine(10.0, "optimum (10)")],
        "integer_x": True,
    }
    return Panel(**{**arguments, **overrides})


def test_panel_bands_stay_in_the_reward_range_and_say_what_they_are() -> None:
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    from zoo.plots import _draw_panel

    figure, axis = plt.subplots()
    _draw_panel(axis, _panel())
    bands = [c for c in axis.collections if isinstance(c, PolyCollection)]
    assert bands
    for band in bands:
        y = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
        assert y.min() >= 0.0 and y.max() <= 10.0
    labels = [text.get_text() for text in axis.get_legend().get_texts()]
    assert labels == ["method", "optimum (10)", "shaded: mean ± std over 3 seeds"]
    figure.canvas.draw()
    ticks = [tick for tick in axis.get_xticks() if 1 <= tick <= 3]
    assert ticks and all(float(tick).is_integer() for tick in ticks)
    plt.close(figure)


def test_a_band_without_an_explanation_is_refused(tmp_path: Path) -> None:
    from zoo.plots import plot_panels

    with pytest.raises(ValueError, match="say what it is"):
        plot_panels([_panel(band=None)], tmp_path / "figure.png")
    with pytest.raises(ValueError, match="at least one Panel"):
        plot_panels([], tmp_path / "figure.png")
    assert not (tmp_path / "figure.png").exists()


# -- video ----------------------------------------------------------------------------------------------
def test_caption_frame_is_large_and_carries_the_text() -> None:
    from zoo.hub.video import caption_frame

    scene = np.zeros((9, 9, 3), dtype=np.uint8)
    blank = caption_frame(scene, ["", ""], min_size=288)
    written = caption_frame(scene, ["Agent", "episode 1/3   step 4   return so far 2"], min_size=288)
    assert written.shape == blank.shape and min(written.shape[:2]) >= 288
    assert written.shape[0] % 2 == 0 and written.shape[1] % 2 == 0
    band = written.shape[0] - written.shape[1]  # the scene is square: the rows above it are the band
    assert band > 0 and (written[:band] != blank[:band]).any()
    np.testing.assert_array_equal(written[band:], blank[band:])


def test_overlay_names_agent_episode_step_and_return() -> None:
    from zoo.hub.video import overlay_lines

    assert overlay_lines("AD", 5, 8, 10, 20, 8.0, "goal (3, 3)") == [
        "AD",
        "episode 5/8   step 10/20   return so far 8",
        "goal (3, 3)",
    ]
    assert overlay_lines("PPO", 1, 1, 0, None, 0.25) == ["PPO", "episode 1/1   step 0   return so far 0.25"]


def test_episode_frames_number_episodes_and_add_up_the_return(monkeypatch) -> None:
    import zoo.hub.video
    from zoo.hub.video import episode_frames

    captions: list[list[str]] = []
    caption_frame = zoo.hub.video.caption_frame

    def recording(frame, lines, **kwargs):
        captions.append(list(lines))
        return caption_frame(frame, lines, **kwargs)

    monkeypatch.setattr(zoo.hub.video, "caption_frame", recording)

    env = gym.make(ENV_ID, task=(4, 5), render_mode="rgb_array")  # one step right of the start

    def act(observation, episode_start, reward):
        return 2 if episode_start else 0  # right, then stay on the goal

    frames, returns = episode_frames(
        None, env, episodes=2, label="scripted", act_fn=act, first_episode=3, total_episodes=5
    )
    env.close()
    assert len(frames) == 2 * (20 + 1) and min(frames[0].shape[:2]) >= 288
    assert returns == [DarkRoomEnv.optimal_return((4, 5))] * 2
    assert captions[0] == ["scripted", "episode 3/5   step 0/20   return so far 0"]
    assert captions[21 + 20] == ["scripted", "episode 4/5   step 20/20   return so far 20"]
    with pytest.raises(ValueError, match="total_episodes"):
        episode_frames(None, env, episodes=2, label="x", act_fn=act, first_episode=3, total_episodes=3)
    with pytest.raises(ValueError, match="rgb_array"):
        episode_frames(None, gym.make(ENV_ID), episodes=1, label="x", act_fn=act)


# -- the command -------------------------------------------------------------------------------------
def test_quickstart_refuses_bad_workers(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["quickstart", "--workers", "0"])
    assert "--workers 0 is not allowed" in capsys.readouterr().err


FLOAT_NOISE = re.compile(r"\d\.\d{7,}")


@pytest.mark.slow
def test_quickstart_fast_writes_every_result_figure_and_the_video(tmp_path: Path, capsys) -> None:
    from moviepy import VideoFileClip

    from zoo.quickstart import AD_LIVE, AD_PRETRAINED, FAST, HER, KICKSTARTED, REENGAGE, SCRATCH

    main(["quickstart", "--fast", "--output", str(tmp_path / "qs"), "--device", "cpu"])
    out = capsys.readouterr().out
    run = tmp_path / "qs" / "run_1"
    assert str(run) in out
    for phase in ("Kickstarting", "AD, pretrained", "AD trained here", "ReenGAGE vs HER", "Video"):
        assert f"done: {phase}" in out, phase
    assert not FLOAT_NOISE.search(out) and " object at 0x" not in out
    for name in ("quickstart.png", "kickstart.png", "algorithm_distillation.png", "reengage.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    text = (run / "results.json").read_text()
    assert not FLOAT_NOISE.search(text) and " object at 0x" not in text
    results = json.loads(text)

    kickstart = results["kickstart"]
    seeds = len(FAST.kickstart_seeds)
    assert kickstart["budget_steps"] == FAST.kickstart_steps and len(kickstart["train_seeds"]) == seeds
    assert set(kickstart["curves"]) == {SCRATCH, KICKSTARTED}
    for runs in kickstart["curves"].values():
        assert [run_["seed"] for run_ in runs] == kickstart["train_seeds"]
        for run_ in runs:
            assert run_["steps"][0] == 0 and run_["steps"][-1] == FAST.kickstart_steps
            assert all(0 <= value <= kickstart["optimal_return_mean"] for value in run_["return"])
    assert len(kickstart["headline"]["per_seed"]) == seeds
    assert kickstart["teachers"]["greedy_returns"] == [
        DarkRoomEnv.optimal_return(t) for t in map(tuple, kickstart["tasks"])
    ]

    ad = results["algorithm_distillation"]
    methods = ad["pretrained"]["methods"]
    assert set(methods) == {AD_PRETRAINED, ad["source_label"]}
    assert len(ad["pretrained"]["eval_seeds"]) == FAST.ad_eval_seeds
    assert len(methods[AD_PRETRAINED]["curves"]) == FAST.ad_eval_seeds
    assert all(len(c["return"]) == FAST.ad_eval_episodes for c in methods[AD_PRETRAINED]["curves"])
    assert ad["n_tasks"] == FAST.ad_n_tasks
    assert {"ad_episodes_to_80_percent", "source_episodes_to_80_percent", "threshold"} <= set(ad["headline"])
    assert ad["headline"]["threshold"] == pytest.approx(0.8 * ad["optimal_return_mean"], abs=1e-3)
    assert list(ad["trained_here"]["methods"]) == [AD_LIVE]
    assert (run / "ad_model" / "model.safetensors").is_file()

    reengage = results["reengage"]
    assert set(reengage["curves"]) == {HER, REENGAGE} and reengage["budget_steps"] == FAST.reengage_steps
    assert {"reengage_success", "her_success", "seeds"} <= set(reengage["headline"])
    for method in ("kickstart", "reengage"):
        assert {"curves", "train_seeds", "eval_seeds", "budget_steps", "headline"} <= set(results[method])
    assert {"train_seeds", "eval_seeds", "budget_steps"} <= set(ad["pretrained"])
    assert {"kickstart", "ad_pretrained", "ad_live", "reengage", "video", "total_seconds"} <= set(
        results["wall_time"]
    )

    video = results["video"]
    clip = VideoFileClip(str(run / "quickstart.mp4"))
    try:
        assert min(clip.size) >= 288 and list(clip.size) == video["size"]
        expected = (FAST.video_ad_episodes + FAST.video_student_goals) * 21
        assert video["frames"] == expected
        assert round(clip.duration * clip.fps) >= expected
    finally:
        clip.close()
    assert len(video["ad"]["episode_returns"]) == FAST.video_ad_episodes


@pytest.mark.gpu
def test_quickstart_fast_runs_on_cuda(tmp_path: Path) -> None:
    main(["quickstart", "--fast", "--output", str(tmp_path / "qs"), "--device", "cuda"])
    results = json.loads((tmp_path / "qs" / "run_1" / "results.json").read_text())
    assert results["device"] == "cuda"

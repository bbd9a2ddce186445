"""AD transformer: the sliding-window KV cache reproduces full recomputation step for step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.agents.ad.model import ModelConfig, TransformerPolicy


def _model(
    n_layers: int, context_length: int = 8, kind: str = "discrete", shape: tuple = ()
) -> TransformerPolicy:
    torch.manual_seed(0)
    config = ModelConfig(
        kind, shape, 12, 5, context_length=context_length, n_layers=n_layers, n_heads=2, embed_dim=16
    )
    return TransformerPolicy(config).eval()


def _history(batch: int, length: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    observations = torch.randint(0, 12, (batch, length), generator=generator)
    actions = torch.randint(0, 6, (batch, length), generator=generator)
    rewards = torch.randn(batch, length, generator=generator)
    return observations, actions, rewards


@pytest.mark.parametrize("n_layers", [1, 3])
def test_cache_equals_banded_full_forward_while_window_slides(n_layers):
    model = _model(n_layers)
    observations, actions, rewards = _history(3, 30)  # 30 steps, window 8: slides 22 times
    with torch.no_grad():
        full = model(observations, actions, rewards)
    cache = model.empty_cache(3)
    for t in range(30):
        logits = model.step(cache, observations[:, t], actions[:, t], rewards[:, t])
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-5)


def test_one_layer_cache_equals_recompute_over_last_window():
    # RoPE makes q.k depend on relative offsets only, so cached (absolute-position) keys equal a
    # recompute that places the last c tokens at positions 0..c-1.
    model = _model(1, context_length=6)
    observations, actions, rewards = _history(2, 25, seed=1)
    cache = model.empty_cache(2)
    for t in range(25):
        cached = model.step(cache, observations[:, t], actions[:, t], rewards[:, t])
        start = max(0, t - 5)
        with torch.no_grad():
            recomputed = model(
                observations[:, start : t + 1], actions[:, start : t + 1], rewards[:, start : t + 1]
            )
        torch.testing.assert_close(cached, recomputed[:, -1], atol=1e-5, rtol=1e-5)


def test_outputs_do_not_depend_on_absolute_position():
    model = _model(2)
    observations, actions, rewards = _history(2, 8)
    with torch.no_grad():
        at_zero = model(observations, actions, rewards)
        far = model(observations, actions, rewards, start_position=1_000_003)
    torch.testing.assert_close(at_zero, far, atol=1e-4, rtol=1e-4)


def test_inactive_histories_do_not_advance():
    # History 1 skips two steps (waiting for an autoreset); its logits must match running alone.
    model = _model(2)
    observations, actions, rewards = _history(2, 12)
    cache = model.empty_cache(2)
    solo = model.empty_cache(1)
    solo_step = 0
    for t in range(12):
        active = torch.tensor([True, t not in (3, 7)])
        logits = model.step(cache, observations[:, t], actions[:, t], rewards[:, t], active)
        if active[1]:
            alone = model.step(solo, observations[1:, t], actions[1:, t], rewards[1:, t])
            torch.testing.assert_close(logits[1:], alone, atol=1e-5, rtol=1e-5)
            solo_step += 1
    assert int(cache.positions[0]) == 12 and int(cache.positions[1]) == 10 == solo_step


def test_image_observations_go_through_the_cnn():
    torch.manual_seed(0)
    config = ModelConfig("image", (16, 16, 3), 0, 4, context_length=4, n_layers=1, n_heads=2, embed_dim=16)
    model = TransformerPolicy(config).eval()
    images = torch.randint(0, 256, (2, 6, 16, 16, 3), dtype=torch.uint8)
    actions = torch.zeros(2, 6, dtype=torch.long)
    rewards = torch.zeros(2, 6)
    with torch.no_grad():
        full = model(images, actions, rewards)
    cache = model.empty_cache(2)
    for t in range(6):
        logits = model.step(cache, images[:, t], actions[:, t], rewards[:, t])
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("embed_dim", 15),
        ("observation_kind", "graph"),
        ("dropout", 1.0),
        ("context_length", 0),
        ("n_actions", 0),
        ("grid_size", 3),  # 3 x 3 = 9 cells, but n_observations is 4
        ("grid_size", -1),
    ],
)
def test_bad_configuration_raises_value_error_naming_the_field(field, value):
    kwargs = dict(observation_kind="discrete", observation_shape=(), n_observations=4, n_actions=3)
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        TransformerPolicy(ModelConfig(**kwargs))


def test_default_architecture_follows_the_paper():
    config = ModelConfig("discrete", (), 4, 3)
    assert (config.n_layers, config.n_heads, config.embed_dim) == (4, 4, 64)
    assert (config.dropout, config.attention_dropout) == (0.1, 0.5)
    assert np.isclose(ModelConfig.from_dict(config.to_dict()).attention_dropout, 0.5)


@pytest.mark.parametrize("n_layers", [1, 3])
def test_recompute_equals_a_fresh_forward_over_the_window(n_layers):
    # kv_cache="recompute" is exactly the trained function: a causal forward over the last c steps.
    model = _model(n_layers, context_length=6)
    observations, actions, rewards = _history(3, 25, seed=2)
    window = model.empty_cache(3, kind="recompute")
    for t in range(25):
        stepped = model.step(window, observations[:, t], actions[:, t], rewards[:, t])
        start = max(0, t - 5)
        with torch.no_grad():
            fresh = model(
                observations[:, start : t + 1], actions[:, start : t + 1], rewards[:, start : t + 1]
            )
        torch.testing.assert_close(stepped, fresh[:, -1], atol=1e-5, rtol=1e-5)


def test_banded_cache_and_recompute_differ_once_deep_layers_see_past_the_window():
    model = _model(3, context_length=6)
    observations, actions, rewards = _history(2, 20, seed=3)
    cache, window = model.empty_cache(2), model.empty_cache(2, kind="recompute")
    gaps = []
    for t in range(20):
        banded = model.step(cache, observations[:, t], actions[:, t], rewards[:, t])
        recomputed = model.step(window, observations[:, t], actions[:, t], rewards[:, t])
        gaps.append(float((banded - recomputed).abs().max()))
    assert max(gaps[:6]) < 1e-5  # the same while everything is inside the window
    assert min(gaps[7:]) > 1e-4  # layer 2's cached keys summarise tokens older than the window


def test_recompute_window_keeps_inactive_histories_in_place():
    model = _model(2, context_length=5)
    observations, actions, rewards = _history(2, 14, seed=4)
    window = model.empty_cache(2, kind="recompute")
    solo = model.empty_cache(1, kind="recompute")
    for t in range(14):
        active = torch.tensor([True, t not in (2, 8, 9)])
        logits = model.step(window, observations[:, t], actions[:, t], rewards[:, t], active)
        if active[1]:
            alone = model.step(solo, observations[1:, t], actions[1:, t], rewards[1:, t])
            torch.testing.assert_close(logits[1:], alone, atol=1e-5, rtol=1e-5)
    assert window.positions.tolist() == [14, 11]


def test_unknown_cache_kind_is_refused():
    with pytest.raises(ValueError, match=r"kv_cache='full'.*banded.*recompute"):
        _model(1).empty_cache(1, kind="full")


def _starts_model(n_layers: int, context_length: int = 6) -> TransformerPolicy:
    torch.manual_seed(0)
    config = ModelConfig(
        "discrete", (), 12, 5, context_length=context_length, n_layers=n_layers, n_heads=2, embed_dim=16,
        episode_starts=True,
    )  # fmt: skip
    return TransformerPolicy(config).eval()


@pytest.mark.parametrize(("n_layers", "kind"), [(1, "banded"), (3, "banded"), (2, "recompute")])
def test_episode_start_marks_change_the_tokens_and_the_caches_carry_them(n_layers, kind):
    model = _starts_model(n_layers)
    observations, actions, rewards = _history(2, 20, seed=4)
    starts = torch.zeros(2, 20, dtype=torch.bool)
    starts[:, 0] = True
    starts[0, 7] = starts[1, 11] = True
    with torch.no_grad():
        marked = model(observations, actions, rewards, episode_starts=starts)
        unmarked = model(observations, actions, rewards, episode_starts=torch.zeros_like(starts))
    assert not torch.allclose(marked[0, 7], unmarked[0, 7])
    cache = model.empty_cache(2, kind=kind)
    for t in range(20):
        logits = model.step(
            cache, observations[:, t], actions[:, t], rewards[:, t], episode_starts=starts[:, t]
        )
        if kind == "banded":
            torch.testing.assert_close(logits, marked[:, t], atol=1e-5, rtol=1e-5)
        else:
            start = max(0, t - 5)
            with torch.no_grad():
                fresh = model(
                    observations[:, start : t + 1], actions[:, start : t + 1], rewards[:, start : t + 1],
                    episode_starts=starts[:, start : t + 1],
                )  # fmt: skip
            torch.testing.assert_close(logits, fresh[:, -1], atol=1e-5, rtol=1e-5)


def test_a_model_that_marks_episode_starts_refuses_tokens_without_them():
    model = _starts_model(1)
    observations, actions, rewards = _history(1, 4)
    with pytest.raises(ValueError, match=r"episode_starts=None: this model marks the first step"):
        model(observations, actions, rewards)
    with pytest.raises(ValueError, match=r"episode_starts=None"):
        model.step(model.empty_cache(1, kind="recompute"), observations[:, 0], actions[:, 0], rewards[:, 0])
    with pytest.raises(ValueError, match=r"episode_starts='yes' is not allowed; use True or False"):
        ModelConfig("discrete", (), 12, 5, episode_starts="yes").validate()  # type: ignore[arg-type]
    # A model without the mark ignores it: old checkpoints keep their function.
    plain = _model(1)
    with torch.no_grad():
        torch.testing.assert_close(
            plain(observations, actions, rewards),
            plain(observations, actions, rewards, episode_starts=torch.ones(1, 4, dtype=torch.bool)),
        )

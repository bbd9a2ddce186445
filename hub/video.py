"""Replay videos: run an agent in an ``rgb_array`` environment and write an H.264 mp4."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from .files import atomic_path

#: Smallest side of a written frame, in pixels: grid worlds render a few pixels per cell.
MIN_FRAME_SIZE = 64


def upscale_frame(frame: np.ndarray, min_size: int = MIN_FRAME_SIZE) -> np.ndarray:
    """Return an RGB uint8 frame at least ``min_size`` pixels on its short side, with even sides.

    Tiny frames are enlarged by an integer factor (nearest neighbour keeps grid cells crisp), and
    an odd height or width is padded by one black row or column, which libx264 with yuv420p needs.

    :param frame: ``(H, W, 3)`` or ``(H, W)`` array.
    :param min_size: minimal size of the shorter side after scaling.
    :return: the frame, ``(H', W', 3)`` uint8.
    """
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"frame of shape {frame.shape} is not an RGB image (H, W, 3)")
    frame = frame[:, :, :3]
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating) and frame.max(initial=0.0) <= 1.0:
            frame = frame * 255.0
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    short_side = min(frame.shape[:2])
    if short_side == 0:
        raise ValueError(f"frame of shape {frame.shape} is empty")
    factor = max(1, -(-min_size // short_side))
    if factor > 1:
        frame = np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)))
    return np.ascontiguousarray(frame)


def _default_act(model: Any, deterministic: bool) -> Callable[[Any, bool, float], Any]:
    """Wrap ``model.predict`` so that recurrent and in-context agents keep their state.

    Agents whose ``predict`` takes a ``reward`` (Algorithm Distillation) get the reward of the
    previous action with every call after the first.
    """
    state: Any = None
    wants_reward = "reward" in inspect.signature(model.predict).parameters

    def act(observation: Any, episode_start: bool, reward: float) -> Any:
        nonlocal state
        extra = {"reward": np.array([reward], dtype=np.float32)} if wants_reward and state is not None else {}
        action, state = model.predict(
            observation,
            state=state,
            episode_start=np.array([episode_start]),
            deterministic=deterministic,
            **extra,
        )
        return action

    return act


def record_video(
    model: Any,
    env_id: str,
    path: str | os.PathLike[str],
    *,
    n_steps: int | None = None,
    episodes: int = 1,
    env_kwargs: Mapping[str, Any] | None = None,
    deterministic: bool = True,
    fps: int = 15,
    seed: int | None = 0,
    vec_normalize: Any = None,
    act_fn: Callable[[Any, bool, float], Any] | None = None,
    max_steps: int = 2000,
) -> Path:
    """Record ``model`` acting in ``env_id`` and write an mp4 (libx264, yuv420p) atomically.

    :param model: an agent with ``predict(obs, state, episode_start, deterministic)``; ignored if
        ``act_fn`` is given.
    :param env_id: Gymnasium id of an environment that supports ``render_mode="rgb_array"``.
    :param path: the ``.mp4`` file to write (replaced atomically).
    :param n_steps: record exactly this many steps (resetting at episode ends); if ``None``,
        record ``episodes`` whole episodes.
    :param episodes: number of episodes when ``n_steps`` is ``None``.
    :param env_kwargs: extra keyword arguments of ``gym.make``.
    :param deterministic: deterministic actions.
    :param fps: frames per second of the video.
    :param seed: seed of the first reset.
    :param vec_normalize: a ``VecNormalize`` whose ``normalize_obs`` is applied before acting.
    :param act_fn: ``act_fn(observation, episode_start, previous_reward) -> action`` to use
        instead of ``model.predict``.
    :param max_steps: safety cap on the number of frames when recording whole episodes.
    :return: the path written.
    """
    from moviepy import ImageSequenceClip

    if n_steps is not None and n_steps < 1:
        raise ValueError(f"n_steps={n_steps} must be at least 1 (or None to record whole episodes)")
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    if fps < 1:
        raise ValueError(f"fps={fps} must be at least 1")
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"path={str(path)!r} must end with .mp4")
    env = gym.make(env_id, render_mode="rgb_array", **dict(env_kwargs or {}))
    act = act_fn if act_fn is not None else _default_act(model, deterministic)
    frames: list[np.ndarray] = []
    try:
        observation, _ = env.reset(seed=seed)
        episode_start = True
        reward = 0.0
        finished_episodes = 0
        limit = n_steps if n_steps is not None else max_steps
        first = env.render()
        if first is None:
            raise ValueError(
                f"env_id={env_id!r} returned no frame from render() with render_mode='rgb_array'"
            )
        frames.append(upscale_frame(first))
        while len(frames) < limit + 1:
            policy_input = (
                vec_normalize.normalize_obs(observation) if vec_normalize is not None else observation
            )
            action = act(policy_input, episode_start, reward)
            if isinstance(action, np.ndarray) and isinstance(env.action_space, gym.spaces.Discrete):
                action = int(action.reshape(-1)[0])
            observation, step_reward, terminated, truncated, _ = env.step(action)
            reward = float(step_reward)
            episode_start = False
            frames.append(upscale_frame(env.render()))
            if terminated or truncated:
                finished_episodes += 1
                if n_steps is None and finished_episodes >= episodes:
                    break
                observation, _ = env.reset()
                episode_start = True
    finally:
        env.close()

    shape = frames[0].shape
    frames = [frame if frame.shape == shape else _fit(frame, shape) for frame in frames]
    with atomic_path(path, suffix=path.suffix or ".mp4") as temporary:
        # The last frame lasts 1.5 periods: with exactly n/fps seconds, moviepy's float rounding
        # drops the last frame (13 frames at 15 fps gave 12).
        durations = [1.0 / fps] * (len(frames) - 1) + [1.5 / fps]
        clip = ImageSequenceClip(frames, durations=durations)
        clip.write_videofile(
            str(temporary), fps=fps, codec="libx264", audio=False, logger=None, pixel_format="yuv420p"
        )
        clip.close()
    return path


def _fit(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    # Renderers may change size mid-episode (rare); crop or pad to the first frame's shape.
    out = np.zeros(shape, dtype=np.uint8)
    h, w = min(shape[0], frame.shape[0]), min(shape[1], frame.shape[1])
    out[:h, :w] = frame[:h, :w]
    return out

"""Replay videos: run an agent in an ``rgb_array`` environment and write an H.264 mp4.

:func:`record_video` records one agent; :func:`episode_frames` returns frames with an overlay
(agent, episode, step, return so far) so that several agents' episodes can be joined into one
video with :func:`write_video` (``zoo quickstart`` does).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
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

    return write_video(frames, path, fps=fps)


def write_video(frames: Sequence[np.ndarray], path: str | os.PathLike[str], *, fps: int = 15) -> Path:
    """Write RGB frames as an mp4 (libx264, yuv420p), atomically.

    Frames of another size than the first are cropped or padded to it.

    :param frames: ``(H, W, 3)`` uint8 frames (run tiny ones through :func:`upscale_frame`).
    :param path: the ``.mp4`` file to write (replaced atomically).
    :param fps: frames per second.
    :return: the path written.
    """
    from moviepy import ImageSequenceClip

    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"path={str(path)!r} must end with .mp4")
    if fps < 1:
        raise ValueError(f"fps={fps} must be at least 1")
    if not frames:
        raise ValueError("frames=[] is empty; give at least one frame")
    frames = [upscale_frame(frame, min_size=2) for frame in frames]
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


#: Smallest side of a captioned frame: the overlay's text must be readable.
CAPTION_MIN_SIZE = 288


def caption_frame(
    frame: np.ndarray, lines: Sequence[str], *, min_size: int = CAPTION_MIN_SIZE, font_size: int = 15
) -> np.ndarray:
    """Return ``frame`` enlarged to at least ``min_size`` pixels, with ``lines`` of text in a band above it.

    :param frame: an RGB frame (see :func:`upscale_frame`).
    :param lines: the overlay text, one entry per line (agent, episode, step, return so far, ...).
    :param min_size: smallest side of the scene after scaling.
    :param font_size: text height in pixels.
    :return: ``(band + H', W', 3)`` uint8, with even sides.
    """
    from PIL import Image, ImageDraw, ImageFont

    if min_size < 1 or font_size < 1:
        raise ValueError(f"min_size={min_size} and font_size={font_size} must be at least 1")
    scene = upscale_frame(frame, min_size=min_size)
    line_height = font_size + 5
    band = len(lines) * line_height + 8
    band += band % 2
    canvas = Image.new("RGB", (scene.shape[1], scene.shape[0] + band), (18, 18, 24))
    canvas.paste(Image.fromarray(scene), (0, band))
    draw = ImageDraw.Draw(canvas)
    try:
        font: Any = ImageFont.load_default(size=font_size)
    except TypeError:  # pragma: no cover - Pillow < 10.1 has only the fixed-size bitmap font
        font = ImageFont.load_default()
    for index, text in enumerate(lines):
        draw.text((6, 4 + index * line_height), str(text), fill=(235, 235, 235), font=font)
    return np.ascontiguousarray(np.asarray(canvas, dtype=np.uint8))


def overlay_lines(
    label: str,
    episode: int,
    episodes: int,
    step: int,
    max_steps: int | None,
    return_so_far: float,
    detail: str | None = None,
) -> list[str]:
    """The overlay text of one frame: the agent, then episode, step and return so far, then ``detail``.

    :param label: the agent.
    :param episode: the episode's number (from 1).
    :param episodes: how many episodes the video numbers.
    :param step: steps taken in the episode.
    :param max_steps: the episode's time limit (``None``: not shown).
    :param return_so_far: the episode's return up to this frame.
    :param detail: a third line (the task), or ``None``.
    """
    limit = f"/{max_steps}" if max_steps else ""
    lines = [label, f"episode {episode}/{episodes}   step {step}{limit}   return so far {return_so_far:g}"]
    return lines + ([detail] if detail is not None else [])


def episode_frames(
    model: Any,
    env: gym.Env,
    *,
    episodes: int,
    label: str,
    detail: Callable[[int], str] | None = None,
    deterministic: bool = True,
    seed: int | None = 0,
    act_fn: Callable[[Any, bool, float], Any] | None = None,
    min_size: int = CAPTION_MIN_SIZE,
    max_steps: int = 2000,
    first_episode: int = 1,
    total_episodes: int | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """Run ``episodes`` episodes one after another and return captioned frames and the returns.

    The agent's state lives across episodes (an in-context learner such as Algorithm
    Distillation keeps its context; a recurrent policy is told where episodes start), so the
    frames show what the agent does in episode 1, 2, ... of one run. Each frame's overlay names
    the agent, the episode, the step and the return so far.

    :param model: an agent with ``predict``; ignored if ``act_fn`` is given.
    :param env: an environment made with ``render_mode="rgb_array"`` (not closed here).
    :param episodes: number of episodes.
    :param label: the agent's name in the overlay.
    :param detail: ``detail(episode index) -> text`` for a third overlay line (e.g. the task).
    :param deterministic: deterministic actions.
    :param seed: seed of the first reset.
    :param act_fn: ``act_fn(observation, episode_start, previous_reward) -> action``.
    :param min_size: smallest side of the scene in the written frames.
    :param max_steps: safety cap on the steps of one episode.
    :param first_episode: the number the overlay gives the first episode (when one video joins
        several calls).
    :param total_episodes: the overlay's "of N" (default: ``first_episode - 1 + episodes``).
    :return: ``(frames, episode returns)``.
    """
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    if first_episode < 1:
        raise ValueError(f"first_episode={first_episode} must be at least 1")
    of_episodes = first_episode - 1 + episodes if total_episodes is None else total_episodes
    if of_episodes < first_episode - 1 + episodes:
        raise ValueError(f"total_episodes={total_episodes} is fewer than the episodes numbered")
    if env.render_mode != "rgb_array":
        raise ValueError(f"env.render_mode={env.render_mode!r}; make the env with render_mode='rgb_array'")
    act = act_fn if act_fn is not None else _default_act(model, deterministic)
    frames: list[np.ndarray] = []
    returns: list[float] = []
    reward = 0.0

    limit = env.spec.max_episode_steps if env.spec is not None else None

    def caption(episode: int, step: int, so_far: float) -> list[str]:
        extra = detail(episode) if detail is not None else None
        return overlay_lines(label, first_episode + episode, of_episodes, step, limit, so_far, extra)

    for episode in range(episodes):
        observation, _ = env.reset(seed=seed if episode == 0 else None)
        total, step, episode_start = 0.0, 0, True
        frames.append(caption_frame(env.render(), caption(episode, step, total), min_size=min_size))
        while step < max_steps:
            action = act(observation, episode_start, reward)
            if isinstance(action, np.ndarray) and isinstance(env.action_space, gym.spaces.Discrete):
                action = int(action.reshape(-1)[0])
            observation, step_reward, terminated, truncated, _ = env.step(action)
            reward = float(step_reward)
            total += reward
            step += 1
            episode_start = False
            frames.append(caption_frame(env.render(), caption(episode, step, total), min_size=min_size))
            if terminated or truncated:
                break
        returns.append(total)
    return frames, returns


def _fit(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    # Renderers may change size mid-episode (rare); crop or pad to the first frame's shape.
    out = np.zeros(shape, dtype=np.uint8)
    h, w = min(shape[0], frame.shape[0]), min(shape[1], frame.shape[1])
    out[:h, :w] = frame[:h, :w]
    return out

"""Bit flipping: the classic discrete goal environment for DQN + hindsight experience replay."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .base import check_discrete_action, check_integer, check_render_mode, check_reset_options

__all__ = ["BitFlipEnv"]


class BitFlipEnv(gym.Env[dict[str, np.ndarray], int]):
    """Flip bits one at a time until the state equals a random target bit string.

    ## Description
    The state is a string of ``n_bits`` bits; each action flips one bit. The reward is
    sparse (``-1`` until the state equals the goal), so without hindsight relabelling
    random exploration almost never sees a success once ``n_bits`` exceeds ~15
    (Andrychowicz et al. 2017, the task of Stable-Baselines3's ``BitFlippingEnv``).

    ## Action Space
    ``Discrete(n_bits)``: action ``i`` flips bit ``i``.

    ## Observation Space
    ``Dict(observation, achieved_goal, desired_goal)``, each ``Box(0, 1, (n_bits,), float32)``
    holding 0.0/1.0 values; ``observation`` and ``achieved_goal`` are the state,
    ``desired_goal`` the target (float boxes so HER and MLP policies take them as they are).

    ## Rewards
    ``-1`` per step unless the state equals the goal after the flip, then ``0``
    (``compute_reward`` is vectorised over leading batch dimensions).

    ## Starting State
    State and goal are independent uniform random bit strings, redrawn until they differ
    (so every episode needs at least one flip), through ``self.np_random``.

    ## Episode End
    Terminates on success (state == goal), like SB3's ``BitFlippingEnv``; truncated after
    ``n_bits`` steps by the registered time limit. ``info["is_success"]`` is 1.0 on success.

    ## Arguments
    ``n_bits`` (int >= 1, default 20): number of bits.
    ``render_mode`` (``None`` or ``"rgb_array"``): ``render()`` returns a
    ``(36, 8 * n_bits, 3)`` uint8 image: the state (top row of cells) above the goal
    (bottom row), set bits dark, clear bits light.

    ## Registered Configurations
    ``zoo/BitFlip-v0`` (20 bits, 20 steps), ``zoo/BitFlip-n40-v0`` (40 bits, 40 steps).

    ## Version History
    v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    cell_pixels = 8

    def __init__(self, n_bits: int = 20, render_mode: str | None = None) -> None:
        """:param n_bits: number of bits (>= 1).
        :param render_mode: ``None`` or ``"rgb_array"``.
        """
        n_bits = check_integer("n_bits", n_bits, 1)
        check_render_mode(render_mode)
        self.n_bits = int(n_bits)
        self.render_mode = render_mode
        box = spaces.Box(0.0, 1.0, (self.n_bits,), np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = spaces.Discrete(self.n_bits)
        self._state = np.zeros(self.n_bits, np.float32)
        self._goal = np.ones(self.n_bits, np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": self._state.copy(),
            "achieved_goal": self._state.copy(),
            "desired_goal": self._goal.copy(),
        }

    def _goal_batch(self, goal: Any, name: str) -> np.ndarray:
        array = np.asarray(goal, dtype=np.float32)
        if array.ndim < 1 or array.shape[-1] != self.n_bits:
            raise ValueError(f"{name} has shape {array.shape}; expected (..., {self.n_bits})")
        return array

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """``0`` where all bits agree, ``-1`` elsewhere, batched.

        :param achieved_goal: array of shape ``(..., n_bits)``.
        :param desired_goal: array of shape ``(..., n_bits)``.
        :param info: ignored (a dict, or an array/list of dicts when batched).
        :return: float array of shape ``(...)``.
        """
        achieved = self._goal_batch(achieved_goal, "achieved_goal")
        desired = self._goal_batch(desired_goal, "desired_goal")
        return np.where(np.all(achieved == desired, axis=-1), 0.0, -1.0)

    def compute_terminated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """``True`` where the state equals the goal (the episode ends on success), batched.

        :param achieved_goal: array of shape ``(..., n_bits)``.
        :param desired_goal: array of shape ``(..., n_bits)``.
        :param info: ignored.
        :return: boolean array of shape ``(...)``.
        """
        return self.compute_reward(achieved_goal, desired_goal, info) == 0.0

    def compute_truncated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Always ``False``: the time limit comes from the registration.

        :param achieved_goal: array of shape ``(..., n_bits)``.
        :param desired_goal: array of shape ``(..., n_bits)``.
        :param info: ignored.
        :return: boolean array of shape ``(...)``.
        """
        achieved = self._goal_batch(achieved_goal, "achieved_goal")
        return np.zeros(achieved.shape[:-1], dtype=bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Draw a random state and a different random goal.

        :param seed: seed for ``self.np_random``.
        :param options: ``None`` or ``{}`` (no reset options).
        :return: observation and info (``is_success``).
        """
        check_reset_options(options)
        super().reset(seed=seed)
        self._state = self.np_random.integers(0, 2, self.n_bits).astype(np.float32)
        self._goal = self._state.copy()
        while np.array_equal(self._goal, self._state):
            self._goal = self.np_random.integers(0, 2, self.n_bits).astype(np.float32)
        return self._obs(), {"is_success": 0.0}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Flip bit ``action``.

        :param action: an integer in ``[0, n_bits)`` (a numpy integer or 0-d integer array is accepted).
        :return: observation, reward, terminated, truncated, info.
        """
        index = check_discrete_action(action, self.n_bits)
        self._state[index] = 1.0 - self._state[index]
        reward = float(self.compute_reward(self._state, self._goal, None))
        success = reward == 0.0
        return self._obs(), reward, success, False, {"is_success": float(success)}

    def render(self) -> np.ndarray | None:
        """Draw the state above the goal, set bits dark.

        :return: a ``(36, 8 * n_bits, 3)`` uint8 frame when ``render_mode="rgb_array"``, else ``None``.
        """
        if self.render_mode != "rgb_array":
            return None
        scale = self.cell_pixels
        frame = np.full((36, scale * self.n_bits, 3), 255, np.uint8)
        for top, bits, dark in ((2, self._state, (40, 40, 160)), (20, self._goal, (0, 130, 0))):
            cells = np.repeat(bits > 0.5, scale)
            frame[top : top + 14, cells] = dark
            frame[top : top + 14, ~cells] = (215, 215, 215)
            frame[top : top + 14, ::scale] = 255
        return frame

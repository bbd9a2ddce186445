"""Gymnasium conventions the SB3 ecosystem relies on: ``gymnasium.utils.play`` keyboard mappings.

The mapping tests need nothing but the envs; the ``play``/``PlayableGame`` tests run
Gymnasium's own code headless (``SDL_VIDEODRIVER=dummy``) and are skipped without pygame.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import zoo.envs
from zoo.envs.base import KEY_DOWN, KEY_LEFT, KEY_RIGHT, KEY_UP

PLAYABLE_IDS = list(zoo.envs.META_ENV_IDS)
GRID_IDS = ["zoo/DarkRoom-v0", "zoo/DarkRoomHard-v0", "zoo/DarkKeyToDoor-v0"]


def keys_to_action(env_id: str) -> dict[tuple[int, ...], int]:
    # Through the wrappers gym.make adds, as play() looks the mapping up.
    return gym.make(env_id).get_wrapper_attr("get_keys_to_action")()


def test_every_meta_env_is_checked() -> None:
    assert set(GRID_IDS) < set(PLAYABLE_IDS) and len(PLAYABLE_IDS) == 5


@pytest.mark.parametrize("env_id", PLAYABLE_IDS)
def test_keys_to_action_is_a_mapping_play_accepts_and_reaches_every_action(env_id: str) -> None:
    env = gym.make(env_id)
    mapping = keys_to_action(env_id)
    assert isinstance(mapping, dict) and mapping
    for combination, action in mapping.items():
        # What play() validates, plus what PlayableGame's lookup needs: int key codes, sorted.
        assert isinstance(combination, tuple) and combination, combination
        assert all(isinstance(code, int) and not isinstance(code, bool) for code in combination)
        assert list(combination) == sorted(set(combination)), combination
        assert env.action_space.contains(action) and isinstance(action, int)
    assert set(mapping.values()) == set(range(env.action_space.n)), "every action has a key"
    # play() sorts each combination's codes into one lookup key: no two entries may collide.
    assert len({tuple(sorted(combination)) for combination in mapping}) == len(mapping)


@pytest.mark.parametrize("env_id", GRID_IDS)
def test_grid_keys_are_arrows_or_wasd_and_space_stays(env_id: str) -> None:
    mapping = keys_to_action(env_id)
    assert mapping == {
        (ord(" "),): 0,
        (KEY_UP,): 1,
        (ord("w"),): 1,
        (KEY_RIGHT,): 2,
        (ord("d"),): 2,
        (KEY_DOWN,): 3,
        (ord("s"),): 3,
        (KEY_LEFT,): 4,
        (ord("a"),): 4,
    }
    # The keys move the agent as documented: up is row - 1, right is col + 1.
    env = gym.make(env_id, size=5)
    env.reset(seed=0)
    env.unwrapped.agent = (2, 2)  # Key-to-Door starts anywhere
    assert env.step(mapping[(KEY_UP,)])[0] == 1 * 5 + 2
    assert env.step(mapping[(ord("d"),)])[0] == 1 * 5 + 3
    assert env.step(mapping[(ord(" "),)])[0] == 1 * 5 + 3


def test_bandit_digit_keys_pull_their_arm() -> None:
    assert keys_to_action("zoo/AdversarialBandit-v0") == {(ord(str(arm)),): arm for arm in range(10)}


def test_watermaze_keys() -> None:
    mapping = keys_to_action("zoo/Watermaze-v0")
    named = {
        (KEY_UP,): 0,
        ("w",): 0,
        (KEY_DOWN,): 1,
        ("s",): 1,
        ("a",): 2,
        ("d",): 3,
        (KEY_LEFT,): 4,
        ("q",): 4,
        (KEY_RIGHT,): 5,
        ("e",): 5,
        (KEY_UP, KEY_LEFT): 6,
        ("w", "q"): 6,
        (KEY_UP, KEY_RIGHT): 7,
        ("w", "e"): 7,
    }
    assert mapping == {
        tuple(sorted(ord(key) if isinstance(key, str) else key for key in combination)): action
        for combination, action in named.items()
    }


# -- Gymnasium's own play code, headless ---------------------------------------------------------


@pytest.fixture
def pygame(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    module = pytest.importorskip("pygame", reason="gymnasium.utils.play needs pygame")
    yield module
    module.quit()


def test_arrow_key_codes_are_pygames(pygame: Any) -> None:
    assert (KEY_UP, KEY_DOWN, KEY_RIGHT, KEY_LEFT) == (
        pygame.K_UP,
        pygame.K_DOWN,
        pygame.K_RIGHT,
        pygame.K_LEFT,
    )


@pytest.mark.parametrize("env_id", PLAYABLE_IDS)
def test_playable_game_finds_the_default_keys(env_id: str, pygame: Any) -> None:
    from gymnasium.utils.play import PlayableGame

    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    mapping = env.get_wrapper_attr("get_keys_to_action")()
    game = PlayableGame(env, keys_to_action=None)  # no MissingKeysToAction: the env's mapping is used
    assert game.relevant_keys == {code for combination in mapping for code in combination}
    for combination, action in mapping.items():
        for code in combination:
            game.process_event(pygame.event.Event(pygame.KEYDOWN, key=code))
        assert mapping[tuple(sorted(game.pressed_keys))] == action
        for code in combination:
            game.process_event(pygame.event.Event(pygame.KEYUP, key=code))
        assert not game.pressed_keys


class _PressKeys(gym.Wrapper):
    """Holds each key combination of the env's mapping for one ``play`` step, then quits."""

    def __init__(self, env: gym.Env, pygame: Any) -> None:
        super().__init__(env)
        self.pygame = pygame
        self.combinations = list(env.get_wrapper_attr("get_keys_to_action")())
        self.held = -1
        self.sent: list[tuple[tuple[int, ...], Any]] = []

    def _post(self, kind: int, combination: tuple[int, ...]) -> None:
        for code in combination:
            self.pygame.event.post(self.pygame.event.Event(kind, key=code))

    def reset(self, **kwargs: Any) -> Any:
        if self.held < 0 and self.pygame.display.get_init():  # play's window is open: start pressing
            self.held = 0
            self._post(self.pygame.KEYDOWN, self.combinations[0])
        return super().reset(**kwargs)

    def step(self, action: Any) -> Any:
        self.sent.append((self.combinations[self.held], action))
        self._post(self.pygame.KEYUP, self.combinations[self.held])
        self.held += 1
        if self.held < len(self.combinations):
            self._post(self.pygame.KEYDOWN, self.combinations[self.held])
        else:
            self.pygame.event.post(self.pygame.event.Event(self.pygame.QUIT))
        return super().step(action)


@pytest.mark.parametrize("env_id", PLAYABLE_IDS)
def test_gymnasium_play_sends_the_action_of_each_key(env_id: str, pygame: Any) -> None:
    from gymnasium.utils.play import play

    env = _PressKeys(gym.make(env_id, render_mode="rgb_array"), pygame)
    rewards: list[float] = []
    play(env, fps=1000, seed=0, callback=lambda *step: rewards.append(step[3]))
    mapping = env.get_wrapper_attr("get_keys_to_action")()
    assert env.sent == list(mapping.items())
    assert len(rewards) == len(mapping) and all(np.isfinite(rewards))

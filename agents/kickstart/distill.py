"""The kickstarting term and the shared machinery of the kickstarted agents.

Kickstarting (Schmitt et al. 2018, https://arxiv.org/abs/1803.03835) adds to the student's RL
loss, on the states the *student* visited,

    λ_k · H(π_teacher(·|x) ‖ π_student(·|x)) = -λ_k · Σ_a π_teacher(a|x) log π_student(a|x)

(or the KL divergence, which has the same gradient with respect to the student). The term is
added to the loss of the same minibatch, before the single ``backward()`` of each gradient step.

Distributions are handled through their parameters so that per-task subsets of a minibatch can
be distilled from different teachers:

* ``Discrete``: normalised logits ``(batch, n)``; ``MultiDiscrete``: one such tensor per
  dimension, the term summed over dimensions; ``MultiBinary``: Bernoulli logits, summed;
* ``Box``: diagonal Gaussian mean and standard deviation, the closed form
  ``log σ_s + ½ log 2π + (σ_t² + (μ_t − μ_s)²) / (2 σ_s²)`` summed over dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from zoo.agents.common.schedules import coefficient_value, parse_schedule
from zoo.agents.common.type_aliases import CoefficientLike, TeacherSpec
from zoo.agents.common.utils import check_teacher_spaces, freeze_policy, is_recurrent_policy, resolve_teacher

__all__ = [
    "KICKSTART_LOSSES",
    "KickstartMixin",
    "distribution_parameters",
    "kickstart_divergence",
    "mask_parameters",
    "teacher_agreement",
]

KickstartLossName = Literal["cross_entropy", "kl"]
KICKSTART_LOSSES: tuple[str, ...] = ("cross_entropy", "kl")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_MASKED_LOGIT = -1e8  # what sb3-contrib writes for masked actions


def distribution_parameters(distribution: Distribution) -> list[th.Tensor]:
    """The parameters of an SB3 action distribution, as tensors with the batch first.

    :param distribution: an SB3 (or sb3-contrib maskable) distribution after ``proba_distribution``.
    :return: ``[log_probs]`` (categorical), ``[log_probs_1, ..., log_probs_k]`` (multi-categorical),
        ``[logits]`` (Bernoulli) or ``[mean, std]`` (diagonal Gaussian).
    :raises ValueError: for a distribution without a closed-form cross-entropy here.
    """
    inner = distribution.distribution
    if isinstance(inner, (list, tuple)):
        return [sub.logits for sub in inner]
    if isinstance(inner, th.distributions.Categorical):
        return [inner.logits]
    if isinstance(inner, th.distributions.Bernoulli):
        return [inner.logits]
    if isinstance(inner, th.distributions.Normal):
        return [inner.loc, inner.scale]
    raise ValueError(f"kickstarting does not support the action distribution {type(distribution).__name__}")


def _kind(action_space: spaces.Space) -> str:
    if isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete)):
        return "categorical"
    if isinstance(action_space, spaces.MultiBinary):
        return "bernoulli"
    if isinstance(action_space, spaces.Box):
        return "gaussian"
    raise ValueError(f"kickstarting does not support the action space {action_space}")


def mask_parameters(parameters: list[th.Tensor], action_masks: th.Tensor) -> list[th.Tensor]:
    """Apply an action mask (as sb3-contrib does) to categorical parameters and renormalise.

    :param parameters: categorical logits, one tensor per action dimension.
    :param action_masks: boolean-like ``(batch, sum of the dimensions' sizes)``.
    :return: masked, renormalised log-probabilities.
    """
    sizes = [p.shape[-1] for p in parameters]
    masks = th.split(action_masks.reshape(action_masks.shape[0], -1).bool(), sizes, dim=1)
    return [
        th.log_softmax(th.where(mask, logits, th.full_like(logits, _MASKED_LOGIT)), dim=-1)
        for logits, mask in zip(parameters, masks)
    ]


def kickstart_divergence(
    kind: str, teacher: list[th.Tensor], student: list[th.Tensor], loss: str = "cross_entropy"
) -> th.Tensor:
    """Per-sample H(teacher ‖ student) (or KL(teacher ‖ student)), summed over action dimensions.

    :param kind: ``"categorical"``, ``"bernoulli"`` or ``"gaussian"``.
    :param teacher: teacher parameters from :func:`distribution_parameters` (no gradient needed).
    :param student: student parameters, same layout.
    :param loss: ``"cross_entropy"`` or ``"kl"``.
    :return: a tensor of shape ``(batch,)``.
    """
    if kind == "categorical":
        total = th.zeros((), device=student[0].device)
        for teacher_logits, student_logits in zip(teacher, student):
            teacher_log_probs = th.log_softmax(teacher_logits, dim=-1)
            teacher_probs = teacher_log_probs.exp()
            student_log_probs = th.log_softmax(student_logits, dim=-1)
            term = -(teacher_probs * student_log_probs).sum(-1)
            if loss == "kl":
                term = term + th.special.xlogy(teacher_probs, teacher_probs).sum(-1)
            total = total + term
        return total
    if kind == "bernoulli":
        teacher_probs = th.sigmoid(teacher[0])
        term = F.binary_cross_entropy_with_logits(student[0], teacher_probs, reduction="none")
        if loss == "kl":
            term = term - F.binary_cross_entropy_with_logits(teacher[0], teacher_probs, reduction="none")
        return term.reshape(term.shape[0], -1).sum(-1)
    if kind == "gaussian":
        teacher_mean, teacher_std = teacher
        student_mean, student_std = student
        term = (
            th.log(student_std)
            + _HALF_LOG_2PI
            + (teacher_std**2 + (teacher_mean - student_mean) ** 2) / (2.0 * student_std**2)
        )
        if loss == "kl":
            # H(teacher) = log σ_t + ½ log 2π + ½
            term = term - (th.log(teacher_std) + _HALF_LOG_2PI + 0.5)
        return term.reshape(term.shape[0], -1).sum(-1)
    raise ValueError(f"unknown distribution kind {kind!r}")


def teacher_agreement(kind: str, teacher: list[th.Tensor], student: list[th.Tensor]) -> th.Tensor:
    """Per-sample agreement (bool) between the teacher's and the student's preferred actions.

    Discrete-like spaces: equal most likely action on every dimension. Box: the student's mean
    lies within one teacher standard deviation of the teacher's mean on every dimension.

    :param kind: as in :func:`kickstart_divergence`.
    :param teacher: teacher parameters.
    :param student: student parameters.
    :return: a bool tensor of shape ``(batch,)``.
    """
    if kind == "categorical":
        agree = th.ones(student[0].shape[0], dtype=th.bool, device=student[0].device)
        for teacher_logits, student_logits in zip(teacher, student):
            agree = agree & (teacher_logits.argmax(-1) == student_logits.argmax(-1))
        return agree
    if kind == "bernoulli":
        same = (teacher[0] > 0) == (student[0] > 0)
        return same.reshape(same.shape[0], -1).all(-1)
    close = (student[0] - teacher[0]).abs() <= teacher[1]
    return close.reshape(close.shape[0], -1).all(-1)


def _index_observations(observations: th.Tensor | dict[str, th.Tensor], index: th.Tensor) -> Any:
    if isinstance(observations, dict):
        return {key: value[index] for key, value in observations.items()}
    return observations[index]


@contextmanager
def _capture_distributions(policy: BasePolicy) -> Any:
    """Record the distributions the policy builds while inside the block (no extra forward pass)."""
    captured: list[Distribution] = []
    original = policy._get_action_dist_from_latent  # type: ignore[attr-defined]
    had_instance_attribute = "_get_action_dist_from_latent" in policy.__dict__

    def recording(*args: Any, **kwargs: Any) -> Distribution:
        distribution = original(*args, **kwargs)
        captured.append(distribution)
        return distribution

    object.__setattr__(policy, "_get_action_dist_from_latent", recording)
    try:
        yield captured
    finally:
        if had_instance_attribute:
            object.__setattr__(policy, "_get_action_dist_from_latent", original)
        else:
            object.__delattr__(policy, "_get_action_dist_from_latent")


def _task_key(key: Any) -> Any:
    if isinstance(key, str) and key.isdigit():
        return int(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    return key


class _TeacherCache(NamedTuple):
    """Teacher distribution parameters for every sample of the rollout (rows = flattened buffer)."""

    kind: str
    keys: list[int | None]
    parameters: list[th.Tensor]
    weights: th.Tensor  # λ of the sample's teacher, 0 without one
    slots: th.Tensor  # position of the sample's teacher in ``keys``, len(keys) without one
    # Categorical only, precomputed so each minibatch does the least work: the teacher's
    # probabilities per action dimension, its entropy (summed) and its preferred actions.
    probabilities: list[th.Tensor] | None = None
    entropy: th.Tensor | None = None
    modes: th.Tensor | None = None


class KickstartMixin:
    """What every kickstarted agent adds to its SB3 algorithm.

    The host class calls :meth:`_init_kickstart` before ``super().__init__`` (so that loading a
    teacher from disk does not consume the seeded random streams), :meth:`_kickstart_before_setup`
    and :meth:`_kickstart_after_setup` around ``super()._setup_model()``, and, in ``train()``,
    wraps its loop in :meth:`_kickstart_update` and adds :meth:`_kickstart_term` to each
    minibatch's loss before the single ``backward()``.
    """

    #: evaluate the teachers once per update on the whole rollout (False: per minibatch).
    _cache_teachers: ClassVar[bool] = True
    #: buffer classes used when the teacher is a mapping (None: multi-teacher unsupported).
    _task_buffer_class: ClassVar[type | None] = None

    # Attributes of the host SB3 algorithm used here.
    policy: Any
    env: VecEnv | None
    device: th.device
    observation_space: spaces.Space
    action_space: spaces.Space
    logger: Any
    num_timesteps: int
    n_steps: int
    n_envs: int
    _current_progress_remaining: float
    rollout_buffer: Any
    rollout_buffer_class: type | None

    kickstart_coef: CoefficientLike | Mapping[int, CoefficientLike]
    kickstart_loss: str

    # ----------------------------------------------------------------------------- setup
    def _init_kickstart(
        self,
        teacher: TeacherSpec | None,
        kickstart_coef: CoefficientLike | Mapping[int, CoefficientLike],
        kickstart_loss: str,
    ) -> None:
        if kickstart_loss not in KICKSTART_LOSSES:
            raise ValueError(f"kickstart_loss={kickstart_loss!r} must be one of {KICKSTART_LOSSES}")
        self.kickstart_loss = kickstart_loss
        self._teachers: dict[int | None, BasePolicy] = self._resolve_teachers(teacher)
        self.kickstart_coef = kickstart_coef
        self._kickstart_schedules = self._build_schedules(kickstart_coef, self._teachers)
        self._kickstart_stats: dict[str, float] = {}
        # Hidden states of recurrent teachers, carried from one rollout to the next.
        self._teacher_states: dict[int | None, Any] = {}

    def _recurrent_teacher_parameters(self, key: int | None, teacher: BasePolicy) -> list[th.Tensor]:
        """A recurrent teacher's distribution parameters over the rollout, flattened like the buffer.

        The teacher runs through the rollout in time order on every sub-env, with its hidden state
        reset where an episode starts and carried over from the previous rollout, so it acts on the
        student's trajectory as it would have acting in the env itself.
        """
        buffer = self.rollout_buffer
        steps, envs = buffer.buffer_size, buffer.n_envs

        def time_major(array: np.ndarray) -> np.ndarray:
            # Undo get()'s in-place flattening (env-major) if it has already happened.
            if not buffer.generator_ready:
                return array
            return array.reshape(envs, steps, *array.shape[1:]).swapaxes(0, 1)

        if isinstance(buffer.observations, dict):
            observations: Any = {name: time_major(value) for name, value in buffer.observations.items()}
        else:
            observations = time_major(buffer.observations)
        starts = time_major(buffer.episode_starts)
        state = self._teacher_states.get(key)
        if state is None:
            shape = teacher.lstm_hidden_state_shape  # (layers, 1, hidden)
            zeros = th.zeros((shape[0], envs, shape[2]), device=self.device)
            state = (zeros, zeros.clone())
        per_step: list[list[th.Tensor]] = []
        for step in range(steps):
            observation_tensor: Any = (
                {name: th.as_tensor(value[step], device=self.device) for name, value in observations.items()}
                if isinstance(observations, dict)
                else th.as_tensor(observations[step], device=self.device)
            )
            distribution, state = teacher.get_distribution(
                observation_tensor, state, th.as_tensor(starts[step], dtype=th.float32, device=self.device)
            )
            per_step.append(distribution_parameters(distribution))
        self._teacher_states[key] = state
        # (steps, envs, ...) -> (envs, steps, ...) -> (envs * steps, ...), the buffer's flat order.
        return [
            th.stack([parameters[index] for parameters in per_step])
            .transpose(0, 1)
            .reshape(steps * envs, *per_step[0][index].shape[1:])
            for index in range(len(per_step[0]))
        ]

    def _resolve_teachers(self, teacher: TeacherSpec | None) -> dict[int | None, BasePolicy]:
        if teacher is None:
            return {}
        if isinstance(teacher, Mapping):
            if self._task_buffer_class is None:
                raise ValueError(
                    f"teacher: {type(self).__name__} does not support a mapping of teachers (one per task); "
                    "pass a single teacher"
                )
            if len(teacher) == 0:
                raise ValueError("teacher={} is empty; pass None for no teacher")
            resolved: dict[int | None, BasePolicy] = {}
            for key, value in teacher.items():
                if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
                    raise ValueError(
                        f"teacher mapping key {key!r} must be a task index (an int >= 0, the sub-env's "
                        "'task_index')"
                    )
                resolved[int(key)] = resolve_teacher(value)
            self._check_recurrent_teachers(resolved)
            return resolved
        resolved_single = {None: resolve_teacher(teacher)}
        self._check_recurrent_teachers(resolved_single)
        return resolved_single

    def _check_recurrent_teachers(self, teachers: Mapping[int | None, BasePolicy]) -> None:
        # A recurrent teacher is run through each rollout in time order (see _recurrent_teacher_parameters);
        # agents that evaluate teachers per padded minibatch sequence cannot do that.
        if not self._cache_teachers and any(is_recurrent_policy(policy) for policy in teachers.values()):
            raise ValueError(
                f"teacher: {type(self).__name__} does not support recurrent (LSTM) teachers; use a "
                "KickstartedPPO/A2C/MaskablePPO student, or a feed-forward teacher"
            )

    @staticmethod
    def _build_schedules(
        kickstart_coef: CoefficientLike | Mapping[int, CoefficientLike],
        teachers: Mapping[int | None, BasePolicy],
    ) -> dict[int | None, Any]:
        if isinstance(kickstart_coef, Mapping):
            if None in teachers or not teachers:
                raise ValueError(
                    f"kickstart_coef={dict(kickstart_coef)!r} is a mapping but teacher is not a mapping of "
                    "task index -> teacher; pass a single coefficient"
                )
            # SB3's save() writes mapping keys as JSON strings: "3" is task 3 again after load().
            coef_keys = {_task_key(k) for k in kickstart_coef}
            if coef_keys != set(teachers):
                raise ValueError(
                    f"kickstart_coef keys {sorted(map(str, coef_keys))} must equal the teacher keys "
                    f"{sorted(map(str, teachers))}"
                )
            return {
                _task_key(key): parse_schedule(value, name=f"kickstart_coef[{key}]")
                for key, value in kickstart_coef.items()
            }
        schedule = parse_schedule(kickstart_coef, name="kickstart_coef")
        keys: list[int | None] = list(teachers) if teachers else [None]
        return dict.fromkeys(keys, schedule)

    def _kickstart_before_setup(self) -> None:
        # ``Cls.load(path, teacher=...)`` writes the keyword straight into __dict__.
        pending = self.__dict__.pop("teacher", None)
        if pending is not None:
            self._teachers = self._resolve_teachers(pending)
        if not hasattr(self, "_teachers"):
            self._teachers = {}
        self._kickstart_schedules = (
            self._build_schedules(self.kickstart_coef, self._teachers) if self._teachers else {}
        )
        self._kickstart_stats = {}
        if self._is_multi_teacher and self.rollout_buffer_class is None:
            self.rollout_buffer_class = self._task_buffer_class

    def _kickstart_after_setup(self) -> None:
        for key, teacher in self._teachers.items():
            name = "teacher" if key is None else f"teacher[{key}]"
            check_teacher_spaces(name, teacher, self.observation_space, self.action_space)
            self._teachers[key] = freeze_policy(teacher, self.device)
        if self._teachers:
            _kind(self.action_space)
        if self._is_multi_teacher:
            if self._task_buffer_class is None or not isinstance(
                self.rollout_buffer, self._task_buffer_class
            ):
                raise ValueError(
                    "teacher is a mapping (one per task) but rollout_buffer_class="
                    f"{self.rollout_buffer_class!r} does not store task indices; leave it None"
                )
            if self.env is not None:
                self._check_task_index_env(self.env)

    @staticmethod
    def _check_task_index_env(env: VecEnv) -> None:
        try:
            env.get_attr("task_index")
        except Exception as error:
            raise ValueError(
                f"env={env!r}: a mapping of teachers needs a vector env whose sub-envs expose 'task_index' "
                "(e.g. zoo.envs.sb3.SB3VecEnv(zoo.envs.vector.make_multitask_vec_env(...)))"
            ) from error

    @property
    def _is_multi_teacher(self) -> bool:
        return bool(self._teachers) and None not in self._teachers

    @property
    def teachers(self) -> dict[int | None, BasePolicy]:
        """The frozen teacher policies, keyed by task index (``None`` for a single teacher)."""
        return dict(self._teachers)

    def set_teacher(
        self,
        teacher: TeacherSpec | None,
        kickstart_coef: CoefficientLike | Mapping[int, CoefficientLike] | None = None,
    ) -> None:
        """Replace (or remove, with ``None``) the teacher(s), e.g. after ``load()``.

        :param teacher: as the constructor's ``teacher``.
        :param kickstart_coef: a new coefficient; ``None`` keeps the current one.
        """
        teachers = self._resolve_teachers(teacher)
        coef = self.kickstart_coef if kickstart_coef is None else kickstart_coef
        if isinstance(coef, Mapping) and not (teachers and None not in teachers):
            raise ValueError(
                f"kickstart_coef={dict(coef)!r} is a mapping; pass a single coefficient for a single teacher"
            )
        schedules = self._build_schedules(coef, teachers)
        for key, policy in teachers.items():
            check_teacher_spaces(
                "teacher" if key is None else f"teacher[{key}]",
                policy,
                self.observation_space,
                self.action_space,
            )
        if teachers:
            _kind(self.action_space)
        was_multi = self._is_multi_teacher
        self._teachers = {key: freeze_policy(policy, self.device) for key, policy in teachers.items()}
        self._check_recurrent_teachers(self._teachers)
        self._teacher_states = {}
        self.kickstart_coef = coef
        self._kickstart_schedules = schedules
        if self._is_multi_teacher and not was_multi:
            self._switch_to_task_buffer()

    def set_kickstart_coef(self, kickstart_coef: CoefficientLike | Mapping[int, CoefficientLike]) -> None:
        """Change the coefficient(s) (e.g. from population-based training) and keep the teachers.

        :param kickstart_coef: as the constructor's ``kickstart_coef``.
        """
        self._kickstart_schedules = self._build_schedules(kickstart_coef, self._teachers)
        self.kickstart_coef = kickstart_coef

    def _switch_to_task_buffer(self) -> None:
        assert self._task_buffer_class is not None
        if isinstance(self.rollout_buffer, self._task_buffer_class):
            return
        old = self.rollout_buffer
        self.rollout_buffer_class = self._task_buffer_class
        self.rollout_buffer = self._task_buffer_class(
            old.buffer_size,
            old.observation_space,
            old.action_space,
            device=old.device,
            gamma=old.gamma,
            gae_lambda=old.gae_lambda,
            n_envs=old.n_envs,
        )

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "_teachers",
            "_kickstart_schedules",
            "_kickstart_stats",
            "_kickstart_sums",
            "_teacher_cache",
            "_teacher_states",
            "_kickstart_batch_inds",
        ]  # type: ignore[misc]

    def collect_rollouts(self, env: VecEnv, *args: Any, **kwargs: Any) -> bool:
        if self._task_buffer_class is not None and isinstance(self.rollout_buffer, self._task_buffer_class):
            self._check_task_index_env(env)
            self.rollout_buffer.task_index_source = lambda: env.get_attr("task_index")
        return super().collect_rollouts(env, *args, **kwargs)  # type: ignore[misc]

    # ----------------------------------------------------------------------------- training
    def _kickstart_coefficients(self) -> dict[int | None, float]:
        """Evaluate every teacher's coefficient for the update about to start."""
        updates_done = max(self.num_timesteps // max(self.n_steps * self.n_envs, 1) - 1, 0)
        return {
            key: coefficient_value(schedule, self._current_progress_remaining, updates_done)
            for key, schedule in self._kickstart_schedules.items()
        }

    def _kickstart_begin(self) -> dict[int | None, float]:
        """Coefficients for the update about to start; builds the teacher cache when possible."""
        coefficients = self._kickstart_coefficients() if self._teachers else {}
        for key, value in coefficients.items():
            if value < 0 or not math.isfinite(value):
                raise ValueError(
                    f"kickstart_coef{'' if key is None else f'[{key}]'} evaluated to {value}; must be >= 0"
                )
        self._kickstart_stats = {}
        # (keys, tensor (3, len(keys) + 1)): sums of divergence, agreement and count per teacher;
        # the last column collects samples without a teacher and is never logged.
        self._kickstart_sums: tuple[list[int | None], th.Tensor] | None = None
        self._teacher_cache: _TeacherCache | None = None
        active = {key: value for key, value in coefficients.items() if value > 0 and key in self._teachers}
        if active and self._cache_teachers:
            self._teacher_cache = self._build_teacher_cache(active)
        return coefficients

    @contextmanager
    def _kickstart_update(self) -> Any:
        """Wrap one call to ``train()``: yields the coefficients, logs and cleans up afterwards."""
        coefficients = self._kickstart_begin()
        buffer = self.rollout_buffer
        recording = self._teacher_cache is not None
        if recording:
            original = buffer._get_samples

            def get_samples(batch_inds: np.ndarray, *args: Any, **kwargs: Any) -> Any:
                self._kickstart_batch_inds = batch_inds
                return original(batch_inds, *args, **kwargs)

            object.__setattr__(buffer, "_get_samples", get_samples)
        try:
            yield coefficients
            self._kickstart_log(coefficients)
        finally:
            if recording:
                object.__delattr__(buffer, "_get_samples")
            self._teacher_cache = None
            self._kickstart_batch_inds = None

    def _build_teacher_cache(self, active: dict[int | None, float]) -> _TeacherCache:
        """Teacher distributions for the whole rollout, computed once per update.

        Teachers are frozen and the rollout does not change during an update, so evaluating them
        once (instead of once per minibatch and epoch) gives the same term for less work.
        """
        buffer = self.rollout_buffer
        kind = _kind(self.action_space)

        def flat(array: np.ndarray) -> th.Tensor:
            # get() flattens the buffer's arrays in place on its first call.
            return th.as_tensor(
                array if buffer.generator_ready else buffer.swap_and_flatten(array), device=self.device
            )

        if isinstance(buffer.observations, dict):
            observations: Any = {key: flat(value) for key, value in buffer.observations.items()}
            size = next(iter(observations.values())).shape[0]
        else:
            observations = flat(buffer.observations)
            size = observations.shape[0]
        masks = flat(buffer.action_masks) if hasattr(buffer, "action_masks") else None
        keys = list(active)
        if self._is_multi_teacher:
            tasks = flat(buffer.task_indices).reshape(-1)
            slots = th.full((size,), len(active), dtype=th.long, device=self.device)
            for slot, key in enumerate(keys):
                slots[tasks == key] = slot
        else:
            slots = th.zeros(size, dtype=th.long, device=self.device)
        weights = th.zeros(size, device=self.device)
        parameters: list[th.Tensor] | None = None
        chunk = 4096
        with th.no_grad():
            for slot, key in enumerate(keys):
                rows = (slots == slot).nonzero().reshape(-1)
                if rows.numel() == 0:
                    continue
                weights[rows] = float(active[key])
                teacher = self._teachers[key]
                sequential = (
                    self._recurrent_teacher_parameters(key, teacher) if is_recurrent_policy(teacher) else None
                )
                for begin in range(0, rows.numel(), chunk):
                    part = rows[begin : begin + chunk]
                    if sequential is not None:
                        teacher_parameters = [value[part] for value in sequential]
                    else:
                        teacher_parameters = distribution_parameters(
                            teacher.get_distribution(_index_observations(observations, part))
                        )
                    if masks is not None:
                        teacher_parameters = mask_parameters(teacher_parameters, masks[part])
                    if parameters is None:
                        # Rows without a teacher get harmless values (weight 0): zeros, std 1.
                        parameters = [
                            th.zeros((size, *p.shape[1:]), dtype=p.dtype, device=self.device)
                            for p in teacher_parameters
                        ]
                        if kind == "gaussian":
                            parameters[1].fill_(1.0)
                    for target, value in zip(parameters, teacher_parameters):
                        target[part] = value
        assert parameters is not None
        if kind != "categorical":
            return _TeacherCache(kind, keys, parameters, weights, slots)
        log_probabilities = [th.log_softmax(p, dim=-1) for p in parameters]
        probabilities = [p.exp() for p in log_probabilities]
        entropy = -sum(th.special.xlogy(p, p).sum(-1) for p in probabilities)
        modes = th.stack([p.argmax(-1) for p in parameters], dim=-1)
        return _TeacherCache(kind, keys, parameters, weights, slots, probabilities, entropy, modes)

    def _kickstart_term(
        self,
        coefficients: dict[int | None, float],
        rollout_data: Any,
        student_distribution: Distribution,
        sample_mask: th.Tensor | None = None,
    ) -> th.Tensor | None:
        """The kickstarting loss of one minibatch, to be added to the RL loss before ``backward()``.

        :param coefficients: from :meth:`_kickstart_begin`.
        :param rollout_data: the minibatch (observations; ``task_indices`` for many teachers;
            ``action_masks`` for maskable agents).
        :param student_distribution: the student's distribution on these observations (with grad).
        :param sample_mask: valid samples (recurrent padding); ``None``: all.
        :return: ``Σ_k λ_k Σ_{samples of task k} H_k / n_valid``, or ``None`` when no teacher has a
            positive coefficient (the update is then exactly the plain RL update).
        """
        active = {key: value for key, value in coefficients.items() if value > 0 and key in self._teachers}
        if not active:
            return None
        student_parameters = distribution_parameters(student_distribution)
        cache = getattr(self, "_teacher_cache", None)
        batch_inds = getattr(self, "_kickstart_batch_inds", None)
        if cache is not None and batch_inds is not None and sample_mask is None:
            rows = th.as_tensor(batch_inds, device=cache.weights.device)
            if cache.probabilities is not None and cache.modes is not None:
                # torch's Categorical keeps normalised logits: they are the student's log-probabilities.
                divergence = -sum(
                    (teacher[rows] * student).sum(-1)
                    for teacher, student in zip(cache.probabilities, student_parameters)
                )
                if self.kickstart_loss == "kl" and cache.entropy is not None:
                    divergence = divergence - cache.entropy[rows]
                with th.no_grad():
                    student_modes = th.stack([p.argmax(-1) for p in student_parameters], dim=-1)
                    agreement = (student_modes == cache.modes[rows]).all(-1)
            else:
                teacher_parameters = [p[rows] for p in cache.parameters]
                divergence = kickstart_divergence(
                    cache.kind, teacher_parameters, student_parameters, self.kickstart_loss
                )
                with th.no_grad():
                    agreement = teacher_agreement(cache.kind, teacher_parameters, student_parameters)
            weights = cache.weights[rows]
            with th.no_grad():
                self._accumulate_stats(cache.keys, cache.slots[rows], divergence.detach(), agreement)
            return (weights * divergence).sum() / divergence.shape[0]
        return self._kickstart_term_uncached(active, rollout_data, student_parameters, sample_mask)

    def _accumulate_stats(
        self, keys: list[int | None], slots: th.Tensor, divergence: th.Tensor, agreement: th.Tensor
    ) -> None:
        # A few tensor ops per minibatch and no host sync: the update stays as fast as plain PPO's.
        values = th.stack([divergence, agreement.to(divergence.dtype), th.ones_like(divergence)])
        sums = th.zeros((3, len(keys) + 1), dtype=divergence.dtype, device=divergence.device)
        sums.index_add_(1, slots, values)
        previous = getattr(self, "_kickstart_sums", None)
        if previous is not None and previous[0] == keys:
            sums = sums + previous[1]
        self._kickstart_sums = (keys, sums)

    def _kickstart_term_uncached(
        self,
        active: dict[int | None, float],
        rollout_data: Any,
        student_parameters: list[th.Tensor],
        sample_mask: th.Tensor | None,
    ) -> th.Tensor:
        # Teachers evaluated on this minibatch only: recurrent agents (padded sequences) and calls
        # outside train().
        kind = _kind(self.action_space)
        observations = rollout_data.observations
        action_masks = getattr(rollout_data, "action_masks", None)
        device = student_parameters[0].device
        batch = student_parameters[0].shape[0]
        valid = (
            th.ones(batch, dtype=th.bool, device=device) if sample_mask is None else sample_mask.reshape(-1)
        )
        n_valid = max(int(valid.sum().item()), 1)
        total = th.zeros((), device=device)
        keys = list(active)
        for slot, key in enumerate(keys):
            index = valid if key is None else valid & (rollout_data.task_indices.reshape(-1) == key)
            count = int(index.sum().item())
            if count == 0:
                continue
            with th.no_grad():
                teacher_parameters = distribution_parameters(
                    self._teachers[key].get_distribution(_index_observations(observations, index))
                )
                if action_masks is not None:
                    teacher_parameters = mask_parameters(teacher_parameters, action_masks[index])
            selected = [p[index] for p in student_parameters]
            divergence = kickstart_divergence(kind, teacher_parameters, selected, self.kickstart_loss)
            total = total + active[key] * divergence.sum() / n_valid
            with th.no_grad():
                agreement = teacher_agreement(kind, teacher_parameters, selected)
                slots = th.full((count,), slot, dtype=th.long, device=device)
                self._accumulate_stats(keys, slots, divergence.detach(), agreement)
        return total

    def _kickstart_log(self, coefficients: dict[int | None, float]) -> None:
        for key, value in coefficients.items():
            self.logger.record("train/kickstart_coef" + ("" if key is None else f"/task_{key}"), value)
        accumulated = getattr(self, "_kickstart_sums", None)
        if accumulated is None:
            return
        keys, sums = accumulated
        table = sums[:, : len(keys)].cpu().numpy()  # one device -> host copy per update
        for key, (divergence, agreement, count) in zip(keys, table.T):
            if count > 0 and key is not None:
                self.logger.record(f"train/kickstart_loss/task_{key}", float(divergence / count))
                self.logger.record(f"train/teacher_agreement/task_{key}", float(agreement / count))
        total = table.sum(axis=1)
        if total[2] > 0:
            self.logger.record("train/kickstart_loss", float(total[0] / total[2]))
            self.logger.record("train/teacher_agreement", float(total[1] / total[2]))
        self._kickstart_stats = {
            "train/kickstart_loss": float(total[0] / max(total[2], 1)),
            "train/teacher_agreement": float(total[1] / max(total[2], 1)),
        }

    def _student_distribution_fallback(self, rollout_data: Any) -> Distribution:
        # Only for custom policies that do not build their distribution through
        # _get_action_dist_from_latent: costs one more forward pass.
        action_masks = getattr(rollout_data, "action_masks", None)
        if action_masks is not None:
            return self.policy.get_distribution(rollout_data.observations, action_masks=action_masks)
        return self.policy.get_distribution(rollout_data.observations)

    def _evaluate_with_distribution(
        self, evaluate: Callable[[], tuple[th.Tensor, th.Tensor, th.Tensor | None]], need_distribution: bool
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None, Distribution | None]:
        """Run the policy's ``evaluate_actions`` and keep the distribution it built."""
        if not need_distribution:
            return (*evaluate(), None)
        with _capture_distributions(self.policy) as captured:
            values, log_prob, entropy = evaluate()
        return values, log_prob, entropy, (captured[-1] if captured else None)

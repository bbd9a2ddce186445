"""Algorithm Distillation: train a causal transformer on learning histories, act in context."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from zoo.envs.base import check_integer, check_real
from zoo.hub import trust
from zoo.hub.files import atomic_path, atomic_write_text, current_umask

from .dataset import HistoryDataset
from .model import (
    KV_CACHE_KINDS,
    KVCache,
    ModelConfig,
    RecomputeWindow,
    TransformerPolicy,
    check_architecture,
)

__all__ = ["AlgorithmDistillation", "InContextState"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


OBSERVATION_ENCODINGS = ("auto", "grid", "embedding")


def _grid_size(encoding: str, env_id: str, env_kwargs: dict[str, Any], observation: dict[str, Any]) -> int:
    """Side length of the grid for ``observation_encoding="grid"``/``"auto"``; 0 for a plain embedding."""
    if encoding == "embedding" or (encoding == "auto" and observation["kind"] != "discrete"):
        return 0
    from zoo.envs.base import GridWorldEnv

    try:
        env = gym.make(env_id, **env_kwargs)
    except gym.error.Error:  # not a registered id: no grid to read
        env = None
    if env is not None:
        env.close()
        if isinstance(env.unwrapped, GridWorldEnv):
            return env.unwrapped.size  # its observations are Discrete(size * size)
    if encoding == "grid":
        raise ValueError(
            f"observation_encoding='grid' needs a zoo grid world with observations row * size + col; "
            f"{env_id!r} is not one"
        )
    return 0


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class InContextState:
    """What :meth:`AlgorithmDistillation.predict` carries between calls (SB3's recurrent ``state``).

    Holds the cache of every history in the batch (a :class:`~zoo.agents.ad.model.KVCache` for
    ``kv_cache="banded"``, a :class:`~zoo.agents.ad.model.RecomputeWindow` for ``"recompute"``)
    and the actions last returned, which become the "previous action" of the next token.
    """

    cache: KVCache | RecomputeWindow
    last_actions: np.ndarray

    @property
    def batch_size(self) -> int:
        """Number of parallel histories."""
        return int(self.last_actions.shape[0])


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2))


class AlgorithmDistillation:
    """Algorithm Distillation (Laskin et al., ICLR 2023, https://arxiv.org/abs/2210.14215).

    A causal transformer (:class:`~zoo.agents.ad.model.TransformerPolicy`) learns to predict
    a source algorithm's next action from the preceding across-episode history; with frozen
    weights it then improves on unseen tasks purely in context.

    :param dataset: a dataset directory or a loaded :class:`HistoryDataset` (``None`` only
        for :meth:`load`).
    :param context_length: attention window ``c`` in steps; training samples random
        subsequences of ``c`` steps that cross episode boundaries.
    :param n_layers: transformer blocks.
    :param n_heads: attention heads.
    :param embed_dim: width of the residual stream.
    :param dropout: dropout on embeddings and residual branches.
    :param attention_dropout: dropout on attention weights.
    :param learning_rate: peak AdamW learning rate.
    :param weight_decay: AdamW weight decay.
    :param warmup_steps: linear warm-up steps (capped at 10% of the run), then cosine decay
        to ``min_lr_ratio * learning_rate`` at the last step.
    :param min_lr_ratio: final learning rate as a fraction of the peak.
    :param batch_size: subsequences per gradient step.
    :param max_grad_norm: gradient clipping norm.
    :param subsample: keep every ``subsample``-th episode of each history.
    :param observation_encoding: how discrete observations are embedded: ``"embedding"`` (one
        learned vector per observation), ``"grid"`` (row vector + column vector of the cell, for
        the zoo's grid worlds, whose observation is ``row * size + col``; this is what lets AD
        carry "go where the reward was" over to goal cells never rewarded in training) or
        ``"auto"`` (``"grid"`` for grid-world environments, else ``"embedding"``).
    :param episode_starts: mark the first step of every episode with a learned vector (see
        :class:`~zoo.agents.ad.model.ModelConfig`); :meth:`predict` then reads ``episode_start``.
        Needed where the start cell is random (Key-to-Door): the first token of an episode
        carries the previous episode's last reward, which the model must not take for its own.
    :param tensorboard_log: TensorBoard log directory, written through SB3's logger with SB3's
        keys: ``train/loss``, ``train/accuracy``, ``train/learning_rate``, ``train/n_updates``,
        ``time/time_elapsed`` and ``time/tokens_per_second``.
    :param checkpoint_dir: where resumable checkpoints go.
    :param checkpoint_every: gradient steps between checkpoints.
    :param seed: seed of parameters, sampling and dropout.
    :param device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
    :param verbose: 0 silent, 1 prints a line per checkpoint.
    """

    def __init__(
        self,
        dataset: str | os.PathLike[str] | HistoryDataset | None,
        context_length: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        embed_dim: int = 64,
        dropout: float = 0.1,
        attention_dropout: float = 0.5,
        learning_rate: float = 3e-4,
        weight_decay: float = 1e-4,
        warmup_steps: int = 500,
        min_lr_ratio: float = 0.1,
        batch_size: int = 64,
        max_grad_norm: float = 1.0,
        subsample: int = 1,
        observation_encoding: str = "auto",
        episode_starts: bool = False,
        tensorboard_log: str | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1000,
        seed: int | None = 0,
        device: str | torch.device = "auto",
        verbose: int = 0,
        _metadata: dict[str, Any] | None = None,
    ) -> None:
        # Everything is checked before the dataset is read, so a typo fails at once.
        check_architecture(
            context_length=context_length,
            n_layers=n_layers,
            n_heads=n_heads,
            embed_dim=embed_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
        )
        for name, value in (
            ("batch_size", batch_size),
            ("checkpoint_every", checkpoint_every),
            ("subsample", subsample),
        ):
            check_integer(name, value, 1)
        check_integer("warmup_steps", warmup_steps, 0)
        check_integer("verbose", verbose, 0)
        if seed is not None:
            check_integer("seed", seed, 0)
        if not isinstance(episode_starts, bool):
            raise ValueError(f"episode_starts={episode_starts!r} is not allowed; use True or False")
        if observation_encoding not in OBSERVATION_ENCODINGS:
            raise ValueError(
                f"observation_encoding={observation_encoding!r} is not allowed; use one of {OBSERVATION_ENCODINGS}"
            )
        learning_rate = check_real("learning_rate", learning_rate, 0.0, exclusive_minimum=True)
        weight_decay = check_real("weight_decay", weight_decay, 0.0)
        min_lr_ratio = check_real("min_lr_ratio", min_lr_ratio, 0.0, 1.0)
        max_grad_norm = check_real("max_grad_norm", max_grad_norm, 0.0, exclusive_minimum=True)
        self.context_length = context_length
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.batch_size = batch_size
        self.max_grad_norm = max_grad_norm
        self.subsample = subsample
        self.tensorboard_log = tensorboard_log
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self.seed = seed
        self.device = _resolve_device(device)
        self.verbose = verbose
        self.num_steps = 0

        if dataset is None:
            if _metadata is None:
                raise ValueError("dataset=None is only allowed through AlgorithmDistillation.load")
            self.dataset: HistoryDataset | None = None
            self.metadata = _metadata
        else:
            if not isinstance(dataset, HistoryDataset):
                dataset = HistoryDataset.load(dataset)
            if subsample > 1:
                dataset = dataset.subsample(subsample)
            self._check_dataset(dataset, context_length)
            self.dataset = dataset
            self.metadata = {
                "env_id": dataset.env_id,
                "env_kwargs": dataset.env_kwargs,
                "source": dataset.source,
                "observation_space": dataset.observation_space,
                "n_actions": dataset.n_actions,
                "max_episode_steps": dataset.manifest.get("max_episode_steps"),
            }
        observation = self.metadata["observation_space"]
        shape = tuple(observation["shape"])
        config = ModelConfig(
            observation_kind=observation["kind"],
            observation_shape=shape,
            n_observations=int(observation.get("n", 0)),
            n_actions=int(self.metadata["n_actions"]),
            context_length=context_length,
            n_layers=n_layers,
            n_heads=n_heads,
            embed_dim=embed_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            channels_last=not (len(shape) == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4)),
            grid_size=_grid_size(observation_encoding, self.env_id, self.env_kwargs, observation),
            episode_starts=episode_starts,
        )
        if seed is not None:
            torch.manual_seed(seed)
        self.policy = TransformerPolicy(config).to(self.device)
        self.rng = np.random.default_rng(seed)
        self.optimizer = self._make_optimizer()

    # -- properties --------------------------------------------------------------------------
    @property
    def env_id(self) -> str:
        """Environment the histories came from."""
        return str(self.metadata["env_id"])

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Environment constructor arguments of the histories."""
        return dict(self.metadata.get("env_kwargs", {}))

    @property
    def config(self) -> ModelConfig:
        """The model architecture."""
        return self.policy.config

    @staticmethod
    def _check_dataset(dataset: HistoryDataset, context_length: int) -> None:
        if len(dataset) == 0 or all(len(history) == 0 for history in dataset.histories):
            where = f" at {str(dataset.directory)!r}" if dataset.directory is not None else ""
            raise ValueError(f"dataset{where} is empty: it holds no learning history")
        shortest = min(len(history) for history in dataset.histories)
        if context_length > shortest:
            raise ValueError(
                f"context_length={context_length} is longer than the shortest history ({shortest} steps); "
                f"use context_length <= {shortest} or collect longer histories"
            )

    def _make_optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, parameter in self.policy.named_parameters():
            (decay if parameter.dim() >= 2 and "embedding" not in name else no_decay).append(parameter)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        fused = self.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=self.learning_rate, betas=(0.9, 0.99), fused=fused)

    def learning_rate_at(self, step: int, total_steps: int) -> float:
        """Warm-up then cosine decay.

        :param step: gradient step (0-based).
        :param total_steps: total gradient steps of the run.
        """
        warmup = min(self.warmup_steps, max(total_steps // 10, 0)) if total_steps > 0 else 0
        if step < warmup:
            return self.learning_rate * (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return self.learning_rate * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)

    # -- data ------------------------------------------------------------------------------------
    def sample_batch(self) -> dict[str, torch.Tensor]:
        """Random across-episode subsequences of ``context_length`` steps (tokens and targets)."""
        assert self.dataset is not None
        histories = self.dataset.histories
        length = self.context_length
        none_action = self.config.n_actions
        task_indices = self.rng.integers(len(histories), size=self.batch_size)
        observations, previous_actions, previous_rewards, targets, starts = [], [], [], [], []
        for task_index in task_indices:
            history = histories[task_index]
            start = int(self.rng.integers(len(history) - length + 1))
            if self.config.episode_starts:  # step t starts an episode when step t - 1 ended one
                ended = np.asarray(history.dones[max(start - 1, 0) : start + length - 1], dtype=bool)
                starts.append(np.concatenate(([True], ended)) if start == 0 else ended)
            observations.append(np.asarray(history.observations[start : start + length]))
            targets.append(np.asarray(history.actions[start : start + length]))
            if start == 0:
                actions = np.concatenate(([none_action], history.actions[: length - 1]))
                rewards = np.concatenate(([0.0], history.rewards[: length - 1]))
            else:
                actions = history.actions[start - 1 : start + length - 1]
                rewards = history.rewards[start - 1 : start + length - 1]
            previous_actions.append(np.asarray(actions, dtype=np.int64))
            previous_rewards.append(np.asarray(rewards, dtype=np.float32))
        device = self.device
        batch = {
            "observations": torch.from_numpy(np.stack(observations)).to(device),
            "previous_actions": torch.from_numpy(np.stack(previous_actions)).to(device),
            "previous_rewards": torch.from_numpy(np.stack(previous_rewards)).to(device),
            "targets": torch.from_numpy(np.stack(targets).astype(np.int64)).to(device),
        }
        if starts:
            batch["episode_starts"] = torch.from_numpy(np.stack(starts)).to(device)
        return batch

    # -- training ----------------------------------------------------------------------------------
    def learn(
        self, steps: int, progress_bar: bool = False, resume: bool = False, log_interval: int = 1
    ) -> AlgorithmDistillation:
        """Train for ``steps`` gradient steps in total (counting steps done before a resume).

        :param steps: total gradient steps.
        :param progress_bar: show SB3's rich progress bar (``tqdm.rich``, as
            ``stable_baselines3.common.callbacks.ProgressBarCallback``) with the loss and accuracy.
        :param resume: continue from the last checkpoint in ``checkpoint_dir`` (if any).
        :param log_interval: gradient steps between two writes of the TensorBoard log (loss and
            accuracy are averaged over them, as SB3's ``record_mean``); the last step is always written.
        """
        if self.dataset is None:
            raise ValueError("this model has no dataset (it was loaded); create one with a dataset to train")
        if steps < 0:
            raise ValueError(f"steps={steps!r} must be >= 0")
        if resume:
            if self.checkpoint_dir is None:
                raise ValueError("resume=True needs checkpoint_dir")
            self._load_checkpoint()
        check_integer("log_interval", log_interval, 1)
        logger = None
        if self.tensorboard_log is not None:
            from stable_baselines3.common.logger import configure

            logger = configure(str(self.tensorboard_log), ["tensorboard"])
        bar = None
        if progress_bar:
            import warnings

            from tqdm import TqdmExperimentalWarning
            from tqdm.rich import tqdm

            with warnings.catch_warnings():  # tqdm.rich warns that it is experimental on every bar
                warnings.simplefilter("ignore", TqdmExperimentalWarning)
                bar = tqdm(total=steps, initial=self.num_steps, desc="AD", unit="step")
        autocast = self.device.type == "cuda"
        self.policy.train()
        tokens = 0
        started = time.perf_counter()
        try:
            while self.num_steps < steps:
                lr = self.learning_rate_at(self.num_steps, steps)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                batch = self.sample_batch()
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
                    logits = self.policy(
                        batch["observations"],
                        batch["previous_actions"],
                        batch["previous_rewards"],
                        episode_starts=batch.get("episode_starts"),
                    )
                loss = F.cross_entropy(
                    logits.float().reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1)
                )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.optimizer.step()
                self.num_steps += 1
                tokens += batch["targets"].numel()
                if logger is not None or bar is not None:
                    accuracy = (logits.argmax(-1) == batch["targets"]).float().mean().item()
                    if logger is not None:
                        logger.record_mean("train/loss", loss.item())
                        logger.record_mean("train/accuracy", accuracy)
                        if self.num_steps % log_interval == 0 or self.num_steps == steps:
                            elapsed = max(time.perf_counter() - started, 1e-9)
                            logger.record("train/learning_rate", lr)
                            logger.record("train/n_updates", self.num_steps)
                            logger.record("time/time_elapsed", int(elapsed))
                            logger.record("time/tokens_per_second", tokens / elapsed)
                            logger.dump(self.num_steps)
                    if bar is not None:
                        bar.update(1)
                        bar.set_description(
                            f"AD loss {loss.item():.3f} accuracy {accuracy:.2f}", refresh=False
                        )
                if self.checkpoint_dir is not None and (
                    self.num_steps % self.checkpoint_every == 0 or self.num_steps == steps
                ):
                    self._save_checkpoint()
        finally:
            if bar is not None:
                bar.refresh()
                bar.close()
            if logger is not None:
                logger.dump(self.num_steps)  # what an interrupted run recorded since the last write
                logger.close()
        self.tokens_per_second = tokens / max(time.perf_counter() - started, 1e-9)
        self.policy.eval()
        return self

    # -- checkpoints ---------------------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        assert self.checkpoint_dir is not None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        name = f"step_{self.num_steps:09d}"
        temporary = Path(tempfile.mkdtemp(dir=self.checkpoint_dir, prefix=f".{name}."))
        temporary.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700; the folder follows the umask
        tensors = {
            f"model.{key}": value.detach().cpu().contiguous()
            for key, value in self.policy.state_dict().items()
        }
        optimizer_state = self.optimizer.state_dict()
        for index, state in optimizer_state["state"].items():
            for key, value in state.items():
                tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        with atomic_path(temporary / "state.safetensors") as weights:  # safetensors alone writes 0600
            save_file(tensors, str(weights))
        groups = [
            {key: value for key, value in group.items() if key != "params"}
            for group in optimizer_state["param_groups"]
        ]
        _atomic_json(
            temporary / "state.json",
            {"num_steps": self.num_steps, "numpy_rng": self.rng.bit_generator.state, "param_groups": groups},
        )
        final = self.checkpoint_dir / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        _atomic_json(self.checkpoint_dir / "latest.json", {"checkpoint": name, "num_steps": self.num_steps})
        for old in self.checkpoint_dir.glob("step_*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        if self.verbose:
            print(f"AD checkpoint at step {self.num_steps}: {final}")

    def _load_checkpoint(self) -> None:
        assert self.checkpoint_dir is not None
        pointer = self.checkpoint_dir / "latest.json"
        if not pointer.exists():
            return
        # A checkpoint is the caller's own folder, but a crash or a disk error can leave it
        # corrupt: every file is read through the trust boundary, so the error names it.
        latest = trust.read_json_object(pointer)
        directory = trust.contained_file(
            self.checkpoint_dir, latest.get("checkpoint"), path=pointer, field_name="checkpoint"
        )
        weights, state_file = directory / "state.safetensors", directory / "state.json"
        trust.safetensors_header(weights)
        try:
            tensors = load_file(str(weights))
        except Exception as error:  # safetensors' own SafetensorError
            raise trust.UntrustedFileError(weights, f"cannot be read: {error}") from error
        state = trust.read_json_object(state_file)
        try:
            self._restore_checkpoint(tensors, state)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as error:
            if isinstance(error, trust.UntrustedFileError):
                raise
            raise trust.UntrustedFileError(
                directory, f"is not a checkpoint of this model ({type(error).__name__}: {error})"
            ) from error

    def _restore_checkpoint(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        model_state = {
            key[len("model.") :]: value for key, value in tensors.items() if key.startswith("model.")
        }
        self.policy.load_state_dict(model_state)
        optimizer_state: dict[str, Any] = {"state": {}, "param_groups": []}
        current_groups = self.optimizer.state_dict()["param_groups"]
        for group, saved in zip(current_groups, state["param_groups"]):
            optimizer_state["param_groups"].append({**saved, "params": group["params"]})
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, field = key.split(".", 2)
                optimizer_state["state"].setdefault(int(index), {})[field] = (
                    value.to(self.device) if field != "step" else value
                )
        self.optimizer.load_state_dict(optimizer_state)
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.num_steps = int(state["num_steps"])

    # -- acting ----------------------------------------------------------------------------------------
    def _observation_tensor(self, observation: Any) -> tuple[torch.Tensor, bool]:
        array = np.asarray(observation)
        shape = self.config.observation_shape
        single = array.ndim == len(shape)
        if single:
            array = array[None]
        if array.shape[1:] != shape:
            raise ValueError(
                f"observation has shape {np.asarray(observation).shape}; expected {shape} or (batch, *{shape})"
            )
        if self.config.observation_kind == "discrete":
            # Out-of-range indices would fail deep inside the embedding (or, on CUDA, as a device
            # assert); floats would be truncated silently.
            n = self.config.n_observations
            allowed = f"the observations of {self.env_id!r} are integers in [0, {n - 1}]"
            if array.dtype.kind not in "iu":
                raise ValueError(f"observation has dtype {array.dtype}; {allowed}")
            outside = array[(array < 0) | (array >= n)]
            if outside.size:
                raise ValueError(f"observation={int(outside[0])} is out of range; {allowed}")
            return torch.as_tensor(array.astype(np.int64), device=self.device), single
        if array.dtype.kind not in "iuf" or (array.dtype.kind == "f" and not np.isfinite(array).all()):
            raise ValueError(
                f"observation has dtype {array.dtype} or non-finite values; expected finite numbers "
                f"of shape {shape} or (batch, *{shape})"
            )
        if self.config.observation_kind == "image":
            return torch.as_tensor(array, device=self.device), single
        return torch.as_tensor(array.astype(np.float32), device=self.device), single

    def _choose(
        self, logits: torch.Tensor, deterministic: bool, temperature: float, generator: torch.Generator | None
    ) -> torch.Tensor:
        if deterministic:
            return logits.argmax(-1)
        probabilities = torch.softmax(logits.float() / temperature, dim=-1)
        return torch.multinomial(probabilities, 1, generator=generator)[:, 0]

    @torch.no_grad()
    def predict(
        self,
        observation: Any,
        state: InContextState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        reward: np.ndarray | float | None = None,
        temperature: float = 1.0,
        kv_cache: str = "banded",
    ) -> tuple[np.ndarray, InContextState]:
        """Choose actions in context, one O(context) step per call (SB3's recurrent style).

        The history is *not* cut at episode boundaries - improving across episodes is the
        point of AD - so pass ``state=None`` to start a new task. ``episode_start`` (what SB3's
        ``evaluate_policy`` passes) marks the calls that begin an episode: a model trained with
        ``episode_starts=True`` needs it on every call after the first; other models ignore it.
        Each call after the first needs ``reward``: the rewards the previously returned actions
        earned.

        :param observation: one observation or a batch ``(batch, *observation_shape)``.
        :param state: the state returned by the previous call, or None to start fresh.
        :param episode_start: one boolean, or one per history: True where this observation is
            the first of an episode (the first call of a state always is).
        :param deterministic: take the most likely action instead of sampling.
        :param reward: reward(s) of the previous actions (required when ``state`` is given).
        :param temperature: sampling temperature (> 0).
        :param kv_cache: ``"banded"`` (the sliding-window KV cache, O(c) per step) or
            ``"recompute"`` (a fresh forward over the last ``c`` steps each call, exactly the
            trained function; O(c²) per step); see :meth:`TransformerPolicy.empty_cache`. A
            state keeps the kind it was started with.
        :return: the actions and the new state.
        """
        check_real("temperature", temperature, 0.0, exclusive_minimum=True)
        if kv_cache not in KV_CACHE_KINDS:
            raise ValueError(f"kv_cache={kv_cache!r} is not allowed; use one of {KV_CACHE_KINDS}")
        if state is not None and not isinstance(state, InContextState):
            raise ValueError(
                f"state={type(state).__name__} is not allowed; pass None or the state a previous predict returned"
            )
        if state is not None and isinstance(state.cache, RecomputeWindow) != (kv_cache == "recompute"):
            started = "recompute" if isinstance(state.cache, RecomputeWindow) else "banded"
            raise ValueError(
                f"kv_cache={kv_cache!r} does not match the state, which was started with kv_cache={started!r}; "
                "pass the same kv_cache on every call of one history"
            )
        self.policy.eval()
        observations, single = self._observation_tensor(observation)
        batch = observations.shape[0]
        starts = np.ones(batch, dtype=bool)
        if state is None:
            state = InContextState(
                self.policy.empty_cache(batch, kind=kv_cache),
                np.full(batch, self.config.n_actions, dtype=np.int64),
            )
            previous_rewards = np.zeros(batch, dtype=np.float32)
        else:
            if self.config.episode_starts:
                starts = self._episode_starts(episode_start, batch)
            if state.batch_size != batch:
                raise ValueError(
                    f"observation batch {batch} does not match the state's batch {state.batch_size}"
                )
            if reward is None:
                raise ValueError("reward=None: pass the rewards of the previous actions when state is given")
            rewards = np.asarray(reward)
            if rewards.dtype.kind not in "biuf" or rewards.shape not in ((), (batch,), (1,)):
                raise ValueError(
                    f"reward={reward!r} is not allowed; give one number, or one per history (shape ({batch},))"
                )
            previous_rewards = np.broadcast_to(rewards.astype(np.float32), (batch,))
        logits = self.policy.step(
            state.cache,
            observations,
            torch.as_tensor(state.last_actions, device=self.device),
            torch.as_tensor(np.array(previous_rewards), device=self.device),
            episode_starts=torch.as_tensor(starts, device=self.device),
        )
        actions = self._choose(logits, deterministic, temperature, None).cpu().numpy()
        state.last_actions = actions.astype(np.int64)
        return (actions[0] if single else actions), state

    @staticmethod
    def _episode_starts(episode_start: Any, batch: int) -> np.ndarray:
        if episode_start is None:
            raise ValueError(
                "episode_start=None: this model marks the first step of every episode "
                "(episode_starts=True); pass episode_start with every call, as evaluate_policy does"
            )
        starts = np.asarray(episode_start)
        if starts.dtype.kind not in "biu" or starts.shape not in ((), (batch,), (1,)):
            raise ValueError(
                f"episode_start={episode_start!r} is not allowed; give one boolean, or one per history "
                f"(shape ({batch},))"
            )
        return np.broadcast_to(starts.astype(bool), (batch,)).copy()

    # -- persistence -----------------------------------------------------------------------------------
    def _hyperparameters(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "warmup_steps": self.warmup_steps,
            "min_lr_ratio": self.min_lr_ratio,
            "batch_size": self.batch_size,
            "max_grad_norm": self.max_grad_norm,
            "subsample": self.subsample,
            "seed": self.seed,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``path/model.safetensors`` and ``path/config.json`` (no pickle).

        Each file is written to a temporary name in ``path`` and renamed into place; other files
        in ``path`` (checkpoints, TensorBoard logs) are left alone.

        :param path: target directory (created if missing).
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().cpu().contiguous() for key, value in self.policy.state_dict().items()}
        with atomic_path(path / WEIGHTS_NAME) as temporary:
            save_file(state, str(temporary))
        config = {
            "algorithm": "AlgorithmDistillation",
            "model": self.config.to_dict(),
            "metadata": self.metadata,
            "hyperparameters": self._hyperparameters(),
            "num_steps": self.num_steps,
        }
        _atomic_json(path / CONFIG_NAME, config)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "auto") -> AlgorithmDistillation:
        """Load a model written by :meth:`save`, ready for :meth:`predict`.

        :param path: the directory.
        :param device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        """
        path = Path(path)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).exists():
                raise ValueError(f"path={str(path)!r} has no {name}; not a saved AlgorithmDistillation model")
        # Every field passes the trust boundary: the env id is registered (no module: part), the
        # architecture bounded, and the network built on the meta device and compared with the
        # safetensors header before it is allocated. ``seed`` is restored as a value only: loading
        # never reseeds the process's random generators.
        config_path = path / CONFIG_NAME
        config = trust.ad_config(config_path, root=path)
        model = config["model"]
        hyperparameters = dict(config["hyperparameters"])
        saved_seed = hyperparameters.pop("seed", None)

        def build(build_device: str | torch.device) -> AlgorithmDistillation:
            return cls(
                None,
                context_length=model.get("context_length", 128),
                n_layers=model.get("n_layers", 4),
                n_heads=model.get("n_heads", 4),
                embed_dim=model.get("embed_dim", 64),
                dropout=model.get("dropout", 0.1),
                attention_dropout=model.get("attention_dropout", 0.5),
                observation_encoding="grid" if model.get("grid_size") else "embedding",
                episode_starts=model.get("episode_starts", False),
                device=build_device,
                seed=None,
                _metadata=config["metadata"],
                **hyperparameters,
            )

        def planned_shapes() -> dict[str, tuple[int, ...]]:
            planned = build("cpu")
            saved = {**planned.config.to_dict(), **model}
            if saved != planned.config.to_dict():
                differing = sorted(key for key in saved if saved[key] != planned.config.to_dict()[key])
                raise trust.UntrustedFileError(
                    config_path,
                    f"the architecture disagrees with the metadata (fields {differing})",
                    field=f"model.{differing[0]}",
                )
            return trust.state_shapes(planned.policy)

        shapes = trust.shapes_without_allocating(planned_shapes, path=config_path, what="model")
        trust.check_safetensors_shapes(path / WEIGHTS_NAME, shapes, root=path)
        try:
            agent = build(device)
        except ValueError as error:
            raise trust.UntrustedFileError(
                config_path, f"describes a model that cannot be built: {error}"
            ) from error
        agent.seed = saved_seed
        tensors = trust.load_safetensors(path / WEIGHTS_NAME, shapes, device=str(agent.device), root=path)
        agent.policy.load_state_dict(tensors)
        agent.policy.eval()
        agent.num_steps = config["num_steps"]
        return agent

"""The causal transformer of Algorithm Distillation, with a sliding-window KV cache.

Token layout: one token per environment step. The token of step ``t`` embeds
``(o_t, a_{t-1}, r_{t-1})`` - the observation the action is chosen at, and the action and
reward of the step before (a learned "no action" index and reward 0 at the first step of a
history) - and the model predicts ``a_t`` from that token and the tokens before it. Why one
token and not three tokens ``o, a, r`` per step:

* a context of ``c`` steps costs ``c`` tokens instead of ``3c``, so attention is 9x cheaper
  and the same memory holds three times as many episodes - AD needs several whole episodes in
  context to improve across them;
* every token is a decision point, so every position gives a training target (with separate
  tokens only one in three would);
* the reward of an action is only known after it is taken, so pairing ``o_t`` with
  ``(a_{t-1}, r_{t-1})`` is exactly the information available when ``a_t`` is chosen; the
  previous reward crosses episode boundaries, which is how a bandit (one-step episodes) learns.

With ``episode_starts=True`` the first token of every episode also carries a learned "new
episode" vector: its ``(a_{t-1}, r_{t-1})`` are the last of the previous episode, and without
the mark a model on a task with a random start cannot tell them from this episode's own.

Positions are relative: rotary embeddings (RoPE) rotate queries and keys by their absolute
position, and ``q_i . k_j`` then depends on ``i - j`` only. Keys are cached already rotated,
so a cached token never has to be re-encoded when the window slides.

Exactness of the cache. Attention is *banded*: token ``i`` sees tokens ``j`` with
``i - c < j <= i`` (``c`` = ``context_length``). Stepping with the ring-buffer KV cache
computes exactly :meth:`TransformerPolicy.forward` over the whole history with that
band (tested step for step, also after the window slides). With one layer this is also
exactly a full recompute over only the last ``c`` tokens (RoPE is shift-invariant); with
several layers a cached key of layer 2 summarises tokens older than the window, as in any
sliding-window transformer (Mistral), so there the cached path is the banded model, not a
recompute over the last ``c`` tokens. Training uses sequences of ``c`` steps, where the band
and a plain causal mask coincide. :class:`RecomputeWindow` (``kv_cache="recompute"``) is the
other choice: it keeps the last ``c`` raw tokens and runs a fresh forward over them at every
step, which is exactly the trained function at any depth, at O(c²) per step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.envs.base import check_integer, check_real

__all__ = [
    "KV_CACHE_KINDS",
    "KVCache",
    "ModelConfig",
    "RecomputeWindow",
    "TransformerPolicy",
    "check_architecture",
]

#: How in-context steps attend to the past (see :meth:`TransformerPolicy.empty_cache`).
KV_CACHE_KINDS = ("banded", "recompute")


def check_architecture(
    context_length: Any,
    n_layers: Any,
    n_heads: Any,
    embed_dim: Any,
    dropout: Any,
    attention_dropout: Any,
) -> None:
    """Raise ``ValueError`` naming the argument unless the transformer's sizes are usable.

    Shared by :meth:`ModelConfig.validate` and the constructor of
    :class:`~zoo.agents.ad.AlgorithmDistillation`, which checks before it loads a dataset.
    """
    check_integer("context_length", context_length, 1)
    check_integer("n_layers", n_layers, 1)
    check_integer("n_heads", n_heads, 1)
    check_integer("embed_dim", embed_dim, 2)
    if embed_dim % n_heads != 0 or (embed_dim // n_heads) % 2 != 0:
        raise ValueError(
            f"embed_dim={embed_dim!r} is not allowed with n_heads={n_heads!r}: embed_dim must split "
            "into n_heads heads of even width (RoPE rotates pairs), i.e. be a multiple of 2 * n_heads"
        )
    check_real("dropout", dropout, 0.0, 1.0, exclusive_maximum=True)
    check_real("attention_dropout", attention_dropout, 0.0, 1.0, exclusive_maximum=True)


@dataclass
class ModelConfig:
    """Architecture of :class:`TransformerPolicy` (serialised to ``config.json``)."""

    #: ``"discrete"`` (integer observations), ``"box"`` (flat float vectors) or ``"image"``.
    observation_kind: str
    #: Observation shape per step (``()`` for discrete); images are ``(H, W, C)`` or ``(C, H, W)``.
    observation_shape: tuple[int, ...]
    #: Number of discrete observations (discrete kind only).
    n_observations: int
    #: Number of discrete actions.
    n_actions: int
    #: Attention window in steps (= tokens).
    context_length: int = 128
    #: Transformer blocks.
    n_layers: int = 4
    #: Attention heads.
    n_heads: int = 4
    #: Width of the residual stream.
    embed_dim: int = 64
    #: Dropout on embeddings, residual branches and the MLP.
    dropout: float = 0.1
    #: Dropout on attention weights.
    attention_dropout: float = 0.5
    #: RoPE base wavelength.
    rope_base: float = 10000.0
    #: Channels-last images (``True`` for ``(H, W, C)``).
    channels_last: bool = field(default=True)
    #: Discrete observations that index the cells of a square grid (``row * grid_size + col``,
    #: the zoo's grid worlds): embed the row and the column separately and add them. ``0``: one
    #: learned vector per observation index.
    grid_size: int = 0
    #: Mark the first step of every episode: a learned vector is added to that token. Off, the
    #: model sees episode boundaries only through the observations (a fixed start cell); on, it
    #: can tell the last reward of the previous episode (carried by the first token of the next)
    #: from a reward earned in this one, which a task with a random start needs (Key-to-Door).
    episode_starts: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field on an invalid or inconsistent configuration."""
        if self.observation_kind not in ("discrete", "box", "image"):
            raise ValueError(
                f"observation_kind={self.observation_kind!r} is not allowed; use 'discrete', 'box' or 'image'"
            )
        check_integer("n_observations", self.n_observations, 1 if self.observation_kind == "discrete" else 0)
        check_integer("n_actions", self.n_actions, 1)
        check_integer("grid_size", self.grid_size, 0)
        if not isinstance(self.episode_starts, bool):
            raise ValueError(f"episode_starts={self.episode_starts!r} is not allowed; use True or False")
        check_real("rope_base", self.rope_base, 0.0, exclusive_minimum=True)
        check_architecture(
            context_length=self.context_length,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            embed_dim=self.embed_dim,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
        )
        if self.grid_size and (
            self.observation_kind != "discrete" or self.grid_size**2 != self.n_observations
        ):
            raise ValueError(
                f"grid_size={self.grid_size} needs discrete observations numbering grid_size**2 "
                f"(got observation_kind={self.observation_kind!r}, n_observations={self.n_observations})"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary."""
        data = asdict(self)
        data["observation_shape"] = list(self.observation_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`.

        :param data: a dictionary written by :meth:`to_dict`.
        """
        data = dict(data)
        data["observation_shape"] = tuple(data["observation_shape"])
        return cls(**data)


_MISSING_STARTS = (
    "episode_starts=None: this model marks the first step of every episode "
    "(episode_starts=True); pass one boolean per step"
)


def _rope_angles(
    positions: torch.Tensor, head_dim: int, base: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of RoPE for integer ``positions`` (any shape) -> ``(*shape, head_dim // 2)``.

    Angles are formed in float64 and reduced modulo 2 pi before the cast, so that long
    evaluations (positions of 10^5 and more) lose no precision.
    """
    inverse_frequency = base ** (
        -torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device) / head_dim
    )
    angles = positions.to(torch.float64)[..., None] * inverse_frequency
    angles = torch.remainder(angles, 2 * math.pi)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs ``(x[..., i], x[..., i + d/2])`` of ``x`` (``..., T, d``) by the given angles."""
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)


@dataclass
class KVCache:
    """Per-layer ring buffers of rotated keys and values for ``batch`` parallel histories.

    Slot ``p % context_length`` holds the token at absolute position ``p``; attention over a
    set of keys is order-free once positions are baked in by RoPE, so no shifting is needed.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    #: Number of tokens each history has written so far, shape ``(batch,)``, int64.
    positions: torch.Tensor

    @classmethod
    def empty(cls, config: ModelConfig, batch: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        """An empty cache.

        :param config: model configuration.
        :param batch: number of parallel histories.
        :param device: torch device.
        :param dtype: dtype of the cached keys and values.
        """
        head_dim = config.embed_dim // config.n_heads
        shape = (batch, config.n_heads, config.context_length, head_dim)
        return cls(
            keys=[torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)],
            values=[torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)],
            positions=torch.zeros(batch, dtype=torch.long, device=device),
        )


@dataclass
class RecomputeWindow:
    """The raw tokens of the last ``context_length`` steps of ``batch`` histories (``kv_cache="recompute"``).

    Each step runs a fresh forward pass over the window, so the action is chosen by exactly the
    function that was trained (sequences of at most ``context_length`` steps, causal mask). Cost
    per step: a forward over ``c`` tokens instead of one token against cached keys.
    """

    observations: torch.Tensor
    previous_actions: torch.Tensor
    previous_rewards: torch.Tensor
    #: Whether each kept step is the first of its episode, ``(batch, context_length)`` booleans.
    episode_starts: torch.Tensor
    #: Number of tokens each history has written so far, shape ``(batch,)``, int64.
    positions: torch.Tensor

    @classmethod
    def empty(
        cls, config: ModelConfig, batch: int, device: torch.device, observation_dtype: torch.dtype
    ) -> RecomputeWindow:
        """An empty window.

        :param config: model configuration.
        :param batch: number of parallel histories.
        :param device: torch device.
        :param observation_dtype: dtype observations are stored in (integers for discrete ones).
        """
        window = config.context_length
        return cls(
            observations=torch.zeros(
                (batch, window, *config.observation_shape), device=device, dtype=observation_dtype
            ),
            previous_actions=torch.zeros((batch, window), dtype=torch.long, device=device),
            previous_rewards=torch.zeros((batch, window), device=device),
            episode_starts=torch.zeros((batch, window), dtype=torch.bool, device=device),
            positions=torch.zeros(batch, dtype=torch.long, device=device),
        )


class _CNNEncoder(nn.Module):
    """Small convolutional encoder for pixel observations (Watermaze)."""

    def __init__(self, shape: tuple[int, ...], channels_last: bool, embed_dim: int) -> None:
        super().__init__()
        self.channels_last = channels_last
        channels = shape[-1] if channels_last else shape[0]
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            probe = torch.zeros(1, *shape)
            flat = self.convs(self._to_nchw(probe)).shape[-1]
        self.project = nn.Linear(flat, embed_dim)

    def _to_nchw(self, images: torch.Tensor) -> torch.Tensor:
        return images.permute(0, 3, 1, 2) if self.channels_last else images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode ``(N, *shape)`` images (uint8 0..255 or float) -> ``(N, embed_dim)``."""
        images = images.float() / 255.0
        return self.project(self.convs(self._to_nchw(images)))


class _GridEmbedding(nn.Module):
    """Embedding of a grid cell index ``row * size + col`` as ``row_vector + column_vector``.

    A goal cell never rewarded in training (a held-out Dark Room goal) still shares its row
    and its column with rewarded training goals, so "go where the reward was" carries over to
    it; a table with one free vector per cell gives such a cell no trained meaning as a goal.
    """

    def __init__(self, size: int, embed_dim: int) -> None:
        super().__init__()
        self.size = size
        self.rows = nn.Embedding(size, embed_dim)
        self.columns = nn.Embedding(size, embed_dim)

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        """Embed integer cell indices (any shape) -> ``(*shape, embed_dim)``."""
        return self.rows(torch.div(cells, self.size, rounding_mode="floor")) + self.columns(cells % self.size)


class _Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.embed_dim // config.n_heads
        self.attention_dropout = config.attention_dropout
        self.norm_attention = nn.LayerNorm(config.embed_dim)
        self.qkv = nn.Linear(config.embed_dim, 3 * config.embed_dim)
        self.out = nn.Linear(config.embed_dim, config.embed_dim)
        self.norm_mlp = nn.LayerNorm(config.embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(config.embed_dim, 4 * config.embed_dim),
            nn.GELU(),
            nn.Linear(4 * config.embed_dim, config.embed_dim),
        )
        self.residual_dropout = nn.Dropout(config.dropout)

    def _heads(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return _apply_rope(q, cos, sin), _apply_rope(k, cos, sin), v

    def _finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        batch, _, length, _ = attended.shape
        attended = attended.transpose(1, 2).reshape(batch, length, -1)
        x = x + self.residual_dropout(self.out(attended))
        return x + self.residual_dropout(self.mlp(self.norm_mlp(x)))

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        q, k, v = self._heads(self.norm_attention(x), cos, sin)
        dropout = self.attention_dropout if self.training else 0.0
        if mask is None:
            attended = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self._finish(x, attended)

    def step(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache_keys: torch.Tensor,
        cache_values: torch.Tensor,
        slots: torch.Tensor,
        valid: torch.Tensor,
        active: torch.Tensor,
    ) -> torch.Tensor:
        """One new token per history; writes its key/value into the ring buffer where ``active``."""
        q, k, v = self._heads(self.norm_attention(x), cos, sin)
        rows = torch.arange(x.shape[0], device=x.device)
        keep = active[:, None, None]
        cache_keys[rows, :, slots] = torch.where(
            keep, k[:, :, 0].to(cache_keys.dtype), cache_keys[rows, :, slots]
        )
        cache_values[rows, :, slots] = torch.where(
            keep, v[:, :, 0].to(cache_values.dtype), cache_values[rows, :, slots]
        )
        mask = valid[:, None, None, :]
        attended = F.scaled_dot_product_attention(
            q, cache_keys.to(q.dtype), cache_values.to(q.dtype), attn_mask=mask
        )
        return self._finish(x, attended)


class TransformerPolicy(nn.Module):
    """Causal transformer mapping histories of ``(o_t, a_{t-1}, r_{t-1})`` tokens to logits of ``a_t``.

    :param config: the architecture (see :class:`ModelConfig`).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        width = config.embed_dim
        if config.observation_kind == "discrete" and config.grid_size:
            self.observation_encoder: nn.Module = _GridEmbedding(config.grid_size, width)
        elif config.observation_kind == "discrete":
            self.observation_encoder = nn.Embedding(config.n_observations, width)
        elif config.observation_kind == "box":
            self.observation_encoder = nn.Linear(int(math.prod(config.observation_shape)), width)
        else:
            self.observation_encoder = _CNNEncoder(config.observation_shape, config.channels_last, width)
        # Index n_actions means "no previous action" (first step of a history).
        self.action_embedding = nn.Embedding(config.n_actions + 1, width)
        self.reward_embedding = nn.Linear(1, width)
        self.token_projection = nn.Linear(3 * width, width)
        if config.episode_starts:
            self.episode_start_embedding = nn.Parameter(0.02 * torch.randn(width))
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, config.n_actions)

    def _encode_observations(self, observations: torch.Tensor) -> torch.Tensor:
        leading = observations.shape[: observations.dim() - len(self.config.observation_shape)]
        flat = observations.reshape(-1, *self.config.observation_shape)
        if self.config.observation_kind == "discrete":
            encoded = self.observation_encoder(flat.long())
        elif self.config.observation_kind == "box":
            encoded = self.observation_encoder(flat.float().reshape(flat.shape[0], -1))
        else:
            encoded = self.observation_encoder(flat)
        return encoded.reshape(*leading, -1)

    def embed(
        self,
        observations: torch.Tensor,
        previous_actions: torch.Tensor,
        previous_rewards: torch.Tensor,
        episode_starts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings, shape ``(*leading, embed_dim)``.

        :param observations: ``(*leading, *observation_shape)``.
        :param previous_actions: ``(*leading,)`` integers in ``[0, n_actions]``.
        :param previous_rewards: ``(*leading,)`` floats.
        :param episode_starts: ``(*leading,)`` booleans, True on the first step of an episode;
            required by a model with ``episode_starts=True``, ignored by one without.
        """
        parts = (
            self._encode_observations(observations),
            self.action_embedding(previous_actions.long()),
            self.reward_embedding(previous_rewards.float()[..., None]),
        )
        tokens = self.token_projection(torch.cat(parts, dim=-1))
        if self.config.episode_starts:
            if episode_starts is None:
                raise ValueError(_MISSING_STARTS)
            tokens = tokens + episode_starts.to(tokens.dtype)[..., None] * self.episode_start_embedding
        return self.embedding_dropout(tokens)

    def forward(
        self,
        observations: torch.Tensor,
        previous_actions: torch.Tensor,
        previous_rewards: torch.Tensor,
        start_position: int = 0,
        episode_starts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Action logits for every step of ``(batch, length)`` histories, band-masked to ``context_length``.

        :param observations: ``(batch, length, *observation_shape)``.
        :param previous_actions: ``(batch, length)``.
        :param previous_rewards: ``(batch, length)``.
        :param start_position: absolute position of the first token (any value gives the same
            result: positions are relative).
        :param episode_starts: ``(batch, length)`` booleans (see :meth:`embed`).
        :return: logits ``(batch, length, n_actions)``.
        """
        x = self.embed(observations, previous_actions, previous_rewards, episode_starts)
        length = x.shape[1]
        positions = torch.arange(start_position, start_position + length, device=x.device)
        cos, sin = _rope_angles(
            positions, self.config.embed_dim // self.config.n_heads, self.config.rope_base, x.dtype
        )
        mask = None
        if length > self.config.context_length:
            rows = torch.arange(length, device=x.device)
            offset = rows[:, None] - rows[None, :]
            mask = (offset >= 0) & (offset < self.config.context_length)
        for block in self.blocks:
            x = block(x, cos, sin, mask)
        return self.head(self.final_norm(x))

    def empty_cache(
        self, batch: int, dtype: torch.dtype | None = None, kind: str = "banded"
    ) -> KVCache | RecomputeWindow:
        """A fresh cache for ``batch`` histories on this model's device.

        :param batch: number of parallel histories.
        :param dtype: cache dtype (default: the parameters' dtype); for ``"recompute"`` the
            dtype observations are kept in (default: int64 for discrete observations, else float32).
        :param kind: ``"banded"``: the ring-buffer KV cache, O(c) per step; every layer attends
            to its last ``c`` cached keys, so with several layers the result depends on tokens older
            than the window (the banded model). ``"recompute"``: keep the last ``c`` raw tokens and
            run a fresh forward over them each step, O(c²) per step; exactly the function trained.
        """
        if kind not in KV_CACHE_KINDS:
            raise ValueError(f"kv_cache={kind!r} is not allowed; use one of {KV_CACHE_KINDS}")
        parameter = next(self.parameters())
        if kind == "recompute":
            if dtype is None:
                dtype = torch.long if self.config.observation_kind == "discrete" else torch.float32
            return RecomputeWindow.empty(self.config, batch, parameter.device, dtype)
        return KVCache.empty(self.config, batch, parameter.device, dtype or parameter.dtype)

    def _recompute_step(
        self,
        window: RecomputeWindow,
        observations: torch.Tensor,
        previous_actions: torch.Tensor,
        previous_rewards: torch.Tensor,
        active: torch.Tensor,
        episode_starts: torch.Tensor | None,
    ) -> torch.Tensor:
        batch = observations.shape[0]
        device = window.positions.device
        size = self.config.context_length
        rows = torch.arange(batch, device=device)
        slots = window.positions % size
        keep = active.view(batch, *([1] * (observations.dim() - 1)))
        window.observations[rows, slots] = torch.where(
            keep, observations.to(window.observations.dtype), window.observations[rows, slots]
        )
        window.previous_actions[rows, slots] = torch.where(
            active, previous_actions.long(), window.previous_actions[rows, slots]
        )
        window.previous_rewards[rows, slots] = torch.where(
            active, previous_rewards.float(), window.previous_rewards[rows, slots]
        )
        if episode_starts is not None:
            window.episode_starts[rows, slots] = torch.where(
                active, episode_starts.bool(), window.episode_starts[rows, slots]
            )
        window.positions = window.positions + active.long()
        # A history that has never written anything is given its own token (its logits are meaningless).
        filled = torch.clamp(torch.minimum(window.positions, torch.full_like(window.positions, size)), min=1)
        logits = torch.empty(batch, self.config.n_actions, device=device, dtype=next(self.parameters()).dtype)
        # Histories of the same length share one forward pass (in lockstep evaluation: all of them).
        for length in torch.unique(filled).tolist():
            group = torch.nonzero(filled == length).flatten()
            end = torch.clamp(window.positions[group], min=1)
            order = (end[:, None] - length + torch.arange(length, device=device)[None, :]) % size
            picked = group[:, None]
            logits[group] = self.forward(
                window.observations[picked, order],
                window.previous_actions[picked, order],
                window.previous_rewards[picked, order],
                episode_starts=window.episode_starts[picked, order],
            )[:, -1]
        return logits

    @torch.no_grad()
    def step(
        self,
        cache: KVCache | RecomputeWindow,
        observations: torch.Tensor,
        previous_actions: torch.Tensor,
        previous_rewards: torch.Tensor,
        active: torch.Tensor | None = None,
        episode_starts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Feed one token per history through the cache: O(c) per token with a :class:`KVCache`, a forward over c tokens with a :class:`RecomputeWindow`.

        :param cache: the cache (:meth:`empty_cache`), updated in place.
        :param observations: ``(batch, *observation_shape)``.
        :param previous_actions: ``(batch,)``.
        :param previous_rewards: ``(batch,)``.
        :param active: ``(batch,)`` booleans; inactive histories neither write nor advance
            (their logits are returned but meaningless).
        :param episode_starts: ``(batch,)`` booleans, True where this step is the first of an
            episode (required by a model with ``episode_starts=True``).
        :return: logits ``(batch, n_actions)``.
        """
        batch = observations.shape[0]
        device = cache.positions.device
        if active is None:
            active = torch.ones(batch, dtype=torch.bool, device=device)
        if self.config.episode_starts and episode_starts is None:
            raise ValueError(_MISSING_STARTS)
        if isinstance(cache, RecomputeWindow):
            return self._recompute_step(
                cache, observations, previous_actions, previous_rewards, active, episode_starts
            )
        starts = None if episode_starts is None else episode_starts[:, None]
        x = self.embed(observations[:, None], previous_actions[:, None], previous_rewards[:, None], starts)
        positions = cache.positions
        cos, sin = _rope_angles(
            positions[:, None], self.config.embed_dim // self.config.n_heads, self.config.rope_base, x.dtype
        )
        cos, sin = cos[:, None], sin[:, None]  # (batch, 1 head-broadcast, 1 token, half)
        window = self.config.context_length
        slots = positions % window
        filled = torch.minimum(positions + active.long(), torch.full_like(positions, window))
        valid = torch.arange(window, device=device)[None, :] < filled[:, None]
        # A history that has never written anything still needs one valid key to avoid NaNs.
        valid[:, 0] |= filled == 0
        for block, keys, values in zip(self.blocks, cache.keys, cache.values):
            x = block.step(x, cos, sin, keys, values, slots, valid, active)
        cache.positions = positions + active.long()
        return self.head(self.final_norm(x))[:, 0]

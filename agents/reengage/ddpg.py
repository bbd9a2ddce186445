"""ReenGAGE on DDPG."""

from __future__ import annotations

from typing import Any, ClassVar

from stable_baselines3 import DDPG

from .td3 import DEFAULT_GRADIENT_REG, ReenGAGETD3Mixin

__all__ = ["ReenGAGEDDPG"]


class ReenGAGEDDPG(ReenGAGETD3Mixin, DDPG):
    """DDPG with a ReenGAGE critic (Levine & Feizi, "Goal-Conditioned Q-Learning as Knowledge
    Distillation", AAAI 2023, https://arxiv.org/abs/2208.13298).

    The critic minimises ``MSE(Q, y) + gradient_reg * mean((-r) * (grad_g Q - grad_g' y)**2)`` with
    ``y = r + gamma * (1 - done) * Q'(s', pi'(s', g'), g')``; ``grad_g' y`` is the total derivative
    through the target actor and target critic, held constant. Use it with SB3's
    ``HerReplayBuffer`` on a goal environment with rewards in {-1, 0}, e.g.
    ``zoo/ContinuousSeek-d5-v0``. The actor update is DDPG's.

    :param policy: the policy (``"MultiInputPolicy"`` or a TD3 policy class).
    :param env: a goal environment (Dict observation with ``desired_goal``) or its id.
    :param gradient_reg: weight of the goal-gradient term (>= 0). The term is a mean over goal
        dimensions, so ``gradient_reg = alpha * d`` for the paper's ``alpha`` on the summed squared
        norm; the paper's ``alpha`` in {0.1, 0.2, 0.3}/d is ``gradient_reg`` in {0.1, 0.2, 0.3}.
        ``0`` gives exactly DDPG's update (it runs DDPG's own ``train``).
    :param kwargs: every other argument of :class:`stable_baselines3.DDPG`.
    """

    policy_aliases: ClassVar[dict[str, Any]] = DDPG.policy_aliases

    def __init__(self, policy: Any, env: Any, gradient_reg: float = DEFAULT_GRADIENT_REG, **kwargs: Any):
        self._init_reengage(gradient_reg)
        super().__init__(policy, env, **kwargs)

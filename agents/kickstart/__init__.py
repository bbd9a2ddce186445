"""Kickstarted PPO / A2C (Schmitt et al. 2018, https://arxiv.org/abs/1803.03835).

A student learns with its own RL loss plus λ_k times the cross-entropy between a teacher's
action distribution and its own, on the states it visits; λ_k decays so the student can
surpass its teacher(s). Population-based training of λ_k lives in :mod:`zoo.agents.kickstart.pbt`
(extra ``distill-zoo[pbt]``).
"""

from .a2c import KickstartedA2C
from .contrib import KickstartedMaskablePPO, KickstartedRecurrentPPO
from .ppo import KickstartedPPO

__all__ = ["KickstartedA2C", "KickstartedMaskablePPO", "KickstartedPPO", "KickstartedRecurrentPPO"]

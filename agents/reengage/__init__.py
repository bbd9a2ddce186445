"""ReenGAGE critics (Levine & Feizi 2023): goal-conditioned Q-learning as knowledge distillation.

``ReenGAGEDDPG``, ``ReenGAGETD3`` and ``ReenGAGESAC`` add the goal-gradient term to the critic of
SB3's DDPG, TD3 and SAC (use them with ``HerReplayBuffer``); ``ReenGAGEDQN`` does the same for
discrete actions; ``MultiReenGAGE`` handles many weighted goals at once with a DeepSets critic.
"""

from .ddpg import ReenGAGEDDPG
from .dqn import ReenGAGEDQN
from .multi import MultiReenGAGE, cell_goal_rewards
from .policies import MultiGoalPolicy
from .sac import ReenGAGESAC
from .td3 import ReenGAGETD3

__all__ = [
    "MultiGoalPolicy",
    "MultiReenGAGE",
    "ReenGAGEDDPG",
    "ReenGAGEDQN",
    "ReenGAGESAC",
    "ReenGAGETD3",
    "cell_goal_rewards",
]

"""Algorithm Distillation (Laskin et al., ICLR 2023, https://arxiv.org/abs/2210.14215).

Collect learning histories of a source RL algorithm on many tasks
(:func:`collect_histories`), train a causal transformer to predict the source's next action
(:class:`AlgorithmDistillation`), and watch it improve in context on unseen tasks
(:func:`evaluate_in_context`).
"""

from .algorithm import AlgorithmDistillation, InContextState
from .baselines import TrialWrapper, collect_expert_histories, evaluate_rl2, source_learning_curve, train_rl2
from .dataset import History, HistoryDataset
from .evaluation import InContextResult, evaluate_in_context
from .export import TRANSITION_COLUMNS, export_minari, import_minari, transitions_table, write_parquet
from .model import KV_CACHE_KINDS, KVCache, ModelConfig, RecomputeWindow, TransformerPolicy
from .plots import plot_in_context
from .pretrained import available_pretrained, load_pretrained, make_source, pretrained_path
from .sources import (
    UCB,
    NoisyExpert,
    SB3Source,
    Source,
    TabularQLearning,
    ThompsonSampling,
    collect_histories,
    make_task_vector_env,
)

__all__ = [
    "KV_CACHE_KINDS",
    "TRANSITION_COLUMNS",
    "UCB",
    "AlgorithmDistillation",
    "History",
    "HistoryDataset",
    "InContextResult",
    "InContextState",
    "KVCache",
    "ModelConfig",
    "NoisyExpert",
    "RecomputeWindow",
    "SB3Source",
    "Source",
    "TabularQLearning",
    "ThompsonSampling",
    "TransformerPolicy",
    "TrialWrapper",
    "available_pretrained",
    "collect_expert_histories",
    "collect_histories",
    "evaluate_in_context",
    "evaluate_rl2",
    "export_minari",
    "import_minari",
    "load_pretrained",
    "make_source",
    "make_task_vector_env",
    "plot_in_context",
    "pretrained_path",
    "source_learning_curve",
    "train_rl2",
    "transitions_table",
    "write_parquet",
]

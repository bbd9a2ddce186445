"""Configuration dataclasses of the ``zoo`` command; their field docstrings are the ``--help`` text.

Each config has a ``validate()`` that refuses bad values with a ValueError naming the flag, the
value and what is allowed. The CLI calls it before building anything (not ``__post_init__``:
tyro would catch the error there and print its own box instead of one ``zoo: error:`` line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

#: ``--device`` values torch understands here: auto (CUDA when present), cpu, cuda, cuda:N, mps.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def check_device(device: str, flag: str = "--device") -> str:
    """Return ``device`` if torch can use it here, else raise ValueError naming ``flag``."""
    if not DEVICE_PATTERN.match(device):
        raise ValueError(
            f"{flag} {device!r} is not allowed; use auto, cpu, cuda, cuda:N (e.g. cuda:0) or mps"
        )
    return device


def check_at_least(flag: str, value: int | None, minimum: int = 1) -> None:
    """Refuse an integer flag below ``minimum`` (``None`` means "not given" and passes)."""
    if value is not None and value < minimum:
        raise ValueError(f"{flag} {value} is not allowed; it must be at least {minimum}")


@dataclass
class TrainConfig:
    """Train an agent on an environment from the tuned hyperparameters (zoo/hyperparams/<algo>.yml)."""

    algo: str
    """Algorithm name, e.g. ppo, kickstarted_ppo, reengage_ddpg (an unknown name lists the valid ones)."""
    env: str
    """Environment id, e.g. zoo/DarkRoom-v0."""
    teacher: str | None = None
    """Teacher for kickstarted algorithms: a saved model path, a Hub repo id, or "bundled" (the zoo's teacher for --env and its task)."""
    n_timesteps: Annotated[int | None, tyro.conf.arg(aliases=("-n",))] = None
    """Training budget in environment steps (default: the hyperparameter file's n_timesteps)."""
    seed: int = 0
    """Random seed of the agent and the environments."""
    device: str = "auto"
    """Torch device: auto (CUDA when present), cpu, cuda, cuda:N or mps."""
    num_threads: int = -1
    """Torch CPU threads, as rl_zoo3's --num-threads (-1 keeps torch's default; 1 suits small networks and parallel runs)."""
    params: list[str] = field(default_factory=list)
    """Hyperparameter overrides as key:value pairs (YAML values), e.g. learning_rate:1e-3."""
    log_folder: str = "logs"
    """Root folder of the run folders logs/<algo>/<env>_<n>/."""
    env_kwargs: list[str] = field(default_factory=list)
    """Environment keyword arguments as key:value pairs, e.g. task:[2,3]."""
    eval_episodes: int = 10
    """Evaluation episodes at each evaluation and at the end."""
    eval_freq: int | None = None
    """Evaluate every this many environment steps (default: a tenth of the budget)."""
    checkpoint_freq: int | None = None
    """Write a resumable checkpoint every this many environment steps (default: a tenth of the budget)."""
    resume: bool = False
    """Continue the latest run of this algo and env from its last checkpoint."""
    vec_env: Literal["auto", "native", "dummy"] = "auto"
    """Vector env: native (the zoo's numpy vector env), dummy (SB3's DummyVecEnv of single envs), or auto (native when the env has one)."""
    progress_bar: bool = True
    """Show a progress bar."""
    verbose: int = 0
    """SB3 verbosity (0 silent, 1 info)."""

    def validate(self) -> None:
        """Refuse values no run could use (before any folder, env or model is made)."""
        check_at_least("-n/--n-timesteps", self.n_timesteps)
        check_at_least("--eval-freq", self.eval_freq)
        check_at_least("--checkpoint-freq", self.checkpoint_freq)
        check_at_least("--eval-episodes", self.eval_episodes)
        check_at_least("--verbose", self.verbose, 0)
        if self.num_threads != -1 and self.num_threads < 1:
            raise ValueError(
                f"--num-threads {self.num_threads} is not allowed; use -1 (torch's default) or at least 1"
            )
        check_device(self.device)


@dataclass
class EnjoyConfig:
    """Run a trained agent: print episode returns and, with --video, record a replay MP4."""

    algo: str
    """Algorithm name the run was trained with."""
    env: str
    """Environment id."""
    run: str | None = None
    """Run folder (default: the latest logs/<algo>/<env>_<n>)."""
    repo: str | None = None
    """Load the agent from this Hub repo id instead of a run folder."""
    trust_remote_code: bool = False
    """With --repo: accept a pickled SB3 .zip from the Hub (runs code from the network)."""
    log_folder: str = "logs"
    """Root folder of the run folders."""
    load_best: bool = False
    """Load the run's best_model.zip (the best evaluation) instead of its final agent."""
    load_checkpoint: int | None = None
    """Load the run's checkpoint of this many steps (rl_model_<steps>_steps.zip) instead of its final agent."""
    load_last_checkpoint: bool = False
    """Load the run's newest checkpoint instead of its final agent."""
    episodes: int = 5
    """Episodes to run."""
    deterministic: bool = True
    """Act greedily."""
    video: str | None = None
    """Write a replay video to this path (MP4)."""
    video_steps: int = 200
    """Environment steps recorded in the video."""
    seed: int = 0
    """Seed of the evaluation environment."""
    device: str = "auto"
    """Torch device."""

    def validate(self) -> None:
        """Refuse values no replay could use."""
        check_at_least("--episodes", self.episodes)
        check_at_least("--video-steps", self.video_steps)
        check_device(self.device)
        if self.run is not None and self.repo is not None:
            raise ValueError(f"--run {self.run} and --repo {self.repo} both given; give one of them")
        check_at_least("--load-checkpoint", self.load_checkpoint)
        chosen = [
            flag
            for flag, given in (
                ("--load-best", self.load_best),
                (f"--load-checkpoint {self.load_checkpoint}", self.load_checkpoint is not None),
                ("--load-last-checkpoint", self.load_last_checkpoint),
            )
            if given
        ]
        if len(chosen) > 1:
            raise ValueError(f"{' and '.join(chosen)} both given; give one of them")
        if chosen and self.repo is not None:
            raise ValueError(
                f"{chosen[0]} picks a file of a run folder; it does not go with --repo {self.repo}"
            )
        if self.trust_remote_code and self.repo is None:
            raise ValueError(
                "--trust-remote-code is for --repo (a Hub agent); a run folder is loaded without it"
            )


@dataclass
class PushConfig:
    """Publish a trained run to the Hugging Face Hub (model card, results, replay video)."""

    algo: str
    """Algorithm name the run was trained with."""
    env: str
    """Environment id."""
    repo: str | None = None
    """Repo id <org>/<algo>-<EnvName> (default org from ZOO_HUB_ORG)."""
    run: str | None = None
    """Run folder (default: the latest logs/<algo>/<env>_<n>)."""
    log_folder: str = "logs"
    """Root folder of the run folders."""
    eval_episodes: int = 10
    """Evaluation episodes reported in results.json and the model card."""
    video: bool = True
    """Record and upload replay.mp4."""
    commit_message: str = "Upload agent trained with distill-zoo"
    """Commit message of the single upload commit."""

    def validate(self) -> None:
        """Refuse values no evaluation could use."""
        check_at_least("--eval-episodes", self.eval_episodes)


@dataclass
class PullConfig:
    """Download an agent from the Hub into a local folder, without unpickling anything."""

    repo: str
    """Repo id to download."""
    revision: str | None = None
    """Branch, tag or commit (default: main)."""
    output: str = "downloads"
    """Folder the agent is written to (<output>/<repo name>)."""
    trust_remote_code: bool = False
    """Accept a pickled SB3 .zip from the Hub (runs code from the network)."""
    device: str = "auto"
    """Torch device."""

    def validate(self) -> None:
        """Refuse a device torch cannot use."""
        check_device(self.device)


@dataclass
class BenchConfig:
    """Run a benchmark script from benchmarks/ (results belong in BENCHMARKS.md)."""

    name: Annotated[str, tyro.conf.Positional]
    """Benchmark name: env_throughput, kickstart, reengage or ad."""
    args: Annotated[list[str], tyro.conf.Positional] = field(default_factory=list)
    """Arguments passed to the script."""


@dataclass
class QuickstartConfig:
    """The main job, offline, in about five minutes on a 2-core CPU: kickstarting on the 8-goal Dark Room
    suite (bundled experts) against PPO from scratch, the bundled pretrained Algorithm Distillation model
    in context on held-out goals against its source (and a small AD trained here), ReenGAGE against
    DDPG+HER on a goal env; prints tables and writes figures, a video and results.json to a run folder."""

    fast: bool = False
    """A reduced budget (for the test suite and a first look): seconds, not minutes."""
    output: str = "logs/quickstart"
    """Folder the results are written to."""
    seed: int = 0
    """Random seed (training and evaluation seeds are offset by it)."""
    device: str = "auto"
    """Torch device."""
    workers: int = 2
    """Processes that run the training jobs at the same time (one per CPU core; 1: all in this process)."""

    def validate(self) -> None:
        """Refuse a device torch cannot use, a negative seed and fewer than one worker."""
        check_device(self.device)
        check_at_least("--seed", self.seed, 0)
        check_at_least("--workers", self.workers, 1)


Command = Literal["train", "enjoy", "push", "pull", "bench", "quickstart"]

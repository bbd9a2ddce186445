"""Algorithm Distillation benchmarks (a script, not a test).

Experiments (``--experiment``):

* ``speed``: in-context steps per second with the sliding-window KV cache vs a full
  recompute over the last ``c`` tokens, at contexts 256, 1024 and 4096; training tokens/s.
* ``darkroom``: Dark Room, held-out goals: return per in-context episode for AD, ED, the
  source algorithm and RL², over ``--seeds`` training seeds.
* ``keydoor``: Dark Key-to-Door, unseen tasks, AD vs ED.
* ``bandit``: adversarial bandit, AD trained on UCB/Thompson histories of the train
  distribution, evaluated on the even-arm test distribution; regret next to UCB and Thompson.

Full-size runs need a GPU (``--device cuda``); on a CPU use the small defaults and say so.
Examples::

    python benchmarks/ad.py --experiment speed
    python benchmarks/ad.py --experiment darkroom --seeds 3 --train-steps 3000 --rl2-steps 0
    python benchmarks/ad.py --experiment bandit --train-steps 1500
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

import zoo.envs
from zoo.agents.ad import (
    UCB,
    AlgorithmDistillation,
    InContextResult,
    NoisyExpert,
    TabularQLearning,
    ThompsonSampling,
    collect_expert_histories,
    collect_histories,
    evaluate_in_context,
    evaluate_rl2,
    plot_in_context,
    source_learning_curve,
    train_rl2,
)
from zoo.agents.ad.model import ModelConfig, TransformerPolicy
from zoo.hub.files import atomic_write_text


def _summary(results: list[InContextResult], marks: tuple[int, ...]) -> str:
    """Markdown table: per method, mean ± std over seeds of the task-averaged return at given episodes."""
    by_label: dict[str, list[np.ndarray]] = {}
    for result in results:
        by_label.setdefault(result.label, []).append(result.mean)
    header = "| method | seeds | " + " | ".join(f"episode {mark}" for mark in marks) + " |"
    lines = [header, "|" + "---|" * (len(marks) + 2)]
    for label, curves in by_label.items():
        stacked = np.stack(curves)
        cells = []
        for mark in marks:
            if mark <= stacked.shape[1]:
                values = stacked[:, mark - 1]
                cells.append(f"{values.mean():.2f} ± {values.std():.2f}")
            else:
                cells.append("-")
        lines.append(f"| {label} | {len(curves)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seed_average(results: list[InContextResult], label: str) -> InContextResult:
    same = [result for result in results if result.label == label]
    return InContextResult(np.concatenate([result.returns for result in same]), [], label)


def speed(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    out: dict = {"device": str(device), "batch": args.speed_batch, "contexts": {}}
    for context in args.speed_contexts:
        config = ModelConfig("discrete", (), 81, 5, context_length=context)
        model = TransformerPolicy(config).to(device).eval()
        batch = args.speed_batch
        observations = torch.randint(0, 81, (batch, context), device=device)
        actions = torch.randint(0, 6, (batch, context), device=device)
        rewards = torch.rand(batch, context, device=device)
        cache = model.empty_cache(batch)
        for t in range(context):  # fill the window: timings below are with a full, sliding window
            model.step(cache, observations[:, t], actions[:, t], rewards[:, t])
        steps = args.speed_steps
        start = time.perf_counter()
        for t in range(steps):
            model.step(cache, observations[:, t % context], actions[:, t % context], rewards[:, t % context])
        if device.type == "cuda":
            torch.cuda.synchronize()
        cached = steps / (time.perf_counter() - start)
        recompute_steps = max(2, steps // (context // 64 + 1))
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(recompute_steps):
                model(observations, actions, rewards)[:, -1]
        if device.type == "cuda":
            torch.cuda.synchronize()
        recompute = recompute_steps / (time.perf_counter() - start)
        out["contexts"][context] = {
            "cached_steps_per_s": cached * batch,
            "recompute_steps_per_s": recompute * batch,
            "ratio": cached / recompute,
        }
        print(
            f"context {context}: cached {cached * batch:,.0f} env-steps/s, recompute {recompute * batch:,.0f} "
            f"env-steps/s (batch {batch}), ratio {cached / recompute:.1f}x",
            flush=True,
        )
    # Training throughput with the paper's model on a synthetic history dataset.
    directory = Path(args.out) / "speed_data"
    dataset = collect_histories(
        "zoo/DarkRoom-v0", NoisyExpert(), directory, episodes=40, tasks=zoo.envs.tasks("zoo/DarkRoom-v0")[:8]
    )
    agent = AlgorithmDistillation(
        dataset, context_length=args.context, batch_size=args.batch_size, device=device
    )
    agent.learn(args.speed_train_steps)
    out["train_tokens_per_s"] = agent.tokens_per_second
    print(
        f"training: {agent.tokens_per_second:,.0f} tokens/s (context {args.context}, batch {args.batch_size})"
    )
    return out


def _model_kwargs(args: argparse.Namespace) -> dict:
    return dict(
        context_length=args.context,
        n_layers=args.layers,
        n_heads=args.heads,
        embed_dim=args.embed_dim,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        subsample=args.subsample,
        dropout=args.dropout,
        attention_dropout=args.attention_dropout,
        device=args.device,
    )


def _source(name: str, decay_fraction: float = 0.8):
    return {
        "q_learning": TabularQLearning(),
        "noisy_expert": NoisyExpert(decay_fraction),
        "ucb": UCB(),
        "thompson": ThompsonSampling(),
    }[name]


def _grid_seed(
    args: argparse.Namespace, env_id: str, env_kwargs: dict, train_tasks: list, test_tasks: list, seed: int
) -> tuple[list[InContextResult], dict]:
    """Everything of one training seed (run in its own process with ``--jobs`` > 1)."""
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out)
    name = _run_name(env_id, env_kwargs)
    source = _source(args.source, args.decay_fraction)
    results: list[InContextResult] = []
    timings: dict = {}
    start = time.perf_counter()
    trained = []
    if "AD" in args.methods:
        data = collect_histories(
            env_id,
            source,
            out_dir / f"{name}_{args.source}_{seed}",
            args.history_episodes,
            tasks=train_tasks * args.task_repeats,
            env_kwargs=env_kwargs,
            seed=seed,
        )
        trained.append((AlgorithmDistillation(data, seed=seed, **_model_kwargs(args)), "AD"))
    if "ED" in args.methods:
        expert = collect_expert_histories(
            env_id,
            out_dir / f"{name}_expert_{seed}",
            max(args.history_episodes // args.subsample, args.context // 10 + 1),
            tasks=train_tasks * args.task_repeats,
            env_kwargs=env_kwargs,
            seed=seed,
        )
        trained.append(
            (AlgorithmDistillation(expert, seed=seed, **{**_model_kwargs(args), "subsample": 1}), "ED")
        )
    timings["collect_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for agent, _ in trained:
        agent.learn(args.train_steps)
    timings["train_s"] = time.perf_counter() - start
    for agent, label in trained:
        results.append(
            evaluate_in_context(
                agent,
                env_id,
                tasks=test_tasks,
                episodes=args.eval_episodes,
                seed=seed,
                label=label,
                temperature=args.temperature,
            )
        )
    if "source" in args.methods:
        curve = source_learning_curve(
            source,
            env_id,
            tasks=test_tasks,
            episodes=args.source_eval_episodes,
            env_kwargs=env_kwargs,
            seed=seed,
        )
        curve.label = f"source ({args.source})"
        results.append(curve)
    if args.rl2_steps > 0 and "RL2" in args.methods:
        start = time.perf_counter()
        rl2 = train_rl2(
            env_id,
            args.rl2_steps,
            episodes_per_trial=args.eval_episodes,
            tasks=train_tasks,
            env_kwargs=env_kwargs,
            seed=seed,
            device=args.device,
        )
        results.append(
            evaluate_rl2(
                rl2,
                env_id,
                tasks=test_tasks,
                episodes=args.eval_episodes,
                env_kwargs=env_kwargs,
                seed=seed,
            )
        )
        timings["rl2_s"] = time.perf_counter() - start
    return results, timings


def _run_name(env_id: str, env_kwargs: dict) -> str:
    return env_id.split("/")[1] + (f"-size{env_kwargs['size']}" if "size" in env_kwargs else "")


def _episodes_to_reach(results: list[InContextResult], target: float) -> str:
    """Per method: the first episode whose seed-averaged mean return reaches ``target``."""
    lines = []
    for label in dict.fromkeys(result.label for result in results):
        curve = _seed_average(results, label).mean
        reached = np.flatnonzero(curve >= target)
        lines.append(
            f"{label}: episode {reached[0] + 1}"
            if reached.size
            else f"{label}: not reached in {curve.size} episodes (best {curve.max():.2f})"
        )
    return f"first episode with mean return >= {target:.2f}: " + "; ".join(lines)


def grid(args: argparse.Namespace, env_id: str, env_kwargs: dict) -> dict:
    out_dir = Path(args.out)
    test_tasks = zoo.envs.tasks(env_id, "test", **env_kwargs)
    if args.test_tasks:
        test_tasks = test_tasks[: args.test_tasks]
    train_tasks = zoo.envs.tasks(env_id, "train", **env_kwargs)
    if args.train_tasks:
        train_tasks = train_tasks[: args.train_tasks]
    name = _run_name(env_id, env_kwargs)
    results: list[InContextResult] = []
    timings: dict = {}
    seeds = range(args.seeds)
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = [
            pool.submit(_grid_seed, args, env_id, env_kwargs, train_tasks, test_tasks, seed) for seed in seeds
        ]
        for run in runs:
            seed_results, seed_timings = run.result()
            results.extend(seed_results)
            for key, value in seed_timings.items():
                timings.setdefault(key, []).append(value)
            print(_summary(results, args.marks), flush=True)
    labels = list(dict.fromkeys(result.label for result in results))
    optimal = _optimal(env_id, test_tasks, env_kwargs)
    plot_in_context(
        [_seed_average(results, label) for label in labels],
        out_dir / f"{name}.png",
        title=f"{name}, held-out tasks",
        optimal=optimal,
    )
    # First episode reaching 25 / 50 / 60 / 90 % of the optimum (90 % is the target).
    reach = {
        f"{round(100 * fraction)}%": _episodes_to_reach(results, fraction * optimal)
        for fraction in (0.25, 0.5, 0.6, 0.9)
        if optimal
    }
    for line in reach.values():
        print(line)
    return {
        "table": _summary(results, args.marks),
        "reach": reach,
        "curves": {label: _seed_average(results, label).mean.tolist() for label in labels},
        "optimal": optimal,
        "timings": timings,
    }


def _optimal(env_id: str, tasks: list, env_kwargs: dict) -> float | None:
    if "KeyToDoor" in env_id:
        return 2.0
    if env_id == "zoo/DarkRoom-v0":
        from zoo.envs.darkroom import DarkRoomEnv

        size = env_kwargs.get("size", 9)
        return float(np.mean([DarkRoomEnv.optimal_return(goal, size=size) for goal in tasks]))
    return None


def bandit(args: argparse.Namespace) -> dict:
    env_id = "zoo/AdversarialBandit-v0"
    out_dir = Path(args.out)
    train = zoo.envs.tasks(env_id, "train")[: args.train_tasks or 1000]
    test = zoo.envs.tasks(env_id, "test")[: args.test_tasks or 1000]
    best = np.array([max(task) for task in test])
    results = []
    for seed in range(args.seeds):
        data = collect_histories(
            env_id,
            _source(args.source),
            out_dir / f"bandit_{args.source}_{seed}",
            args.history_episodes,
            tasks=train,
            seed=seed,
        )
        ad = AlgorithmDistillation(data, seed=seed, **_model_kwargs(args)).learn(args.train_steps)
        results.append(
            evaluate_in_context(ad, env_id, tasks=test, episodes=args.eval_episodes, seed=seed, label="AD")
        )
        for name in ("ucb", "thompson"):
            curve = source_learning_curve(
                _source(name), env_id, tasks=test, episodes=args.eval_episodes, seed=seed
            )
            curve.label = name
            results.append(curve)
    # Regret per pull, estimated with the drawn Bernoulli rewards: max mean - reward.
    regrets = {}
    for label in ("AD", "ucb", "thompson"):
        returns = _seed_average(results, label).returns
        per_seed = [
            (best[None, :, None] - r.returns[None]).mean(axis=1)[0] for r in results if r.label == label
        ]
        cumulative = np.stack([np.cumsum(curve) for curve in per_seed])
        regrets[label] = {
            "cumulative_regret_mean": cumulative.mean(axis=0)[-1].item(),
            "cumulative_regret_std": cumulative.std(axis=0)[-1].item(),
            "mean_reward_last_10": returns[:, -10:].mean().item(),
        }
        print(label, regrets[label], flush=True)
    plot_in_context(
        [_seed_average(results, label) for label in ("AD", "ucb", "thompson")],
        out_dir / "bandit.png",
        title="Bandit, even-arm test distribution",
    )
    return {"regret": regrets, "episodes": args.eval_episodes}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiment", choices=["speed", "darkroom", "keydoor", "bandit"], default="speed")
    parser.add_argument("--out", default="runs/ad_bench")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="training seeds run in parallel processes")
    parser.add_argument("--decay-fraction", type=float, default=0.8, help="noisy expert: ε reaches 0 here")
    parser.add_argument("--task-repeats", type=int, default=1, help="learning histories per train task")
    parser.add_argument("--source", default=None, help="q_learning, noisy_expert, ucb or thompson")
    parser.add_argument("--history-episodes", type=int, default=None)
    parser.add_argument("--train-tasks", type=int, default=0, help="0: the whole train split")
    parser.add_argument("--test-tasks", type=int, default=0, help="0: the whole test split")
    parser.add_argument("--train-steps", type=int, default=2000)
    parser.add_argument("--context", type=int, default=None)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=200)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--attention-dropout", type=float, default=0.5)
    parser.add_argument("--subsample", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--eval-episodes", type=int, default=None)
    parser.add_argument("--source-eval-episodes", type=int, default=None)
    parser.add_argument("--size", type=int, default=0, help="grid side length (0: the registered default)")
    parser.add_argument("--methods", nargs="+", default=["AD", "ED", "source", "RL2"])
    parser.add_argument("--rl2-steps", type=int, default=0, help="RecurrentPPO steps for RL² (0 skips it)")
    parser.add_argument("--marks", type=int, nargs="+", default=[1, 2, 5, 10, 20])
    parser.add_argument("--speed-contexts", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--speed-batch", type=int, default=16)
    parser.add_argument("--speed-steps", type=int, default=64)
    parser.add_argument("--speed-train-steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    defaults = {
        "speed": ("noisy_expert", 40, 100, 10),
        "darkroom": ("q_learning", 300, 100, 20),
        "keydoor": ("noisy_expert", 200, 200, 20),
        "bandit": ("thompson", 200, 100, 100),
    }[args.experiment]
    args.source = args.source or defaults[0]
    args.history_episodes = args.history_episodes or defaults[1]
    args.context = args.context or defaults[2]
    args.eval_episodes = args.eval_episodes or defaults[3]
    args.source_eval_episodes = args.source_eval_episodes or max(args.eval_episodes, args.history_episodes)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.experiment == "speed":
        result = speed(args)
    elif args.experiment == "darkroom":
        result = grid(args, "zoo/DarkRoom-v0", {"size": args.size} if args.size else {})
    elif args.experiment == "keydoor":
        result = grid(args, "zoo/DarkKeyToDoor-v0", {"size": args.size} if args.size else {})
    else:
        result = bandit(args)
    result["wall_s"] = time.perf_counter() - started
    result["args"] = vars(args)
    path = Path(args.out) / f"{args.experiment}{args.size or ''}.json"
    atomic_write_text(path, json.dumps(result, indent=2, default=str))
    print(f"wrote {path} in {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

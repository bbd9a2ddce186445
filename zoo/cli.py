"""The ``zoo`` command: train, enjoy, push, pull, ad, pbt, bench, quickstart.

The CLI is thin: it parses a config dataclass (its field docstrings are the help text),
builds objects and calls them. Bad input ends with one ``zoo: error: …`` line, not a trace.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import tyro

from zoo.config import BenchConfig, EnjoyConfig, PullConfig, PushConfig, QuickstartConfig, TrainConfig

BENCHMARKS = ("env_throughput", "kickstart", "reengage", "ad")


def _subcommands() -> dict[str, Any]:
    commands: dict[str, Any] = {
        "train": TrainConfig,
        "enjoy": EnjoyConfig,
        "push": PushConfig,
        "pull": PullConfig,
        "bench": BenchConfig,
        "quickstart": QuickstartConfig,
    }
    commands.update(_optional_subcommands())
    return commands


def _optional_subcommands() -> dict[str, Any]:
    """Subcommands whose configs live with their agent family (``zoo ad …``, ``zoo pbt``)."""
    from zoo import cli_extra

    return cli_extra.subcommands()


_invocation: list[str] = ["zoo"]


def run_train(config: TrainConfig) -> None:
    from zoo.runner import train

    run_dir = train(config, command=_invocation)
    print(f"Run folder: {run_dir}")
    results = (run_dir / "results.json").read_text()
    print(results.strip())


def run_enjoy(config: EnjoyConfig) -> None:
    from zoo.runner import enjoy

    summary = enjoy(config)
    returns = ", ".join(f"{value:.2f}" for value in summary["returns"])
    print(f"Episode returns: {returns} (mean {summary['mean_return']:.2f})")
    if "video" in summary:
        print(f"Video: {summary['video']}")


def run_push(config: PushConfig) -> None:
    from zoo.runner import push

    print(f"Pushed to {push(config)}")


def run_pull(config: PullConfig) -> None:
    from zoo.runner import pull

    print(f"Downloaded to {pull(config)}")


def run_bench(config: BenchConfig) -> None:
    if config.name not in BENCHMARKS:
        raise ValueError(f"zoo bench {config.name!r} is not a benchmark; valid: {', '.join(BENCHMARKS)}")
    script = Path(__file__).resolve().parent.parent / "benchmarks" / f"{config.name}.py"
    if not script.is_file():
        raise FileNotFoundError(
            f"{script} not found: benchmarks ship with the source checkout, not with the wheel "
            "(clone the repository and install it with pip install -e .)"
        )
    completed = subprocess.run([sys.executable, str(script), *config.args], check=False)
    if completed.returncode != 0:
        raise SystemExit(completed.returncode)


def run_quickstart(config: QuickstartConfig) -> None:
    from zoo.quickstart import quickstart

    quickstart(config)


def dispatch(config: Any) -> None:
    """Check a parsed config (its ``validate()``, before anything is built), then call its handler."""
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    handlers: dict[type, Any] = {
        TrainConfig: run_train,
        EnjoyConfig: run_enjoy,
        PushConfig: run_push,
        PullConfig: run_pull,
        BenchConfig: run_bench,
        QuickstartConfig: run_quickstart,
    }
    handler = handlers.get(type(config))
    if handler is None:
        from zoo import cli_extra

        handler = cli_extra.handler_for(config)
    handler(config)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``zoo`` console script."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    _invocation[:] = ["zoo", *arguments]
    if len(arguments) >= 2 and arguments[0] == "bench" and not arguments[1].startswith("-"):
        # Everything after the benchmark's name belongs to the script (its own --flags too).
        config: Any = BenchConfig(name=arguments[1], args=arguments[2:])
    else:
        config = tyro.extras.subcommand_cli_from_dict(_subcommands(), args=arguments, prog="zoo")
    try:
        dispatch(config)
    except (ValueError, OSError, ImportError) as error:
        # Bad input (ours or an agent's ValueError), a missing file, a folder in use: one line.
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"zoo: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

"""The ``zoo`` command: train, enjoy, push, pull, ad, pbt, bench, quickstart.

The CLI is thin: it parses a config dataclass (its field docstrings are the help text),
builds objects and calls them. Bad input ends with one ``zoo: error: …`` line, not a trace.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import tyro

from zoo.config import BenchConfig, EnjoyConfig, PullConfig, PushConfig, QuickstartConfig, TrainConfig

BENCHMARKS = ("env_throughput", "kickstart", "reengage", "ad")
#: Python argument names in the messages of zoo.hub / zoo.agents -> the config field whose flag sets them.
PYTHON_ARGUMENTS = {
    "repo_id": "repo",
    "env_id": "env",
    "algo_name": "algo",
    "n_eval_episodes": "eval_episodes",
}
#: Python arguments that messages name without a value.
BARE_ARGUMENTS = frozenset({"trust_remote_code"})


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
    results = json.loads((run_dir / "results.json").read_text())
    print(json.dumps(clean(results), indent=2))


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


def clean(value: Any, digits: int = 4) -> Any:
    """``value`` for printing: floats rounded to ``digits`` decimals (no float32 noise such as
    ``0.20000000298023224``), numpy scalars and arrays as plain numbers and lists, through lists,
    tuples and dicts."""
    import numpy as np

    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: clean(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clean(item, digits) for item in value)
    return value


def _flags_of(config: Any) -> dict[str, str]:
    """Python argument name -> ``--flag`` for the flags of ``config``'s subcommand."""
    if not dataclasses.is_dataclass(config):
        return {}
    fields = {field.name for field in dataclasses.fields(config)}
    flags = {name: "--" + name.replace("_", "-") for name in fields}
    flags.update({name: flags[field] for name, field in PYTHON_ARGUMENTS.items() if field in fields})
    return flags


def flag_message(message: str, config: Any) -> str:
    """``message`` with the Python arguments it names written as the CLI flags that set them.

    ``repo_id='x'`` -> ``--repo 'x'``, ``trust_remote_code=True`` -> ``--trust-remote-code``,
    ``=False`` -> ``--no-…`` (tyro's negation), a bare ``trust_remote_code`` -> ``--trust-remote-code``.
    Only arguments of the subcommand run are rewritten: others have no flag to name.
    """
    flags = _flags_of(config)
    if not flags:
        return message
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))

    def assignment(match: re.Match[str]) -> str:
        flag, value = flags[match.group(1)], match.group(2)
        if value == "True":
            return flag
        if value == "False":
            return "--no-" + flag.removeprefix("--")
        return f"{flag} {value}"

    message = re.sub(rf"(?<![\w.-])({names})=(True|False|'[^']*'|\"[^\"]*\"|[^\s,;)]+)", assignment, message)
    # A bare option name ("loaded only with trust_remote_code"); hyperparameter keys such as
    # n_timesteps are named bare too, as file keys, and stay as they are.
    for name in BARE_ARGUMENTS & flags.keys():
        message = re.sub(rf"(?<![\w.-]){name}(?![\w=:])", flags[name], message)
    return message


def _is_input_error(error: BaseException) -> bool:
    """Bad input (ours or an agent's ValueError), a missing file, a folder in use, a Hub failure."""
    if isinstance(error, ValueError | OSError | ImportError):
        return True
    return type(error).__module__.startswith("zoo.hub")


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
    except Exception as error:
        if not _is_input_error(error):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"zoo: error: {flag_message(message, config)}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

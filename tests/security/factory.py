"""The attacker's workshop: payloads that write a marker file if they ever run, poisoned files,
a Hub helper that stages repos on the local test server, a memory guard, and the one check
every security test ends with (:func:`check_outcome`).

What a loader must do with any of this (issue #11): with ``trust_remote_code=False`` it never
unpickles, never imports a module named by the data, never follows a path named by the data
outside the downloaded folder, never resolves another repo, and never builds tensors whose
shapes disagree with the safetensors header. A refusal is a ``zoo.hub.trust.UntrustedFileError``
whose message names the file and (where one is involved) the field.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pickle
import resource
import struct
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ORG = "zoo-test"
ENV_ID = "zoo/DarkRoom-v0"
#: The repo most tests stage their poisoned agent in.
POISONED_REPO = f"{ORG}/poisoned"
#: A second, valid repo that a poisoned config may try to make the loader resolve.
OTHER_REPO = f"{ORG}/other-teacher"
#: The teacher repo ``load_teacher(ENV_ID, task=TEACHER_TASK, source="hub", org=ORG)`` reads.
TEACHER_REPO = f"{ORG}/ppo-zoo-DarkRoom-v0"
TEACHER_TASK = (3, 4)
TEACHER_PREFIX = "3-4/"


# --------------------------------------------------------------------------------------------
# Code-execution payloads: each writes the marker file if it ever runs
# --------------------------------------------------------------------------------------------


def marker_code(marker: Path) -> str:
    """Python source that creates ``marker`` (what every payload runs when executed)."""
    return f"with open({str(marker)!r}, 'a') as _marker_file: _marker_file.write('payload executed\\n')"


class ExecOnUnpickle:
    """Pickles to ``exec(code)``: unpickling the bytes runs the code (pickling does not)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (self.code,))


def pickle_payload(marker: Path) -> bytes:
    """Plain pickle bytes that create the marker when unpickled."""
    return pickle.dumps(ExecOnUnpickle(marker_code(marker)), protocol=2)


def torch_pickle_payload(marker: Path) -> bytes:
    """A ``torch.save`` file (zip + data.pkl) that creates the marker under ``torch.load(weights_only=False)``."""
    import torch

    buffer = io.BytesIO()
    torch.save({"policy.action_net.weight": ExecOnUnpickle(marker_code(marker))}, buffer)
    return buffer.getvalue()


def sb3_zip_payload(real_zip: bytes, marker: Path) -> bytes:
    """A real SB3 ``.zip`` whose ``data`` holds a cloudpickled object that creates the marker.

    SB3's ``load_from_zip_file`` (and so ``PPO.load`` and the zoo's ``load_policy_from_zip``)
    unpickles every ``":serialized:"`` entry of ``data``.
    """
    serialized = base64.b64encode(pickle_payload(marker)).decode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(real_zip)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "data":
                data = json.loads(content)
                for key in ("policy_class", "observation_space", "action_space"):
                    data[key] = {":type:": "<class 'abc.ABCMeta'>", ":serialized:": serialized}
                content = json.dumps(data).encode()
            target.writestr(item, content)
    return out.getvalue()


def object_npy_payload(marker: Path) -> bytes:
    """A ``.npy`` of dtype object whose element creates the marker when unpickled."""
    buffer = io.BytesIO()
    np.save(buffer, np.array([ExecOnUnpickle(marker_code(marker))], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def npz_payload(marker: Path, shape: tuple[int, ...] = (40,)) -> bytes:
    """An ``.npz`` (a zip) holding a plain array and an object array that creates the marker."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        rewards=np.zeros(shape, dtype=np.float32),
        evil=np.array([ExecOnUnpickle(marker_code(marker))], dtype=object),
    )
    return buffer.getvalue()


def npy_header_only(dtype: str, shape: tuple[int, ...], body: bytes = b"\0" * 16) -> bytes:
    """A ``.npy`` whose header claims ``shape`` but which holds only ``body``."""
    return _npy_v1({"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}) + body


def _npy_v1(header: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(np.lib.format.magic(1, 0))
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class EvilModules:
    """Modules on ``sys.path`` (and inside ``torch``'s package path) whose import creates the marker.

    :attr env_module: a fresh top-level module for ``"<env_module>:zoo/DarkRoom-v0"`` env ids.
    :attr names: every importable evil module name, including prefix look-alikes of the
        class allow-list (``torch.nn_evil``, ``torch.optim_evil``, ``stable_baselines3_evil``,
        ``sb3_contrib_evil``, ``zoo_evil``).
    """

    TOP_LEVEL = ("stable_baselines3_evil", "sb3_contrib_evil", "zoo_evil", "torch_evil")
    IN_TORCH = ("nn_evil", "optim_evil")

    def __init__(self, root: Path, marker: Path, monkeypatch: pytest.MonkeyPatch, tag: str) -> None:
        import torch

        self.marker = marker
        self.env_module = f"evilmod_{tag}"
        source = (
            f"{marker_code(marker)}\n"
            "import torch as _torch\n"
            "class Evil(_torch.nn.Module):\n"
            "    pass\n"
            "ReLU = Evil\n"
            "MlpPolicy = Evil\n"
        )
        top = root / "evil-site"
        inside = root / "evil-torch"
        top.mkdir(parents=True)
        inside.mkdir(parents=True)
        for name in (self.env_module, *self.TOP_LEVEL):
            (top / f"{name}.py").write_text(source)
        for name in self.IN_TORCH:
            (inside / f"{name}.py").write_text(source)
        self.names = [self.env_module, *self.TOP_LEVEL, *(f"torch.{name}" for name in self.IN_TORCH)]
        for name in self.names:
            monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.syspath_prepend(str(top))
        monkeypatch.setattr(torch, "__path__", [*torch.__path__, str(inside)])

    @property
    def env_id(self) -> str:
        """An env id whose ``module:`` part imports an evil module (``gym.make`` imports it)."""
        return f"{self.env_module}:{ENV_ID}"

    def cleanup(self) -> None:
        for name in self.names:
            sys.modules.pop(name, None)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_json(path: Path, data: Any, *, allow_nan: bool = False) -> None:
    if path.is_symlink():
        path.unlink()
    path.write_text(json.dumps(data, indent=2, allow_nan=allow_nan))


def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    """Apply ``change`` to the parsed file in place (its return value is ignored) and write it back."""
    data = read_json(path)
    change(data)
    write_json(path, data)


def replace_bytes(path: Path, content: bytes) -> None:
    if path.is_symlink():
        path.unlink()
    path.write_bytes(content)


def safetensors_bytes(header: dict[str, Any], body: bytes) -> bytes:
    """A safetensors file: 8-byte little-endian header length, JSON header, data."""
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def edit_tensors(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Load the safetensors file, let ``change`` edit the dict of tensors, save it back (valid file)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    change(tensors)
    if path.is_symlink():
        path.unlink()
    save_file(tensors, str(path))


def symlink_outside(path: Path, outside: Path) -> Path:
    """Move ``path``'s content outside the folder and leave a symbolic link to it in its place."""
    outside.mkdir(parents=True, exist_ok=True)
    target = outside / f"linked-{path.name}"
    target.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(target)
    return target


# --------------------------------------------------------------------------------------------
# The local Hub
# --------------------------------------------------------------------------------------------


class Hub:
    """Stage repos directly in the test server's store (no upload round trips) and inspect requests."""

    def __init__(self, server: Any) -> None:
        self.server = server

    @staticmethod
    def cache_root() -> Path:
        return Path(os.environ["HF_HOME"]) / "hub"

    def put(self, repo_id: str, files: dict[str, bytes], *, repo_type: str = "model") -> str:
        repo, _ = self.server.create_repo(repo_type, repo_id)
        return repo.commit(
            "main", "poisoned upload", [("file", name, data) for name, data in sorted(files.items())]
        )

    def put_folder(self, repo_id: str, folder: Path, *, prefix: str = "", repo_type: str = "model") -> str:
        files = {
            prefix + path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        }
        return self.put(repo_id, files, repo_type=repo_type)

    def repo_cache(self, repo_id: str, repo_type: str = "model") -> Path:
        org, name = repo_id.split("/")
        return self.cache_root() / f"{repo_type}s--{org}--{name}"

    def blob_path(self, repo_id: str, content: bytes, repo_type: str = "model") -> Path:
        """Where huggingface_hub stores a downloaded file: named by its (predictable) content hash."""
        from hub_server import git_blob_sha1

        return self.repo_cache(repo_id, repo_type) / "blobs" / git_blob_sha1(content)

    def snapshot_placeholder(self, repo_id: str, repo_type: str = "model") -> Path:
        """A path as deep as the snapshot folder (``.../snapshots/<commit>``), for relative paths out of it."""
        return self.repo_cache(repo_id, repo_type) / "snapshots" / ("0" * 40)

    def requested(self, repo_id: str) -> list[tuple[str, str]]:
        """Requests the server received that concern ``repo_id``."""
        name = repo_id.split("/")[-1]
        return [request for request in self.server.requests if f"/{name}/" in request[1] + "/"]


# --------------------------------------------------------------------------------------------
# Guards
# --------------------------------------------------------------------------------------------


def _virtual_memory_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - Linux only


@contextlib.contextmanager
def memory_guard(headroom: int = 4 << 30) -> Iterator[None]:
    """Cap the address space at the current size + ``headroom`` while a load runs.

    A resource bomb that gets past a loader then fails with ``MemoryError`` / an allocator
    ``RuntimeError`` (and the test fails) instead of exhausting the shared machine.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    current = _virtual_memory_bytes()
    limit = current + headroom if current else resource.RLIM_INFINITY
    if hard != resource.RLIM_INFINITY and limit != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --------------------------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------------------------


@dataclass
class Expect:
    """What a refusal must say.

    :param files: the file name(s) the message may name (one of them must appear).
    :param field: the field (dotted) or alternatives; the last component of one must appear.
    :param neutral: if given, a *successful* load is also acceptable when ``neutral(model)``
        passes (the value was ignored, not used); ``model`` is ``None`` for loaders that do
        not return one (CLI commands).
    :param also_ok: other exception types accepted (e.g. ``FileNotFoundError`` for a local
        folder that holds no agent at all).
    :param max_seconds: the answer must come this quickly (resource bombs).
    """

    files: str | tuple[str, ...]
    field: str | tuple[str, ...] | None = None
    neutral: Callable[[Any], None] | None = None
    also_ok: tuple[type[BaseException], ...] = ()
    max_seconds: float | None = None
    forbidden_repos: tuple[str, ...] = ()
    extra_checks: list[Callable[[], None]] = dc_field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.files, str):
            self.files = (self.files,)


class CliRefused(Exception):
    """The ``zoo`` command exited non-zero; ``line`` is its ``zoo: error: ...`` line."""

    def __init__(self, code: Any, stderr: str) -> None:
        super().__init__(f"exit {code}: {stderr[-2000:]}")
        self.code = code
        self.stderr = stderr
        lines = [line for line in stderr.splitlines() if line.startswith("zoo: error:")]
        self.line = lines[-1] if lines else ""
        self.lines = lines


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Run ``zoo <argv>`` in-process as tests/test_cli.py does; a non-zero exit raises :class:`CliRefused`."""
    from zoo.cli import main

    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exit_info:
        captured = capsys.readouterr()
        if exit_info.code not in (0, None):
            raise CliRefused(exit_info.code, captured.err) from None
    else:
        capsys.readouterr()


def _last(name: str) -> str:
    return name.split(".")[-1]


def check_message(message: str, expect: Expect) -> None:
    files = expect.files
    assert any(name in message for name in files), f"the error does not name the file {files}: {message}"
    if expect.field is not None:
        fields = (expect.field,) if isinstance(expect.field, str) else expect.field
        assert any(_last(name) in message for name in fields), (
            f"the error does not name the field {fields}: {message}"
        )


def check_outcome(call: Callable[[], Any], expect: Expect, marker: Path, *, hub: Hub | None = None) -> Any:
    """Run a load under the memory guard and judge it.

    Passes when the load raised ``UntrustedFileError`` (or, for a CLI command, exited with one
    ``zoo: error:`` line and no traceback) naming the file and field, or when it succeeded and
    ``expect.neutral`` accepts the result. Whatever happened, the marker must not exist and no
    forbidden repo may have been contacted.
    """
    from zoo.hub.trust import UntrustedFileError

    start = time.monotonic()
    outcome: Any = None
    error: BaseException | None = None
    try:
        with memory_guard():
            outcome = call()
    except KeyboardInterrupt:
        raise
    except BaseException as caught:  # judged below; RecursionError, MemoryError, SystemExit too
        error = caught
    elapsed = time.monotonic() - start

    assert not marker.exists(), f"PAYLOAD EXECUTED: {marker} was written (outcome: {error!r})"
    if hub is not None:
        for repo_id in expect.forbidden_repos:
            contacted = hub.requested(repo_id)
            assert not contacted, f"the load resolved another repo {repo_id!r}: {contacted[:3]}"
    if expect.max_seconds is not None:
        assert elapsed < expect.max_seconds, f"the answer took {elapsed:.1f}s (resource bomb?)"
    for extra in expect.extra_checks:
        extra()

    if error is None:
        if expect.neutral is None:
            pytest.fail(
                f"the load succeeded; expected UntrustedFileError naming {expect.files} / {expect.field}"
            )
        expect.neutral(outcome)
        return outcome
    if isinstance(error, UntrustedFileError):
        assert isinstance(error, ValueError)
        check_message(str(error), expect)
        return error
    if isinstance(error, CliRefused):
        assert "Traceback" not in error.stderr, f"the command printed a traceback:\n{error.stderr[-3000:]}"
        assert len(error.lines) == 1, (
            f"expected one 'zoo: error:' line on stderr, got:\n{error.stderr[-3000:]}"
        )
        check_message(error.line, expect)
        return error
    if expect.also_ok and isinstance(error, expect.also_ok):
        check_message(str(error), expect)
        return error
    raise AssertionError(
        f"expected UntrustedFileError naming {expect.files} / {expect.field}, got "
        f"{type(error).__name__}: {str(error)[:1500]}"
    ) from error


def refuse(files: str | tuple[str, ...], field: str | tuple[str, ...] | None = None, **kwargs: Any) -> Expect:
    return Expect(files, field, **kwargs)


def not_used(check: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
    """A neutral check: a successful load is fine if ``check(model)`` passes (model may be None)."""

    def neutral(model: Any) -> None:
        if model is not None and check is not None:
            check(model)

    return neutral


@dataclass
class Payload:
    """One way to poison a folder: ``apply(ctx) -> Expect``."""

    name: str
    apply: Callable[[Any], Expect]
    base: str = "ppo"
    scope: str = "all"  # "all": every loader of its family; "core": the direct loaders only
    local_only: bool = False  # symbolic links cannot travel through a Hub repo
    hub_only: bool = False
    tags: list[str] = dc_field(default_factory=list)

    def __repr__(self) -> str:
        return self.name

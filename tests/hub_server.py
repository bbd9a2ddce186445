"""A small Hugging Face Hub-compatible HTTP server for tests.

It answers the requests the real ``huggingface_hub`` client sends for the operations the
zoo uses (create a repo, validate a model card, commit files, read repo info and trees,
HEAD/GET files), keeps the commit history so that commit shas work as revisions, and
stores every commit as a plain directory tree under a temporary folder. Every file is
uploaded as a "regular" (base64-in-commit) file, so neither Git LFS nor Xet is involved.

Paths that would leave the store (``..``, absolute paths, backslashes, symbolic links) are
refused. Two switches inject faults for tests: ``interrupt_downloads`` (send half of a
file's bytes, then close) and ``failing_downloads`` (answer 500).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


class PathRefused(ValueError):
    """A path in a request would escape the store."""


def git_blob_sha1(content: bytes) -> str:
    """Return the git object id of a blob with this content (what the Hub reports as ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def check_repo_path(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path inside a repo, else raise PathRefused."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path or re.match(r"^[A-Za-z]:", path):
        raise PathRefused(f"path {path!r} is not a relative POSIX path")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise PathRefused(f"path {path!r} has an empty, '.' or '..' component")
    return path


class Repo:
    """One repository: its branches and commits (each a snapshot directory on disk)."""

    def __init__(self, root: Path, repo_type: str, repo_id: str) -> None:
        self.root = root
        self.repo_type = repo_type
        self.repo_id = repo_id
        self.branches: dict[str, str] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def snapshot_dir(self, commit: str) -> Path:
        return self.root / commit

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.commits:
            return revision
        return None

    def files(self, commit: str) -> list[str]:
        return sorted(self.commits[commit]["files"])

    def commit(self, branch: str, message: str, changes: list[tuple[str, str, bytes | None]]) -> str:
        """Apply ``changes`` (kind, path, content) on top of ``branch`` and return the new commit sha."""
        with self.lock:
            parent = self.branches.get(branch)
            files: dict[str, str] = dict(self.commits[parent]["files"]) if parent else {}
            staging = self.root / f".staging-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
            if parent:
                shutil.copytree(self.snapshot_dir(parent), staging, symlinks=True)
            else:
                staging.mkdir(parents=True)
            for kind, path, content in changes:
                target = staging / path
                if kind == "file":
                    assert content is not None
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
                    files[path] = git_blob_sha1(content)
                elif kind == "deletedFile":
                    target.unlink(missing_ok=True)
                    files.pop(path, None)
                elif kind == "deletedFolder":
                    shutil.rmtree(target, ignore_errors=True)
                    prefix = path.rstrip("/") + "/"
                    files = {p: oid for p, oid in files.items() if not p.startswith(prefix)}
            digest = hashlib.sha1()
            digest.update((parent or "").encode() + message.encode() + str(time.time_ns()).encode())
            for path, oid in sorted(files.items()):
                digest.update(path.encode() + b"\0" + oid.encode())
            sha = digest.hexdigest()
            os.replace(staging, self.snapshot_dir(sha))
            self.commits[sha] = {"parent": parent, "message": message, "files": files, "time": time.time()}
            self.branches[branch] = sha
            return sha


class HubServer:
    """An HF-compatible server on 127.0.0.1 backed by ``root``; use as a context manager.

    :param root: directory holding the repositories (one folder per commit).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.interrupt_downloads: set[str] = set()
        self.failing_downloads: set[str] = set()
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open keep-alive connections, as if the host went away."""
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- repository access
    def create_repo(self, repo_type: str, repo_id: str) -> tuple[Repo, bool]:
        namespace, _, name = repo_id.partition("/")
        if not _NAME.match(namespace) or not _NAME.match(name) or ".." in repo_id:
            raise PathRefused(f"repo id {repo_id!r} is not valid")
        with self._lock:
            key = (repo_type, repo_id)
            if key in self.repos:
                return self.repos[key], False
            repo = Repo(self.root / f"{repo_type}s" / namespace / name, repo_type, repo_id)
            repo.root.mkdir(parents=True, exist_ok=False)
            self.repos[key] = repo
        repo.commit("main", "initial commit", [("file", ".gitattributes", b"*.safetensors filter=lfs\n")])
        return repo, True

    def get_repo(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def read_file(self, repo: Repo, commit: str, path: str) -> bytes | None:
        """Read a file of a commit, refusing anything that resolves outside the snapshot."""
        check_repo_path(path)
        base = repo.snapshot_dir(commit).resolve()
        target = base / path
        current = base
        for part in path.split("/"):
            current = current / part
            if current.is_symlink():
                raise PathRefused(f"path {path!r} goes through a symbolic link")
        if not target.resolve().is_relative_to(base):
            raise PathRefused(f"path {path!r} resolves outside the repository")
        if not target.is_file():
            return None
        return target.read_bytes()


def _make_handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
            return

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._connections.discard(self.connection)
            super().finish()

        # ------------------------------------------------------------ helpers
        def _send(
            self,
            status: int,
            body: bytes = b"",
            headers: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), headers)

        def _error(
            self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None
        ) -> None:
            extra = dict(headers or {})
            if code:
                extra["X-Error-Code"] = code
            extra["X-Error-Message"] = message
            self._json(status, {"error": message}, extra)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _segments(self) -> tuple[list[str], dict[str, list[str]]]:
            parts = urlsplit(self.path)
            segments = [unquote(s) for s in parts.path.split("/")[1:]]
            return segments, parse_qs(parts.query)

        # ------------------------------------------------------------ dispatch
        def do_HEAD(self) -> None:
            self._dispatch()

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            server.requests.append((self.command, urlsplit(self.path).path))
            segments, query = self._segments()
            try:
                if self.command == "POST" and segments[:3] == ["api", "repos", "create"]:
                    return self._create_repo()
                if self.command == "POST" and segments[:2] == ["api", "validate-yaml"]:
                    return self._validate_yaml()
                if segments and segments[0] == "api" and len(segments) >= 4 and segments[1] in _TYPES:
                    return self._api(_TYPES[segments[1]], segments[2:], query)
                if self.command in ("GET", "HEAD"):
                    repo_type = "model"
                    rest = segments
                    if rest and rest[0] in ("datasets", "spaces"):
                        repo_type, rest = _TYPES[rest[0]], rest[1:]
                    if len(rest) >= 5 and rest[2] == "resolve":
                        return self._resolve(repo_type, f"{rest[0]}/{rest[1]}", rest[3], "/".join(rest[4:]))
                self._error(404, None, f"no route for {self.command} {self.path}")
            except PathRefused as error:
                self._error(400, None, str(error))

        # ------------------------------------------------------------ endpoints
        def _create_repo(self) -> None:
            payload = json.loads(self._body() or b"{}")
            name, organization = payload.get("name"), payload.get("organization")
            repo_type = payload.get("type") or "model"
            if not organization:
                return self._error(400, None, "this test server needs an organization in the repo id")
            repo_id = f"{organization}/{name}"
            _, created = server.create_repo(repo_type, repo_id)
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            url = f"{server.url}/{prefix}{repo_id}"
            if not created:
                return self._json(409, {"error": "You already created this repo", "url": url})
            self._json(200, {"url": url, "name": repo_id})

        def _validate_yaml(self) -> None:
            payload = json.loads(self._body() or b"{}")
            content = payload.get("content", "")
            match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
            if match:
                try:
                    metadata = yaml.safe_load(match.group(1))
                except yaml.YAMLError as error:
                    return self._json(
                        400, {"errors": [{"message": f"invalid YAML: {error}"}], "warnings": []}
                    )
                if metadata is not None and not isinstance(metadata, dict):
                    return self._json(
                        400, {"errors": [{"message": "metadata must be a mapping"}], "warnings": []}
                    )
            self._json(200, {"errors": [], "warnings": []})

        def _api(self, repo_type: str, rest: list[str], query: dict[str, list[str]]) -> None:
            repo_id = f"{rest[0]}/{rest[1]}"
            repo = server.get_repo(repo_type, repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            action = rest[2] if len(rest) > 2 else None
            revision = rest[3] if len(rest) > 3 else "main"
            if action in ("preupload", "commit") and self.command == "POST":
                if query.get("create_pr"):
                    return self._error(400, None, "pull requests are not supported by the test server")
                if revision not in repo.branches:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return (
                    self._preupload(repo, revision) if action == "preupload" else self._commit(repo, revision)
                )
            if self.command != "GET":
                return self._error(405, None, "method not allowed")
            commit = repo.resolve(revision if action in ("revision", "tree") else "main")
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            if action in (None, "revision"):
                return self._json(200, self._info(repo, commit))
            if action == "tree":
                return self._tree(repo, commit, "/".join(rest[4:]), query)
            self._error(404, None, f"unknown API action {action!r}")

        def _info(self, repo: Repo, commit: str) -> dict[str, Any]:
            modified = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(repo.commits[commit]["time"]))
            return {
                "id": repo.repo_id,
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "sha": commit,
                "private": False,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": modified,
                "createdAt": modified,
                "siblings": [{"rfilename": path} for path in repo.files(commit)],
            }

        def _tree(self, repo: Repo, commit: str, path: str, query: dict[str, list[str]]) -> None:
            if path:
                check_repo_path(path)
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            prefix = f"{path}/" if path else ""
            entries: dict[str, dict[str, Any]] = {}
            snapshot = repo.snapshot_dir(commit)
            for file_path, oid in repo.commits[commit]["files"].items():
                if not file_path.startswith(prefix):
                    continue
                relative = file_path[len(prefix) :]
                if "/" in relative and not recursive:
                    folder = prefix + relative.split("/")[0]
                    entries[folder] = {"type": "directory", "path": folder, "oid": "0" * 40}
                    continue
                if recursive:
                    parts = relative.split("/")[:-1]
                    for depth in range(1, len(parts) + 1):
                        folder = prefix + "/".join(parts[:depth])
                        entries[folder] = {"type": "directory", "path": folder, "oid": "0" * 40}
                size = (snapshot / file_path).stat().st_size
                entries[file_path] = {"type": "file", "path": file_path, "size": size, "oid": oid}
            self._json(200, [entries[key] for key in sorted(entries)])

        def _preupload(self, repo: Repo, revision: str) -> None:
            payload = json.loads(self._body() or b"{}")
            commit = repo.branches[revision]
            answer = []
            for item in payload.get("files", []):
                path = check_repo_path(item["path"])
                answer.append(
                    {
                        "path": path,
                        "uploadMode": "regular",  # never LFS / Xet: content travels in the commit
                        "shouldIgnore": False,
                        "oid": repo.commits[commit]["files"].get(path),
                    }
                )
            self._json(200, {"files": answer, "commitOid": commit})

        def _commit(self, repo: Repo, revision: str) -> None:
            lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
            if not lines or lines[0].get("key") != "header":
                return self._error(400, None, "commit payload must start with a header line")
            header = lines[0]["value"]
            parent = header.get("parentCommit")
            if parent is not None and parent != repo.branches[revision]:
                return self._error(412, None, "parentCommit is not the head of the branch")
            changes: list[tuple[str, str, bytes | None]] = []
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                path = check_repo_path(str(value.get("path", "")).rstrip("/") or "")
                if key == "file":
                    if value.get("encoding") != "base64":
                        return self._error(400, None, "only base64 file content is supported")
                    changes.append(("file", path, base64.b64decode(value["content"])))
                elif key in ("deletedFile", "deletedFolder"):
                    changes.append((key, path, None))
                else:
                    return self._error(
                        400, None, f"operation {key!r} is not supported (no LFS on this server)"
                    )
            sha = repo.commit(revision, str(header.get("summary", "")), changes)
            prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
            self._json(
                200,
                {
                    "commitUrl": f"{server.url}/{prefix}{repo.repo_id}/commit/{sha}",
                    "commitOid": sha,
                    "success": True,
                },
            )

        def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
            repo = server.get_repo(repo_type, repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            commit = repo.resolve(revision)
            if commit is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            content = server.read_file(repo, commit, path)
            headers = {"X-Repo-Commit": commit}
            if content is None:
                return self._error(404, "EntryNotFound", f"{path} does not exist at {commit}", headers)
            headers["ETag"] = f'"{git_blob_sha1(content)}"'
            headers["Accept-Ranges"] = "bytes"
            if self.command == "GET" and path in server.failing_downloads:
                return self._error(500, None, "injected server error", headers)
            start = 0
            status = HTTPStatus.OK
            range_header = self.headers.get("Range")
            if self.command == "GET" and range_header:
                match = re.fullmatch(r"bytes=(\d+)-", range_header.strip())
                if match and int(match.group(1)) < len(content):
                    start = int(match.group(1))
                    status = HTTPStatus.PARTIAL_CONTENT
                    headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
            body = content[start:]
            if self.command == "GET" and path in server.interrupt_downloads:
                # Promise the whole body, send half of it, and drop the connection.
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                server.interrupt_downloads.discard(path)
                server.failing_downloads.add(path)  # the client's resume attempt then fails too
                return
            self._send(status, body, headers, content_type="application/octet-stream")

    return Handler


def point_huggingface_hub_at(url: str, monkeypatch: Any) -> None:
    """Make huggingface_hub's import-time endpoint ``url``, as ``HF_ENDPOINT`` set before Python started would.

    Fixtures set ``HF_ENDPOINT`` after huggingface_hub was imported. Calls that take
    ``endpoint=`` (what zoo.hub passes) work anyway, but clients that take none (huggingface_sb3's
    ``load_from_hub``) and huggingface_hub before 1.4 (whose ``CommitInfo`` parses a commit URL
    against the import-time endpoint) read the constants. 0.x releases also keep a copy of the URL
    template in ``file_download``.

    :param url: the server's URL.
    :param monkeypatch: pytest's ``monkeypatch``, which undoes the change after the test.
    """
    import importlib

    from huggingface_hub import constants

    template = url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    file_download = importlib.import_module("huggingface_hub.file_download")
    if hasattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE"):
        monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)

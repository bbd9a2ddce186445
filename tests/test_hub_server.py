"""The test Hub server itself: the protocol the client relies on, and refusal of escaping paths."""

from __future__ import annotations

import base64
import http.client
import json
import os
from urllib.parse import urlsplit

import pytest
from hub_server import HubServer, PathRefused, check_repo_path, git_blob_sha1


@pytest.fixture
def server(tmp_path):
    with HubServer(tmp_path / "store") as running:
        yield running


def _request(server: HubServer, method: str, path: str, body: bytes | None = None, headers=None):
    host = urlsplit(server.url)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _commit(server: HubServer, repo: str, files: dict[str, bytes], summary: str = "c") -> tuple[int, dict]:
    lines = [{"key": "header", "value": {"summary": summary, "description": ""}}]
    lines += [
        {"key": "file", "value": {"path": p, "content": base64.b64encode(c).decode(), "encoding": "base64"}}
        for p, c in files.items()
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    status, _, payload = _request(server, "POST", f"/api/models/{repo}/commit/main", body)
    return status, json.loads(payload)


def test_resolve_headers_history_and_ranges(server):
    server.create_repo("model", "org/repo")
    status, first = _commit(server, "org/repo", {"a.txt": b"first"})
    assert status == 200
    _commit(server, "org/repo", {"a.txt": b"second!"})
    status, headers, body = _request(server, "HEAD", "/org/repo/resolve/main/a.txt")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == "7" and headers["ETag"] == f'"{git_blob_sha1(b"second!")}"'
    assert len(headers["X-Repo-Commit"]) == 40 and headers["X-Repo-Commit"] != first["commitOid"]
    assert _request(server, "GET", f"/org/repo/resolve/{first['commitOid']}/a.txt")[2] == b"first"
    status, headers, body = _request(
        server, "GET", "/org/repo/resolve/main/a.txt", headers={"Range": "bytes=3-"}
    )
    assert status == 206 and body == b"ond!" and headers["Content-Range"] == "bytes 3-6/7"


def test_not_found_errors_carry_the_hub_error_codes(server):
    server.create_repo("model", "org/repo")
    cases = {
        "/other/repo/resolve/main/a.txt": "RepoNotFound",
        "/org/repo/resolve/nope/a.txt": "RevisionNotFound",
        "/org/repo/resolve/main/missing.txt": "EntryNotFound",
        "/api/models/org/missing": "RepoNotFound",
        "/api/models/org/repo/revision/nope": "RevisionNotFound",
    }
    for path, code in cases.items():
        status, headers, _ = _request(server, "GET", path)
        assert (status, headers.get("X-Error-Code")) == (404, code), path


@pytest.mark.parametrize(
    "bad", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a\\b", "a//b", "./a", ""]
)
def test_check_repo_path_refuses_escapes(bad):
    with pytest.raises(PathRefused):
        check_repo_path(bad)


def test_commit_with_escaping_path_is_refused_and_writes_nothing(server, tmp_path):
    server.create_repo("model", "org/repo")
    before = sorted(p for p in tmp_path.rglob("*"))
    for bad in ("../../../escape.txt", "/tmp/escape.txt", "ok/../../escape.txt"):
        status, payload = _commit(server, "org/repo", {bad: b"x"})
        assert status == 400 and "path" in payload["error"]
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "escape.txt").exists()


def test_resolve_refuses_dot_dot_and_symlinks(server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    repo, _ = server.create_repo("model", "org/repo")
    _, commit = _commit(server, "org/repo", {"a.txt": b"hello"})
    snapshot = repo.snapshot_dir(commit["commitOid"])
    os.symlink(secret, snapshot / "link.txt")
    os.symlink(tmp_path, snapshot / "linkdir")
    for path in (
        "/org/repo/resolve/main/..%2F..%2F..%2F..%2Fsecret.txt",
        "/org/repo/resolve/main/../../secret.txt",
        "/org/repo/resolve/main/link.txt",
        "/org/repo/resolve/main/linkdir/secret.txt",
    ):
        status, _, body = _request(server, "GET", path)
        assert status in (400, 404) and b"do not serve" not in body, path
    assert _request(server, "GET", "/org/repo/resolve/main/a.txt")[2] == b"hello"


def test_repo_ids_cannot_escape(server):
    for bad in ("../x", "org/..", "org/a/b"):
        with pytest.raises(PathRefused):
            server.create_repo("model", bad)


def test_lfs_operations_are_refused(server):
    server.create_repo("model", "org/repo")
    lines = [
        {"key": "header", "value": {"summary": "s"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "0" * 64, "size": 3}},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    status, _, payload = _request(server, "POST", "/api/models/org/repo/commit/main", body)
    assert status == 400 and b"LFS" in payload

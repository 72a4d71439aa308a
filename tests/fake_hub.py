"""A fake Hugging Face hub on 127.0.0.1 for tests that must not touch the network.

It speaks the part of the hub's HTTP API that huggingface_hub 2.4's `HfApi.model_info`,
`HfApi.dataset_info`, `snapshot_download` and `hf_hub_download` use:

* `GET /api/models/{repo}[/revision/{rev}]` (`?blobs=true` adds size, blobId and lfs.sha256 to
  each sibling),
* `GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=...` (the listing snapshot_download
  filters),
* `HEAD`/`GET /{repo}/resolve/{rev}/{file}` with X-Repo-Commit, ETag, X-Linked-Etag,
  X-Linked-Size, Content-Length and Range support,
* the same for dataset repos (`add_repo(..., repo_type="dataset")`) under `/api/datasets/{repo}`
  and `/datasets/{repo}/resolve/{rev}/{file}`, the URLs huggingface_hub builds for
  `repo_type="dataset"`. Model and dataset repos live in separate namespaces, as on the hub: a
  dataset and a model with the same id do not collide, and a model id asked for as a dataset is
  not found.

Like the real hub, a gated repo's metadata is public and only `/resolve/` answers 401 (no token)
or 403 (a token without access) with `X-Error-Code: GatedRepo`. Every request is recorded
(method, path, query, headers) so tests can check which files were fetched and with what
Authorization header. `FakeHub.corrupt` changes the bytes served after the metadata was computed.
Xet is never advertised (no X-Xet-* headers, no xetHash), so downloads use plain HTTP.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

# Files the hub stores with git LFS in a typical model repo (its default .gitattributes), plus
# anything over 10 MB.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".model", ".gguf", ".h5", ".msgpack")
LFS_MIN_SIZE = 10 * 1024 * 1024
_DATE = "2025-01-01T00:00:00.000Z"


@dataclass
class FakeFile:
    """One file of a fake repo. `data` is what is served; the rest is metadata fixed at creation."""

    data: bytes
    size: int
    git_sha1: str
    sha256: str | None  # LFS files only, like the hub

    @classmethod
    def from_bytes(cls, path: str, data: bytes, lfs: bool | None = None) -> FakeFile:
        if lfs is None:
            lfs = path.endswith(LFS_SUFFIXES) or len(data) >= LFS_MIN_SIZE
        git_sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False)
        return cls(
            data=data,
            size=len(data),
            git_sha1=git_sha1.hexdigest(),
            sha256=hashlib.sha256(data).hexdigest() if lfs else None,
        )

    @property
    def etag(self) -> str:
        return self.sha256 or self.git_sha1


REPO_TYPES = ("model", "dataset")


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, FakeFile]
    sha: str
    gated: bool = False
    tokens: frozenset[str] = frozenset()
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit
    repo_type: str = "model"

    @property
    def url_prefix(self) -> str:
        """What huggingface_hub puts before the repo id in /resolve/ URLs and hub pages."""
        return "datasets/" if self.repo_type == "dataset" else ""

    def resolve(self, revision: str) -> str | None:
        if revision == self.sha:
            return self.sha
        return self.refs.get(revision)


@dataclass
class RecordedRequest:
    method: str
    path: str  # unquoted path, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class FakeHub:
    """Threaded HTTP server holding fake repos; `url` is the value for HF_ENDPOINT."""

    def __init__(self, *, lfs_via_cdn: bool = False) -> None:
        # With lfs_via_cdn, /resolve/ answers LFS files with a 302 to another host name
        # (localhost instead of 127.0.0.1), as the hub does to its CDN: huggingface_hub then does
        # not follow the HEAD and sends the GET there without the Authorization header.
        self.lfs_via_cdn = lfs_via_cdn
        self.repos: dict[str, FakeRepo] = {}  # model repos, by id
        self.datasets: dict[str, FakeRepo] = {}  # dataset repos, by id
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cdn_url = f"http://localhost:{self.port}"
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        # Drop huggingface_hub's pooled keep-alive connections to this server.
        from huggingface_hub.utils import close_session

        close_session()

    # -- repos -------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: Path | Mapping[str, bytes],
        *,
        gated: bool = False,
        tokens: tuple[str, ...] = (),
        lfs: Mapping[str, bool] | None = None,
        branch: str = "main",
        repo_type: str = "model",
    ) -> FakeRepo:
        """Serve `files` (a directory, or path -> bytes) as `repo_id` at one commit on `branch`.

        `repo_type` is "model" (served under /api/models/ and /{repo}/resolve/) or "dataset"
        (/api/datasets/ and /datasets/{repo}/resolve/).
        """
        if repo_type not in REPO_TYPES:
            raise ValueError(f"repo_type must be one of {REPO_TYPES}, not {repo_type!r}")
        if isinstance(files, Path):
            contents = {
                p.relative_to(files).as_posix(): p.read_bytes()
                for p in sorted(files.rglob("*"))
                if p.is_file()
            }
        else:
            contents = dict(files)
        lfs = lfs or {}
        fake_files = {
            path: FakeFile.from_bytes(path, data, lfs.get(path)) for path, data in contents.items()
        }
        digest = hashlib.sha1(usedforsecurity=False)
        # A dataset's commit differs from a model's with the same id and files.
        digest.update((repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}").encode())
        for path in sorted(fake_files):
            digest.update(f"{path}\0{fake_files[path].git_sha1}\0".encode())
        repo = FakeRepo(
            repo_id=repo_id,
            files=fake_files,
            sha=digest.hexdigest(),
            gated=gated,
            tokens=frozenset(tokens),
            repo_type=repo_type,
        )
        repo.refs[branch] = repo.sha
        with self._lock:
            self._of_type(repo_type)[repo_id] = repo
        return repo

    def _of_type(self, repo_type: str) -> dict[str, FakeRepo]:
        return self.datasets if repo_type == "dataset" else self.repos

    def corrupt(
        self, repo_id: str, filename: str, data: bytes | None = None, *, repo_type: str = "model"
    ) -> None:
        """Serve other bytes for `filename` while keeping the advertised size and hashes.

        Without `data` the last byte is flipped (same size, so only a hash check notices).
        """
        fake = self._of_type(repo_type)[repo_id].files[filename]
        if data is None:
            data = fake.data[:-1] + bytes([fake.data[-1] ^ 0xFF])
        fake.data = data

    # -- request log -------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def downloads(self) -> list[str]:
        """Files whose bytes were sent (GET on /resolve/ or the fake CDN), in request order."""
        with self._lock:
            return [
                _file_from_path(r.path)
                for r in self.requests
                if r.method == "GET" and ("/resolve/" in r.path or r.path.startswith("/_cdn/"))
            ]

    def find_cdn_file(self, repo_id: str, sha256: str, repo_type: str = "model") -> FakeFile | None:
        repo = self._of_type(repo_type).get(repo_id)
        if repo is None:
            return None
        return next((f for f in repo.files.values() if f.sha256 == sha256), None)

    def find_repo(self, raw: str, repo_type: str = "model") -> tuple[FakeRepo, str] | None:
        """The repo of that type whose id prefixes `raw` (ids may have one or two segments) and
        the rest."""
        with self._lock:
            candidates = sorted(self._of_type(repo_type).values(), key=lambda r: -len(r.repo_id))
        for repo in candidates:
            if raw == repo.repo_id or raw.startswith(repo.repo_id + "/"):
                return repo, raw[len(repo.repo_id) :]
        return None


# The fake CDN's key of a dataset repo starts with this ("@" cannot occur in a repo id), so a
# model and a dataset with the same id keep apart there too.
_CDN_DATASET = "@datasets/"


def _cdn_key(repo: FakeRepo) -> str:
    return f"{_CDN_DATASET}{repo.repo_id}" if repo.repo_type == "dataset" else repo.repo_id


def _file_from_path(path: str) -> str:
    if path.startswith("/_cdn/"):
        return path.rsplit("/", 1)[-1]
    return path.split("/resolve/", 1)[1].split("/", 1)[1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hub: FakeHub


class _HubError(Exception):
    def __init__(
        self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx2 expects from the hub
    timeout = 10  # idle keep-alive connections do not pin a thread forever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean; the hub records requests instead

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    # -- routing -----------------------------------------------------------------------------

    def _dispatch(self, *, head: bool) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        raw_path, query = split.path, parse_qs(split.query)
        hub.record(
            RecordedRequest(
                method=self.command,
                path=unquote(raw_path),
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
            )
        )
        try:
            if raw_path.startswith("/api/models/"):
                self._api(raw_path[len("/api/models/") :], query, "model")
            elif raw_path.startswith("/api/datasets/"):
                self._api(raw_path[len("/api/datasets/") :], query, "dataset")
            elif raw_path.startswith("/_cdn/"):
                self._cdn(raw_path[len("/_cdn/") :], head=head)
            elif raw_path.startswith("/datasets/") and "/resolve/" in raw_path:
                self._resolve(raw_path[len("/datasets") :], "dataset", head=head)
            elif "/resolve/" in raw_path:
                self._resolve(raw_path, "model", head=head)
            else:
                raise _HubError(404, None, "Not Found")
        except _HubError as err:
            body = json.dumps({"error": err.message}).encode()
            headers = {"Content-Type": "application/json", "X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            headers.update(err.headers)
            self._send(err.status, headers, body, head=head)

    def _repo(self, raw: str, repo_type: str) -> tuple[FakeRepo, str]:
        found = self.server.hub.find_repo(raw, repo_type)
        if found is None:
            repo_id = "/".join(raw.split("/")[:2])
            raise _HubError(404, "RepoNotFound", f"Repository {repo_id} not found")
        return found

    def _commit(self, repo: FakeRepo, raw_revision: str) -> str:
        revision = unquote(raw_revision)
        commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    # -- /api/models, /api/datasets -----------------------------------------------------------

    def _api(self, raw: str, query: dict[str, list[str]], repo_type: str) -> None:
        repo, rest = self._repo(raw, repo_type)
        if rest in ("", "/"):
            self._info(repo, repo.refs.get("main", repo.sha), query)
        elif rest.startswith("/revision/"):
            self._info(repo, self._commit(repo, rest[len("/revision/") :]), query)
        elif rest.startswith("/tree/"):
            raw_rev, _, raw_sub = rest[len("/tree/") :].partition("/")
            commit = self._commit(repo, raw_rev)
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            self._tree(repo, commit, unquote(raw_sub).strip("/"), recursive)
        else:
            raise _HubError(404, None, "Not Found")

    def _info(self, repo: FakeRepo, commit: str, query: dict[str, list[str]]) -> None:
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, fake in sorted(repo.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=fake.size, blobId=fake.git_sha1)
                if fake.sha256:
                    sibling["lfs"] = {"sha256": fake.sha256, "size": fake.size, "pointerSize": 134}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": commit[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit,
            "lastModified": _DATE,
            "createdAt": _DATE,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(f.size for f in repo.files.values()),
        }
        if repo.repo_type == "model":
            info.update(modelId=repo.repo_id, library_name="transformers", spaces=[])
        else:  # what the hub adds for a dataset (no card here)
            info.update(description="", citation="", paperswithcode_id=None)
        self._json(info)

    def _tree(self, repo: FakeRepo, commit: str, sub: str, recursive: bool) -> None:
        prefix = f"{sub}/" if sub else ""
        if sub and not any(p.startswith(prefix) for p in repo.files):
            raise _HubError(404, "EntryNotFound", f"{sub} does not exist on {commit}")
        entries: list[dict[str, Any]] = []
        dirs: set[str] = set()
        for path, fake in sorted(repo.files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            # Directories on the way to the file (all of them if recursive, else the first).
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                dirs.add(prefix + "/".join(parts[:depth]))
            if len(parts) > 1 and not recursive:
                continue
            entry: dict[str, Any] = {
                "type": "file",
                "oid": fake.git_sha1,
                "size": fake.size,
                "path": path,
            }
            if fake.sha256:
                entry["lfs"] = {"oid": fake.sha256, "size": fake.size, "pointerSize": 134}
            entries.append(entry)
        oid = hashlib.sha1(usedforsecurity=False)
        for d in sorted(dirs):
            oid.update(d.encode())
            entries.append({"type": "directory", "oid": oid.hexdigest(), "path": d})
        self._json(entries)

    # -- file content ------------------------------------------------------------------------

    def _resolve(self, raw_path: str, repo_type: str, *, head: bool) -> None:
        """`raw_path` is /{repo}/resolve/{rev}/{file}, without a /datasets prefix."""
        raw_repo, _, rest = raw_path.lstrip("/").partition("/resolve/")
        found = self.server.hub.find_repo(raw_repo, repo_type)
        if found is None or found[1]:
            raise _HubError(404, "RepoNotFound", f"Repository {raw_repo} not found")
        repo = found[0]
        raw_rev, _, raw_file = rest.partition("/")
        commit = self._commit(repo, raw_rev)
        filename = unquote(raw_file)
        fake = repo.files.get(filename)
        if fake is None:
            raise _HubError(
                404,
                "EntryNotFound",
                f"{filename} does not exist on {commit}",
                {"X-Repo-Commit": commit},
            )
        if repo.gated:
            self._check_gate(repo)

        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{fake.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{filename.rsplit("/", 1)[-1]}"',
        }
        if fake.sha256:
            headers["X-Linked-Etag"] = f'"{fake.sha256}"'
            headers["X-Linked-Size"] = str(fake.size)
            if self.server.hub.lfs_via_cdn:
                location = f"{self.server.hub.cdn_url}/_cdn/{_cdn_key(repo)}/{fake.sha256}"
                headers.update(Location=location, ETag=f'"{fake.git_sha1}"')
                self._send(302, headers, b"", head=head)
                return
        self._send_file(fake, headers, head=head)

    def _cdn(self, raw: str, *, head: bool) -> None:
        # A signed CDN URL: no Authorization needed (nor sent by huggingface_hub).
        key, _, sha256 = unquote(raw).rpartition("/")
        repo_type, repo_id = "model", key
        if key.startswith(_CDN_DATASET):
            repo_type, repo_id = "dataset", key[len(_CDN_DATASET) :]
        fake = self.server.hub.find_cdn_file(repo_id, sha256, repo_type)
        if fake is None:
            raise _HubError(404, None, "No such blob")
        self._send_file(fake, {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes"}, head=head)

    def _check_gate(self, repo: FakeRepo) -> None:
        auth = self.headers.get("Authorization")
        page = f"{self.server.hub.url}/{repo.url_prefix}{repo.repo_id}"
        if not auth:
            raise _HubError(
                401,
                "GatedRepo",
                f"Access to {repo.repo_type} {repo.repo_id} is restricted. You must have access "
                "to it and be authenticated to access it. Please log in.",
            )
        if auth not in {f"Bearer {t}" for t in repo.tokens}:
            raise _HubError(
                403,
                "GatedRepo",
                f"Access to {repo.repo_type} {repo.repo_id} is restricted and you are not in the "
                f"authorized list. Visit {page} to ask for access.",
            )

    def _send_file(self, fake: FakeFile, headers: dict[str, str], *, head: bool) -> None:
        data = fake.data
        headers["Content-Type"] = "application/octet-stream"
        if head:
            # HEAD reports the advertised size: corruption only shows once bytes are read.
            self._send(200, headers, b"", head=True, length=fake.size)
            return
        status, total = 200, len(data)
        range_header = self.headers.get("Range")
        if range_header:
            match = _RANGE_RE.match(range_header.strip())
            start, end = _parse_range(match, total) if match else (None, None)
            if start is None or end is None:
                headers["Content-Range"] = f"bytes */{total}"
                raise _HubError(416, None, "Requested Range Not Satisfiable", headers)
            status, data = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        self._send(status, headers, data, head=False)

    # -- low level ---------------------------------------------------------------------------

    def _json(self, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self._send(200, {"Content-Type": "application/json"}, body, head=self.command == "HEAD")

    def _send(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        *,
        head: bool,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)


def _parse_range(match: re.Match[str], total: int) -> tuple[int | None, int | None]:
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return None, None
    if first == "":  # suffix range: the last N bytes
        n = int(last)
        return (max(total - n, 0), total - 1) if n > 0 and total > 0 else (None, None)
    start = int(first)
    end = min(int(last), total - 1) if last else total - 1
    if start >= total or start > end:
        return None, None
    return start, end


# ----------------------------------------------------------------------------- fixture


@pytest.fixture
def fake_hub(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeHub]:
    """A running FakeHub that huggingface_hub (in this process and in subprocesses) talks to.

    huggingface_hub reads its settings from the environment once, at import, into
    `huggingface_hub.constants`; the URL template used by hf_hub_download and the module-level
    `HfApi` are built from them. So the environment is set (for subprocesses, which import
    afresh) *and* the already-imported constants are patched. Tokens from the developer's
    environment or `hf auth login` are hidden, the cache lives in a temp dir, telemetry and the
    agent-registry lookup are off, and Xet is disabled (huggingface_hub 2.4 uses hf_xet whenever
    it is installed, HF_HUB_DISABLE_XET is unset and the server sends Xet headers).
    """
    import huggingface_hub.hf_api as hf_api
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    # The module, not the `tqdm` class that huggingface_hub.utils re-exports under that name.
    hf_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")

    home = tmp_path_factory.mktemp("hf_home")
    hub = FakeHub().start()

    env = {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_XET_CACHE",
        "HF_OIDC_RESOURCE",
        "HUGGINGFACE_CO_STAGING",
    ):
        monkeypatch.delenv(key, raising=False)

    patches = {
        "ENDPOINT": hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
    }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value)  # raising: fails loudly if 2.x renames one
    monkeypatch.setattr(hf_api.api, "endpoint", hub.url)  # the module-level HfApi()
    monkeypatch.setitem(hf_tqdm.progress_bar_states, "_global", False)

    close_session()  # a pooled client may predate NO_PROXY
    try:
        yield hub
    finally:
        hub.stop()

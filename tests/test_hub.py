"""Tests of longllada.hub against a local fake hub (no internet needed)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import stat
from pathlib import Path

import httpx2
import pytest
import torch
from fake_hub import FakeHub
from huggingface_hub import constants as hf_constants
from huggingface_hub.utils._runtime import is_xet_available
from safetensors.torch import save_file
from tokenizers import Tokenizer, models

from longllada.files import write_json
from longllada.hub import (
    DEFAULT_PATTERNS,
    DownloadError,
    fetch_snapshot,
    use_local_dir,
    verify_checkpoint,
)

REPO = "fake-org/tiny-llada"
SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"
INDEX = "model.safetensors.index.json"
WANTED = {
    "config.json",
    "generation_config.json",
    INDEX,
    SHARD1,
    SHARD2,
    "tokenizer.json",
    "tokenizer_config.json",
    "modeling_llada.py",
    "configuration_llada.py",
}
UNWANTED = {"pytorch_model.bin", "README.md", ".gitattributes", "original/params.json"}
TOKEN = "hf_fakeSecretToken123456789"


def _tokenizer_json() -> str:
    """A small tokenizer.json that `tokenizers` loads (the download check loads it)."""
    vocab = {"[UNK]": 0, "a": 1, "b": 2}
    return Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")).to_str()


def _shard_tensors() -> dict[str, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return {
        SHARD1: {
            "model.embed_tokens.weight": torch.randn(16, 8, generator=gen),
            "model.layers.0.mlp.weight": torch.randn(8, 8, generator=gen).to(torch.bfloat16),
        },
        SHARD2: {
            "model.layers.1.mlp.weight": torch.randn(8, 8, generator=gen).to(torch.bfloat16),
            "lm_head.weight": torch.randn(16, 8, generator=gen),
        },
    }


def _nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small hub-layout checkpoint with files that must and must not be downloaded."""
    root = tmp_path_factory.mktemp("fake_repo")
    shards = _shard_tensors()
    weight_map = {}
    for shard, tensors in shards.items():
        save_file(tensors, str(root / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, shard))
    total = sum(_nbytes(t) for t in shards.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (root / INDEX).write_text(json.dumps(index, indent=2))
    config = {
        "architectures": ["LLaDAModelLM"],
        "model_type": "llada",
        "auto_map": {"AutoModel": "modeling_llada.LLaDAModelLM"},
        "rope_theta": 500000.0,
    }
    (root / "config.json").write_text(json.dumps(config))
    (root / "generation_config.json").write_text('{"eos_token_id": 1}')
    (root / "tokenizer.json").write_text(_tokenizer_json())
    (root / "tokenizer_config.json").write_text('{"model_max_length": 4096}')
    (root / "modeling_llada.py").write_text("class LLaDAModelLM:\n    pass\n")
    (root / "configuration_llada.py").write_text("class LLaDAConfig:\n    pass\n")
    (root / "pytorch_model.bin").write_bytes(b"\x80\x04pickle that must never be fetched")
    (root / "README.md").write_text("# tiny\n")
    (root / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    (root / "original").mkdir()
    (root / "original" / "params.json").write_text("{}")
    return root


@pytest.fixture
def checkpoint(repo_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the repo's wanted files, to break in verify_checkpoint tests."""
    dst = tmp_path / "ckpt"
    dst.mkdir()
    for name in WANTED:
        shutil.copy2(repo_dir / name, dst / name)
    return dst


def _local_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).parts[0].startswith(".")
    }


def _chain(err: BaseException) -> str:
    """Message, repr and causes of an exception, to look for leaked secrets."""
    texts = []
    seen: BaseException | None = err
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


# ----------------------------------------------------------------------------- fake hub


def test_fake_hub_basics(fake_hub: FakeHub, repo_dir: Path) -> None:
    repo = fake_hub.add_repo(REPO, repo_dir)
    assert fake_hub.url == hf_constants.ENDPOINT
    assert not is_xet_available()
    url = f"{fake_hub.url}/{REPO}/resolve/main/{SHARD1}"
    data = (repo_dir / SHARD1).read_bytes()
    head = httpx2.head(url)
    assert head.headers["X-Repo-Commit"] == repo.sha
    assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert int(head.headers["X-Linked-Size"]) == len(data)
    part = httpx2.get(url, headers={"Range": "bytes=10-"})
    assert part.status_code == 206
    assert part.content == data[10:]
    assert part.headers["Content-Range"] == f"bytes 10-{len(data) - 1}/{len(data)}"
    assert httpx2.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    missing = httpx2.head(f"{fake_hub.url}/{REPO}/resolve/main/nope.json")
    assert missing.headers["X-Error-Code"] == "EntryNotFound"


# ----------------------------------------------------------------------------- fetch_snapshot


def test_fetch_downloads_only_wanted_files(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path
) -> None:
    repo = fake_hub.add_repo(REPO, repo_dir)
    local = tmp_path / "dl"

    manifest = fetch_snapshot(REPO, "main", local)

    assert _local_files(local) == WANTED
    assert not set(fake_hub.downloads()) & UNWANTED
    assert sorted(fake_hub.downloads()) == sorted(WANTED)
    assert manifest["source"] == "hub"
    assert manifest["repo_id"] == REPO
    assert manifest["requested_revision"] == "main"
    assert manifest["commit_sha"] == repo.sha
    assert manifest["snapshot_dir"] == str(local.resolve())
    assert manifest["patterns"] == list(DEFAULT_PATTERNS)
    ver = manifest["verification"]
    shards = _shard_tensors()
    assert ver["shards"] == [SHARD1, SHARD2]
    assert ver["n_tensors"] == 4
    assert ver["total_bytes"] == sum(_nbytes(t) for t in shards.values())
    by_name = {f["name"]: f for f in ver["files"]}
    assert set(by_name) == WANTED
    for name in WANTED:
        data = (repo_dir / name).read_bytes()
        assert by_name[name] == {
            "name": name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    # The commit that metadata came from is the one downloaded.
    resolve = [r for r in fake_hub.requests if "/resolve/" in r.path]
    assert resolve and all(f"/resolve/{repo.sha}/" in r.path for r in resolve)


def test_rerun_is_a_noop_and_resumes_missing_files(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path
) -> None:
    fake_hub.add_repo(REPO, repo_dir)
    local = tmp_path / "dl"
    first = fetch_snapshot(REPO, "main", local)
    mtimes = {p: p.stat().st_mtime_ns for p in local.rglob("*") if p.is_file()}

    fake_hub.clear_requests()
    assert fetch_snapshot(REPO, "main", local) == first
    assert fake_hub.downloads() == []
    assert not [r for r in fake_hub.requests if "/resolve/" in r.path]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    (local / SHARD2).unlink()  # an interrupted run
    fake_hub.clear_requests()
    assert fetch_snapshot(REPO, "main", local) == first
    assert fake_hub.downloads() == [SHARD2]


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
def test_downloaded_files_honour_the_umask(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path, mask: int, mode: int
) -> None:
    # Group members on a shared file system read the checkpoint and its hub metadata sidecar.
    fake_hub.add_repo(REPO, repo_dir)
    local = tmp_path / "dl"
    old = os.umask(mask)
    try:
        fetch_snapshot(REPO, "main", local)
    finally:
        os.umask(old)
    sidecar = local / ".cache" / "longllada" / "hub_metadata.json"
    assert sidecar.is_file()
    for path in [sidecar, *(local / name for name in WANTED)]:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_gated_without_token(fake_hub: FakeHub, repo_dir: Path, tmp_path: Path) -> None:
    fake_hub.add_repo(REPO, repo_dir, gated=True, tokens=(TOKEN,))
    with pytest.raises(DownloadError) as info:
        fetch_snapshot(REPO, "main", tmp_path / "dl")
    msg = str(info.value)
    assert REPO in msg
    assert "gated" in msg
    assert "HF_TOKEN" in msg
    assert "No token was given" in msg
    assert f"{fake_hub.url}/{REPO}" in msg  # where to accept the license


@pytest.mark.parametrize("how", ["env", "argument"])
def test_gated_with_token(
    fake_hub: FakeHub,
    repo_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    repo = fake_hub.add_repo(REPO, repo_dir, gated=True, tokens=(TOKEN,))
    if how == "env":
        monkeypatch.setenv("HF_TOKEN", TOKEN)
    manifest = fetch_snapshot(
        REPO, "main", tmp_path / "dl", token=TOKEN if how == "argument" else None
    )

    assert manifest["commit_sha"] == repo.sha
    resolve = [r for r in fake_hub.requests if "/resolve/" in r.path]
    assert resolve and all(r.authorization == f"Bearer {TOKEN}" for r in resolve)
    out = tmp_path / "out" / "manifest.json"
    write_json(out, manifest)
    assert TOKEN not in json.dumps(manifest)
    assert TOKEN not in out.read_text()
    assert not any(TOKEN in p.read_text(errors="replace") for p in tmp_path.rglob("*.json"))
    assert TOKEN not in caplog.text


def test_gated_with_wrong_token_does_not_leak_it(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_hub.add_repo(REPO, repo_dir, gated=True, tokens=(TOKEN,))
    wrong = "hf_wrongButStillSecret987654321"
    with pytest.raises(DownloadError) as info:
        fetch_snapshot(REPO, "main", tmp_path / "dl", token=wrong)
    assert "token was given" in str(info.value)
    assert "gated" in str(info.value)
    assert wrong not in _chain(info.value)
    assert wrong not in caplog.text
    assert any(r.authorization == f"Bearer {wrong}" for r in fake_hub.requests)


def test_lfs_redirect_to_cdn_keeps_token_on_the_hub(repo_dir: Path, tmp_path: Path) -> None:
    # Only the CDN mode differs from the fixture's hub: reuse the fixture's settings by hand.
    hub = FakeHub(lfs_via_cdn=True).start()
    try:
        mp = pytest.MonkeyPatch()
        mp.setattr(hf_constants, "ENDPOINT", hub.url)
        mp.setattr(
            hf_constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        )
        mp.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
        mp.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        mp.delenv("HF_TOKEN", raising=False)
        try:
            repo = hub.add_repo(REPO, repo_dir, gated=True, tokens=(TOKEN,))
            manifest = fetch_snapshot(REPO, "main", tmp_path / "dl", token=TOKEN)
        finally:
            mp.undo()
    finally:
        hub.stop()
    assert manifest["commit_sha"] == repo.sha
    cdn = [r for r in hub.requests if r.path.startswith("/_cdn/")]
    assert {r.path.rsplit("/", 1)[-1] for r in cdn} == {
        repo.files[SHARD1].sha256,
        repo.files[SHARD2].sha256,
    }
    assert all(r.authorization is None for r in cdn)


def test_missing_repo_and_revision(fake_hub: FakeHub, repo_dir: Path, tmp_path: Path) -> None:
    fake_hub.add_repo(REPO, repo_dir)
    with pytest.raises(DownloadError, match="fake-org/does-not-exist was not found"):
        fetch_snapshot("fake-org/does-not-exist", "main", tmp_path / "a")
    with pytest.raises(DownloadError, match="no revision 'v9.9'"):
        fetch_snapshot(REPO, "v9.9", tmp_path / "b")
    with pytest.raises(DownloadError, match="not a valid hub repo id"):
        fetch_snapshot("not//valid", "main", tmp_path / "c")


def test_corrupt_shard_is_reported_and_removed(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path
) -> None:
    fake_hub.add_repo(REPO, repo_dir)
    fake_hub.corrupt(REPO, SHARD2)  # same size, different bytes
    local = tmp_path / "dl"
    with pytest.raises(DownloadError, match=SHARD2) as info:
        fetch_snapshot(REPO, "main", local)
    assert "sha256" in str(info.value)
    assert not (local / SHARD2).exists()  # so that a re-run downloads it again
    assert (local / SHARD1).exists()

    fake_hub.corrupt(REPO, SHARD2, (repo_dir / SHARD2).read_bytes())  # the transfer heals
    fake_hub.clear_requests()
    fetch_snapshot(REPO, "main", local)
    assert fake_hub.downloads() == [SHARD2]


def test_unreachable_hub(fake_hub: FakeHub, repo_dir: Path, tmp_path: Path) -> None:
    fake_hub.stop()  # nothing listens on the port any more
    with pytest.raises(DownloadError) as info:
        fetch_snapshot(REPO, "main", tmp_path / "dl")
    msg = str(info.value)
    assert "unreachable" in msg
    assert "local_dir:" in msg
    assert "HF_HUB_OFFLINE" in msg


def test_offline_mode_uses_the_filled_local_dir(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = fake_hub.add_repo(REPO, repo_dir)
    local = tmp_path / "dl"
    online = fetch_snapshot(REPO, "main", local)

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    fake_hub.clear_requests()
    offline = fetch_snapshot(REPO, "main", local)
    assert fake_hub.requests == []
    assert offline == online
    assert offline["commit_sha"] == repo.sha

    (local / "modeling_llada.py").unlink()
    with pytest.raises(DownloadError, match="modeling_llada.py listed on the hub but missing"):
        fetch_snapshot(REPO, "main", local)

    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        fetch_snapshot(REPO, "main", tmp_path / "empty")


# ----------------------------------------------------------------------------- verify_checkpoint


def test_verify_ok_single_file(tmp_path: Path, checkpoint: Path) -> None:
    single = tmp_path / "single"
    single.mkdir()
    tensors = {"w": torch.zeros(3, 5), "b": torch.ones(5, dtype=torch.float16)}
    save_file(tensors, str(single / "model.safetensors"))
    shutil.copy2(checkpoint / "config.json", single / "config.json")
    shutil.copy2(checkpoint / "tokenizer.json", single / "tokenizer.json")
    summary = verify_checkpoint(single)
    assert summary["shards"] == ["model.safetensors"]
    assert summary["n_tensors"] == 2
    assert summary["total_bytes"] == 3 * 5 * 4 + 5 * 2


def test_verify_missing_shard(checkpoint: Path) -> None:
    (checkpoint / SHARD2).unlink()
    with pytest.raises(DownloadError, match=f"Shard {SHARD2} .* is missing"):
        verify_checkpoint(checkpoint)


def test_verify_tensor_in_index_not_in_shard(checkpoint: Path) -> None:
    index = json.loads((checkpoint / INDEX).read_text())
    index["weight_map"]["model.ghost.weight"] = SHARD1
    (checkpoint / INDEX).write_text(json.dumps(index))
    with pytest.raises(DownloadError, match=f"model.ghost.weight: .*{SHARD1}"):
        verify_checkpoint(checkpoint)


def test_verify_tensor_in_wrong_shard(checkpoint: Path) -> None:
    index = json.loads((checkpoint / INDEX).read_text())
    index["weight_map"]["lm_head.weight"] = SHARD1
    (checkpoint / INDEX).write_text(json.dumps(index))
    with pytest.raises(DownloadError, match="lm_head.weight"):
        verify_checkpoint(checkpoint)


def test_verify_extra_tensor(checkpoint: Path) -> None:
    tensors = _shard_tensors()[SHARD2] | {"model.stowaway": torch.zeros(2)}
    save_file(tensors, str(checkpoint / SHARD2))
    with pytest.raises(DownloadError, match=f"{SHARD2} holds .*model.stowaway"):
        verify_checkpoint(checkpoint)


def test_verify_total_size_mismatch(checkpoint: Path) -> None:
    index = json.loads((checkpoint / INDEX).read_text())
    index["metadata"]["total_size"] += 2
    (checkpoint / INDEX).write_text(json.dumps(index))
    with pytest.raises(DownloadError, match="total_size"):
        verify_checkpoint(checkpoint)


def test_verify_truncated_shard(checkpoint: Path) -> None:
    data = (checkpoint / SHARD1).read_bytes()
    (checkpoint / SHARD1).write_bytes(data[:-4])
    with pytest.raises(DownloadError, match=f"{SHARD1} is truncated"):
        verify_checkpoint(checkpoint)


@pytest.mark.parametrize(
    ("breakage", "pattern"),
    [
        ("no_config", "config.json is missing"),
        ("bad_config", "config.json .* not valid JSON"),
        ("no_tokenizer", "No tokenizer"),
        ("no_weights", "No weights"),
    ],
)
def test_verify_layout_errors(checkpoint: Path, breakage: str, pattern: str) -> None:
    if breakage == "no_config":
        (checkpoint / "config.json").unlink()
    elif breakage == "bad_config":
        (checkpoint / "config.json").write_text("{not json")
    elif breakage == "no_tokenizer":
        (checkpoint / "tokenizer.json").unlink()
    else:
        (checkpoint / INDEX).unlink()
    with pytest.raises(DownloadError, match=pattern):
        verify_checkpoint(checkpoint)


@pytest.mark.parametrize(
    "name",
    [
        "config.json",
        INDEX,
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
    ],
)
@pytest.mark.parametrize("how", ["truncated", "not_an_object"])
def test_verify_every_json_file_is_parsed(checkpoint: Path, name: str, how: str) -> None:
    path = checkpoint / name
    text = path.read_text() if path.exists() else '{"a": 1}'
    if how == "truncated":
        path.write_text(text[: len(text) // 2])
    else:
        path.write_text("[1, 2]")
    with pytest.raises(DownloadError, match=re.escape(name)) as info:
        verify_checkpoint(checkpoint)
    assert "JSON" in str(info.value)
    assert str(checkpoint) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        '{"version": "1.0", "model": {"type": "BPE"}}',  # valid JSON, not a tokenizer
        '{"model": {"type": "NoSuchModel"}}',
    ],
)
def test_verify_tokenizer_json_is_loaded(checkpoint: Path, content: str) -> None:
    (checkpoint / "tokenizer.json").write_text(content)
    with pytest.raises(DownloadError, match=r"tokenizer\.json.*tokenizers") as info:
        verify_checkpoint(checkpoint)
    assert str(checkpoint) in str(info.value)


def test_fetch_reports_a_corrupt_tokenizer(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "repo"
    shutil.copytree(repo_dir, broken)
    (broken / "tokenizer.json").write_text(_tokenizer_json()[:40])
    fake_hub.add_repo(REPO, broken)
    local = tmp_path / "dl"
    with pytest.raises(DownloadError, match="tokenizer.json") as info:
        fetch_snapshot(REPO, "main", local)
    assert "not valid JSON" in str(info.value)


def test_verify_expected_metadata(checkpoint: Path) -> None:
    data = (checkpoint / SHARD1).read_bytes()
    good = {
        SHARD1: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        "config.json": {"size": (checkpoint / "config.json").stat().st_size, "sha256": None},
        "pytorch_model.bin": {"size": 1, "sha256": "0" * 64},  # not downloaded: skipped
    }
    verify_checkpoint(checkpoint, good)
    with pytest.raises(DownloadError, match=f"{SHARD1}: sha256"):
        verify_checkpoint(checkpoint, {SHARD1: {"size": len(data), "sha256": "0" * 64}})
    with pytest.raises(DownloadError, match=f"{SHARD1}: {len(data)} bytes"):
        verify_checkpoint(checkpoint, {SHARD1: {"size": len(data) + 1, "sha256": None}})


# ----------------------------------------------------------------------------- local dirs


def test_use_local_dir_needs_no_network(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("use_local_dir opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    manifest = use_local_dir(checkpoint)
    assert manifest["source"] == "local"
    assert manifest["repo_id"] is None
    assert manifest["commit_sha"] is None
    assert manifest["requested_revision"] is None
    assert manifest["snapshot_dir"] == str(checkpoint.resolve())
    assert manifest["verification"]["n_tensors"] == 4
    assert {f["name"] for f in manifest["verification"]["files"]} == WANTED
    assert _local_files(checkpoint) == WANTED  # used in place, nothing written

    with pytest.raises(DownloadError, match="does not exist"):
        use_local_dir(checkpoint / "nope")


# ----------------------------------------------------------------- a copied or moved project


def _project_with(checkpoint: Path, project: Path) -> Path:
    """`project` holding a copy of `checkpoint` at results/checkpoints/m/hub and its
    download.json, written (as the download rule does) with `project` as working directory."""
    from longllada import checkpoints

    hub = project / "results/checkpoints/m/hub"
    shutil.copytree(checkpoint, hub)
    os.chdir(project)
    manifest = use_local_dir(Path("results/checkpoints/m/hub"))
    manifest_file = project / "results/checkpoints/m/download.json"
    write_json(manifest_file, manifest)
    assert checkpoints.model_dir(manifest_file) == hub
    return manifest_file


def test_a_copied_project_loads_its_own_checkpoint(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp -a` of a project: download.json names its checkpoint relative to the project (the
    working directory), so the copy loads its own files, not the original tree's; a checkpoint
    outside the project stays absolute, and an older manifest's absolute path still works."""
    from longllada import checkpoints

    monkeypatch.chdir(tmp_path)
    original = _project_with(checkpoint, tmp_path / "project")
    assert json.loads(original.read_text())["snapshot_dir"] == "results/checkpoints/m/hub"
    copy = tmp_path / "elsewhere/deeper/copy"
    shutil.copytree(tmp_path / "project", copy, symlinks=True)
    shutil.rmtree(tmp_path / "project")
    os.chdir(copy)
    manifest = Path("results/checkpoints/m/download.json")
    assert checkpoints.model_dir(manifest) == copy / "results/checkpoints/m/hub"

    outside = use_local_dir(checkpoint)  # a local_dir outside the project
    assert outside["snapshot_dir"] == str(checkpoint.resolve())
    write_json(manifest, outside)
    assert checkpoints.model_dir(manifest) == checkpoint.resolve()


def test_a_checkpoint_changed_after_its_download_check_stops_the_job(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file the download check verified is checked again when a job loads the checkpoint:
    its size, its sha256 up to hub.HASHED_AT_LOAD bytes, and beyond that the shards' headers
    against the index; a mismatch names the file and the manifest."""
    from longllada import checkpoints, hub

    monkeypatch.chdir(tmp_path)
    manifest = _project_with(checkpoint, tmp_path / "project")
    root = tmp_path / "project/results/checkpoints/m/hub"
    where = re.escape(str(manifest))

    tok = root / "tokenizer_config.json"
    saved = tok.read_bytes()
    tok.write_bytes(saved.replace(b"4096", b"8192"))  # same size, other bytes
    with pytest.raises(DownloadError, match=rf"{re.escape(str(tok))}: its sha256 .*{where}"):
        checkpoints.model_dir(manifest)
    tok.write_bytes(saved)
    checkpoints.model_dir(manifest)

    shard = root / SHARD2
    saved = shard.read_bytes()
    shard.write_bytes(saved + b"\0")
    with pytest.raises(DownloadError, match=rf"{re.escape(str(shard))} has {len(saved) + 1} "):
        checkpoints.model_dir(manifest)
    shard.unlink()
    with pytest.raises(DownloadError, match=rf"{re.escape(str(shard))} is missing; {where}"):
        checkpoints.model_dir(manifest)
    shard.write_bytes(saved)

    # Shards above the hashing limit: size and header. An index of the same size that puts a
    # tensor in the other shard is caught by the header check.
    monkeypatch.setattr(hub, "HASHED_AT_LOAD", 0)
    index = json.loads((root / INDEX).read_text())
    tensor = next(t for t, s in index["weight_map"].items() if s == SHARD1)
    index["weight_map"][tensor] = SHARD2
    text = json.dumps(index, indent=2)
    assert len(text) == (root / INDEX).stat().st_size
    (root / INDEX).write_text(text)
    with pytest.raises(DownloadError, match=rf"Tensor {re.escape(tensor)}: .*{where}"):
        checkpoints.model_dir(manifest)

"""Tests of longllada.benchmark_data against the local fake hub (no internet needed)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import httpx2
import pytest
from fake_hub import FakeHub

from longllada.benchmark_data import (
    DataError,
    check_local_files,
    fetch_hub_files,
    local_files_state,
    manifest_digest,
    write_manifest,
)
from longllada.files import canonical, digest

DATASET = "fake-org/needlebench"
HAYSTACK = "en_un_asr.jsonl"  # served as an LFS file (the hub gives its sha256)
NEEDLES = "needles.jsonl"  # a small file kept in git (the hub gives its blob sha1 only)
FILES = [NEEDLES, HAYSTACK]
TOKEN = "hf_fakeSecretToken123456789"


@pytest.fixture
def contents() -> dict[str, bytes]:
    haystack = b"".join(
        json.dumps({"text": f"Speech {i}: the assembly met and adjourned."}).encode() + b"\n"
        for i in range(400)
    )
    return {
        HAYSTACK: haystack,
        NEEDLES: b'{"needle": "The secret number is 42.", "language": "English"}\n',
        "README.md": b"# needlebench\n",
        "zh_finance.jsonl": b'{"text": "x"}\n',
    }


@pytest.fixture
def dataset(fake_hub: FakeHub, contents: dict[str, bytes]):
    return fake_hub.add_repo(DATASET, contents, lfs={HAYSTACK: True}, repo_type="dataset")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fake_hub_serves_datasets_apart_from_models(
    fake_hub: FakeHub, dataset, contents: dict[str, bytes]
) -> None:
    model = fake_hub.add_repo(DATASET, {"config.json": b"{}"})  # same id, a model repo
    assert model.sha != dataset.sha
    info = httpx2.get(f"{fake_hub.url}/api/datasets/{DATASET}", params={"blobs": "true"}).json()
    assert info["sha"] == dataset.sha
    assert {s["rfilename"] for s in info["siblings"]} == set(contents)
    lfs = next(s for s in info["siblings"] if s["rfilename"] == HAYSTACK)
    assert lfs["lfs"]["sha256"] == _sha256(contents[HAYSTACK])
    plain = next(s for s in info["siblings"] if s["rfilename"] == NEEDLES)
    assert "lfs" not in plain and plain["size"] == len(contents[NEEDLES])
    assert httpx2.get(f"{fake_hub.url}/api/models/{DATASET}").json()["sha"] == model.sha

    url = f"{fake_hub.url}/datasets/{DATASET}/resolve/main/{HAYSTACK}"
    head = httpx2.head(url)
    assert head.headers["X-Repo-Commit"] == dataset.sha
    assert head.headers["X-Linked-Etag"] == f'"{_sha256(contents[HAYSTACK])}"'
    assert httpx2.get(url).content == contents[HAYSTACK]
    # The model repo has no such file, the dataset no config.json: the namespaces stay apart.
    model_url = f"{fake_hub.url}/{DATASET}/resolve/main/{HAYSTACK}"
    assert httpx2.head(model_url).headers["X-Error-Code"] == "EntryNotFound"
    ds_config = f"{fake_hub.url}/datasets/{DATASET}/resolve/main/config.json"
    assert httpx2.head(ds_config).headers["X-Error-Code"] == "EntryNotFound"
    missing = httpx2.get(f"{fake_hub.url}/api/datasets/fake-org/tiny-model")
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "RepoNotFound"


def test_fetch_verifies_and_records_the_commit(
    fake_hub: FakeHub, dataset, contents: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "data"
    manifest = fetch_hub_files(DATASET, "main", FILES, out)

    assert manifest["source"] == {"hub_id": DATASET, "revision": "main", "commit": dataset.sha}
    assert manifest["dir"] == str(out.resolve())
    assert manifest["files"] == {
        name: {"sha256": _sha256(contents[name]), "size": len(contents[name])} for name in FILES
    }
    for name in FILES:
        assert (out / name).read_bytes() == contents[name]
    assert not (out / "README.md").exists()  # only what was asked for
    assert sorted(fake_hub.downloads()) == sorted(FILES)
    # Files are fetched at the resolved commit, never at the branch.
    resolve = [r.path for r in fake_hub.requests if "/resolve/" in r.path]
    assert resolve and all(
        p.startswith(f"/datasets/{DATASET}/resolve/{dataset.sha}/") for p in resolve
    )

    fake_hub.clear_requests()
    again = fetch_hub_files(DATASET, "main", FILES, out)
    assert again == manifest
    assert fake_hub.downloads() == []
    assert [r.path for r in fake_hub.requests if "/resolve/" in r.path] == []


def test_pinned_commit_gives_an_identical_manifest(
    fake_hub: FakeHub, dataset, tmp_path: Path
) -> None:
    branch = fetch_hub_files(DATASET, "main", FILES, tmp_path / "data")
    fake_hub.clear_requests()
    pinned = fetch_hub_files(DATASET, dataset.sha, FILES, tmp_path / "data")
    assert fake_hub.downloads() == []  # same commit, same directory: nothing to fetch
    assert pinned["source"] == {"hub_id": DATASET, "revision": dataset.sha, "commit": dataset.sha}
    assert {k: v for k, v in pinned.items() if k != "source"} == {
        k: v for k, v in branch.items() if k != "source"
    }

    fresh = fetch_hub_files(DATASET, dataset.sha, FILES, tmp_path / "data")
    write_manifest(tmp_path / "a.json", pinned)
    write_manifest(tmp_path / "b.json", fresh)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert manifest_digest(pinned) == manifest_digest(fresh) == digest(canonical(fresh))
    assert manifest_digest(pinned) != manifest_digest(branch)  # the requested revision differs
    assert json.loads((tmp_path / "a.json").read_text()) == pinned


def test_token_is_sent_but_never_recorded(
    fake_hub: FakeHub, contents: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_repo(DATASET, contents, repo_type="dataset", gated=True, tokens=(TOKEN,))
    with pytest.raises(DataError, match="gated") as info:
        fetch_hub_files(DATASET, "main", FILES, tmp_path / "none")
    assert "HF_TOKEN" in str(info.value)
    with pytest.raises(DataError, match=NEEDLES) as info:
        fetch_hub_files(DATASET, "main", FILES, tmp_path / "wrong", token="hf_wrongToken0000")
    assert "hf_wrongToken0000" not in str(info.value)

    monkeypatch.setenv("HF_TOKEN", TOKEN)  # taken from the environment when none is given
    manifest = fetch_hub_files(DATASET, "main", FILES, tmp_path / "data")
    resolve = [r for r in fake_hub.requests if "/resolve/" in r.path and r.method == "GET"]
    assert resolve and all(r.authorization == f"Bearer {TOKEN}" for r in resolve)
    write_manifest(tmp_path / "m.json", manifest)
    assert TOKEN not in (tmp_path / "m.json").read_text()
    leaked = [
        p
        for p in (tmp_path / "data").rglob("*")
        if p.is_file() and TOKEN.encode() in p.read_bytes()
    ]
    assert leaked == []


def test_missing_file_is_named(fake_hub: FakeHub, dataset, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="zh_lost.jsonl") as info:
        fetch_hub_files(DATASET, "main", [NEEDLES, "zh_lost.jsonl"], tmp_path / "data")
    msg = str(info.value)
    assert DATASET in msg and "main" in msg
    assert HAYSTACK in msg  # what the repo does have
    assert fake_hub.downloads() == []  # checked before anything is fetched


def test_unknown_repo_and_revision(fake_hub: FakeHub, dataset, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fake-org/nope was not found"):
        fetch_hub_files("fake-org/nope", "main", FILES, tmp_path / "a")
    with pytest.raises(DataError, match="no revision 'v9.9'"):
        fetch_hub_files(DATASET, "v9.9", FILES, tmp_path / "b")
    with pytest.raises(DataError, match="no revision"):
        fetch_hub_files(DATASET, "0" * 40, FILES, tmp_path / "c")
    # A model repo is not a dataset repo.
    fake_hub.add_repo("fake-org/only-a-model", {NEEDLES: b"x\n"})
    with pytest.raises(DataError, match="only-a-model was not found"):
        fetch_hub_files("fake-org/only-a-model", "main", [NEEDLES], tmp_path / "d")


@pytest.mark.parametrize("name", [HAYSTACK, NEEDLES])
def test_corrupt_download_is_named_and_removed(
    fake_hub: FakeHub, dataset, contents: dict[str, bytes], tmp_path: Path, name: str
) -> None:
    out = tmp_path / "data"
    fake_hub.corrupt(DATASET, name, repo_type="dataset")  # same size, other bytes
    with pytest.raises(DataError, match=name) as info:
        fetch_hub_files(DATASET, "main", FILES, out)
    msg = str(info.value)
    bad = bytearray(contents[name])
    bad[-1] ^= 0xFF
    if name == HAYSTACK:
        assert _sha256(bytes(bad)) in msg and _sha256(contents[name]) in msg
    else:
        assert dataset.files[name].git_sha1 in msg
    assert not (out / name).exists()

    fake_hub.corrupt(DATASET, name, contents[name], repo_type="dataset")  # the transfer heals
    fake_hub.clear_requests()
    manifest = fetch_hub_files(DATASET, "main", FILES, out)
    assert name in fake_hub.downloads()
    assert manifest["files"][name]["sha256"] == _sha256(contents[name])


def test_truncated_download_is_an_error(
    fake_hub: FakeHub, dataset, contents: dict[str, bytes], tmp_path: Path
) -> None:
    fake_hub.corrupt(DATASET, HAYSTACK, contents[HAYSTACK][:-10], repo_type="dataset")
    with pytest.raises(DataError, match=HAYSTACK) as info:
        fetch_hub_files(DATASET, "main", FILES, tmp_path / "data")
    assert "re-run" in str(info.value)
    assert not (tmp_path / "data" / HAYSTACK).exists()


def test_unreachable_hub(fake_hub: FakeHub, dataset, tmp_path: Path) -> None:
    fake_hub.stop()
    with pytest.raises(DataError, match="unreachable") as info:
        fetch_hub_files(DATASET, "main", FILES, tmp_path / "data", data_key="needlebench")
    assert "data.needlebench" in str(info.value) and "local directory" in str(info.value)


def test_offline_mode(
    fake_hub: FakeHub, dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="HF_HUB_OFFLINE") as info:
        fetch_hub_files(DATASET, "main", FILES, tmp_path / "data")
    assert "local directory" in str(info.value)
    assert fake_hub.requests == []


@pytest.mark.parametrize(
    ("files", "pattern"),
    [
        ([], "No data files"),
        (["../x.jsonl"], "not a relative file name"),
        (["/etc/passwd"], "not a relative file name"),
        ([".cache/huggingface/x"], "not a relative file name"),
        ([NEEDLES, NEEDLES], "requested twice"),
        (NEEDLES, "not the string"),
    ],
)
def test_bad_file_lists(fake_hub: FakeHub, tmp_path: Path, files: list[str], pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        check_local_files(tmp_path, files)
    with pytest.raises(DataError, match=pattern):
        fetch_hub_files(DATASET, "main", files, tmp_path / "data")
    assert fake_hub.requests == []  # refused before asking the hub


# ----------------------------------------------------------------------------- local directory


def _local(tmp_path: Path, contents: dict[str, bytes]) -> Path:
    root = tmp_path / "local"
    root.mkdir()
    for name in FILES:
        (root / name).write_bytes(contents[name])
    return root


def test_local_directory(tmp_path: Path, contents: dict[str, bytes]) -> None:
    root = _local(tmp_path, contents)
    manifest = check_local_files(root, FILES)
    assert manifest == {
        "source": {"local_dir": str(root.resolve())},
        "dir": str(root.resolve()),
        "files": {
            name: {"sha256": _sha256(contents[name]), "size": len(contents[name])} for name in FILES
        },
    }
    assert manifest_digest(manifest) == manifest_digest(check_local_files(root, FILES))


def test_local_directory_errors(tmp_path: Path, contents: dict[str, bytes]) -> None:
    root = _local(tmp_path, contents)
    with pytest.raises(DataError, match="does not exist"):
        check_local_files(tmp_path / "nowhere", FILES)
    (root / HAYSTACK).unlink()
    with pytest.raises(DataError, match=str(root / HAYSTACK)):
        check_local_files(root, FILES)
    (root / HAYSTACK).write_bytes(b"")
    with pytest.raises(DataError, match=f"{HAYSTACK} is empty"):
        check_local_files(root, FILES)
    (root / HAYSTACK).unlink()
    (root / HAYSTACK).mkdir()
    with pytest.raises(DataError, match=f"{HAYSTACK} is not a regular file"):
        check_local_files(root, FILES)


def test_local_files_state_follows_edits(tmp_path: Path, contents: dict[str, bytes]) -> None:
    root = _local(tmp_path, contents)
    before = local_files_state(root, [*FILES, "absent.jsonl"])
    assert before["absent.jsonl"] is None
    assert before[NEEDLES][0] == len(contents[NEEDLES])
    assert local_files_state(root, [*FILES, "absent.jsonl"]) == before

    st = (root / NEEDLES).stat()
    (root / NEEDLES).write_bytes(contents[NEEDLES].upper())  # same size, new content
    os.utime(root / NEEDLES, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    after = local_files_state(root, [*FILES, "absent.jsonl"])
    assert after[NEEDLES] != before[NEEDLES]
    assert after[HAYSTACK] == before[HAYSTACK]
    assert local_files_state(tmp_path / "nowhere", FILES) == {name: None for name in FILES}


# --- a pinned zip archive (OpenCompass's own needlebench.zip, ruler.zip) -----------------------

# Each benchmark's archive as OpenCompass lays it out (extracted under its data/ folder): the
# files in one top folder, beside others that no job asks for.
ARCHIVES = {
    "niah": ("needlebench.zip", "needlebench/", ["PaulGrahamEssays.jsonl", "names.json"]),
    "ruler": ("ruler.zip", "ruler/", ["README.md"]),
}


def _zip(path: Path, members: dict[str, bytes]) -> tuple[str, str, str]:
    """A zip at `path`; returns its file:// URL, md5 and sha256."""
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = path.read_bytes()
    return path.as_uri(), hashlib.md5(raw).hexdigest(), hashlib.sha256(raw).hexdigest()


@pytest.fixture(params=sorted(ARCHIVES))
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """A benchmark's archive: its files (the data check's list), URL, md5 and sha256."""
    from longllada import data_sources
    from longllada.config import DATA_KEY

    bench = request.param
    name, top, others = ARCHIVES[bench]
    files = list(data_sources.FILES[bench])
    members = {f"{top}{n}": f"{n} contents\n".encode() for n in [*files, *others]}
    url, md5, sha256 = _zip(tmp_path / name, members)
    return {
        "benchmark": bench,
        "key": DATA_KEY[bench],
        "files": files,
        "others": others,
        "url": url,
        "md5": md5,
        "sha256": sha256,
    }


def test_archive_is_checked_extracted_and_not_fetched_again(tmp_path: Path, archive) -> None:
    from longllada.benchmark_data import fetch_archive_files

    url, md5, sha256, files = archive["url"], archive["md5"], archive["sha256"], archive["files"]
    out = tmp_path / "data"
    manifest = fetch_archive_files(url, files, out, md5=md5, data_key=archive["key"])
    assert manifest["source"] == {"archive": url, "md5": md5, "sha256": sha256}
    assert manifest["dir"] == str(out.resolve())
    for name in files:
        data = (out / name).read_bytes()
        assert data == f"{name} contents\n".encode()
        assert manifest["files"][name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
    assert not any((out / n).exists() for n in archive["others"])  # only what was asked for
    # The archive gone: the files of this very archive are not downloaded again.
    Path(url.removeprefix("file://")).unlink()
    again = fetch_archive_files(url, files, out, md5=md5, sha256=sha256)
    assert manifest_digest(again) == manifest_digest(manifest)
    # An extracted file edited by hand: fetched again, which now fails (no archive).
    (out / files[-1]).write_text("edited")
    with pytest.raises(DataError, match=f"could not download .*data.{archive['key']}"):
        fetch_archive_files(url, files, out, md5=md5, data_key=archive["key"])


def test_archive_errors_are_named(tmp_path: Path, archive) -> None:
    from longllada.benchmark_data import fetch_archive_files

    url, md5, files, key = archive["url"], archive["md5"], archive["files"], archive["key"]
    with pytest.raises(DataError, match="pin it with md5 or sha256"):
        fetch_archive_files(url, files, tmp_path / "a")
    # A changed archive: the message names it, its md5 and the pinned one; nothing extracted.
    with pytest.raises(DataError) as info:
        fetch_archive_files(url, files, tmp_path / "b", md5="0" * 32, data_key=key)
    msg = str(info.value)
    assert url in msg and f"md5 {md5} is not the pinned {'0' * 32} in data.{key}" in msg
    assert not any((tmp_path / "b" / n).exists() for n in files)
    with pytest.raises(DataError, match="sha256 .* is not the pinned"):
        fetch_archive_files(url, files, tmp_path / "c", md5=md5, sha256="f" * 64)
    with pytest.raises(DataError, match="0 members named extra.json") as info:
        fetch_archive_files(url, [*files, "extra.json"], tmp_path / "d", md5=md5)
    assert url in str(info.value) and files[0] in str(info.value)  # what it does hold
    twice, md5_twice, _ = _zip(
        tmp_path / "twice.zip", {f"a/{files[0]}": b"1", f"b/{files[0]}": b"2"}
    )
    with pytest.raises(DataError, match=f"2 members named {files[0]}"):
        fetch_archive_files(twice, [files[0]], tmp_path / "e", md5=md5_twice)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    bad_md5 = hashlib.md5(b"not a zip").hexdigest()
    with pytest.raises(DataError, match=f"{bad.as_uri()}: not a zip archive"):
        fetch_archive_files(bad.as_uri(), files, tmp_path / "f", md5=bad_md5)


def test_archive_through_the_data_check(tmp_path: Path, archive, monkeypatch) -> None:
    """The niah_data / ruler_data rule's own call (`data_sources.prepare`) on an archive spec:
    the manifest it writes is the one the prompts jobs read, and it is rewritten byte for byte
    when nothing changed."""
    from longllada import data_sources
    from longllada.benchmarks import niah, ruler

    monkeypatch.chdir(tmp_path)  # the default dir, resources/data/<key>, is relative
    spec = {"archive": archive["url"], "md5": archive["md5"]}
    bench, key = archive["benchmark"], archive["key"]
    files = data_sources.files_of(bench, None)
    out = tmp_path / data_sources.manifest_path(key)
    manifest = data_sources.prepare(bench, spec, files, out)
    assert data_sources.kind(spec) == "archive"
    assert manifest["dir"] == f"resources/data/{key}"  # inside the project: relative
    first = out.read_bytes()
    data_sources.prepare(bench, spec, files, out)
    assert out.read_bytes() == first
    read = niah.read_data_manifest if bench == "niah" else ruler.read_data_manifest
    assert read(out)["files"] == manifest["files"]
    assert Path(read(out)["dir"]) == (tmp_path / "resources/data" / key).resolve()


def test_paper_config_takes_needlebench_from_opencompass_zip() -> None:
    """The paper's NeedleBench data: OpenCompass's needlebench.zip (0.4.2's datasets_info.py
    entry), pinned by md5 like the RULER and LongBench zips."""
    import yaml

    from longllada import data_sources

    data = yaml.safe_load((Path(__file__).parents[1] / "config/paper.yaml").read_text())["data"]
    assert data["needlebench"] == {
        "archive": "http://opencompass.oss-cn-shanghai.aliyuncs.com/datasets/data/needlebench.zip",
        "md5": "dad5c903ebfea16eaf186b8997aeedad",
    }
    assert {data_sources.kind(data[k]) for k in ("needlebench", "ruler", "longbench")} == {
        "archive"
    }
    assert data_sources.FILES["niah"] == ("en_un_asr.jsonl", "needles.jsonl")


def test_a_copied_project_reads_its_own_data(tmp_path: Path, archive, monkeypatch) -> None:
    """`cp -a` of a project: the data manifest names its directory relative to the project (the
    working directory), so the copy's prompts jobs read the copy's files."""
    from longllada import data_sources
    from longllada.benchmarks import niah, ruler

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    spec = {"archive": archive["url"], "md5": archive["md5"]}
    bench, key = archive["benchmark"], archive["key"]
    out = Path(data_sources.manifest_path(key))
    data_sources.prepare(bench, spec, data_sources.files_of(bench, None), out)
    copy = tmp_path / "a/b/copy"
    shutil.copytree(project, copy, symlinks=True)
    shutil.rmtree(project)
    monkeypatch.chdir(copy)
    read = niah.read_data_manifest if bench == "niah" else ruler.read_data_manifest
    assert Path(read(out)["dir"]) == copy / "resources/data" / key


def test_an_edited_fetched_or_generated_data_file_is_named(
    tmp_path: Path, archive, contents: dict[str, bytes], monkeypatch
) -> None:
    """Only a local data directory is watched (an edit reruns its check); a fetched or generated
    file edited by hand would never be used nor noticed. It is named when the config is loaded
    (`data_sources.changed_files`, through Study.input_problems) and when a prompts job reads
    it, with how to restore the pinned bytes (delete the manifest, run the check alone) or how
    to run on edited data (a local directory)."""
    from longllada import data_sources
    from longllada.benchmarks import niah, ruler

    monkeypatch.chdir(tmp_path)
    spec = {"archive": archive["url"], "md5": archive["md5"]}
    bench, key = archive["benchmark"], archive["key"]
    files = data_sources.files_of(bench, None)
    out = Path(data_sources.manifest_path(key))
    data_sources.prepare(bench, spec, files, out)
    assert data_sources.changed_files(bench, spec, tmp_path) == []
    edited = tmp_path / "resources/data" / key / files[0]
    original = edited.read_bytes()
    os.utime(edited)  # newer than the manifest, the same bytes: hashed, and fine
    assert data_sources.changed_files(bench, spec, tmp_path) == []

    edited.write_bytes(original.upper())  # same size, other bytes
    problems = data_sources.changed_files(bench, spec, tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"data.{key}: {edited} changed after the data check ({out}): ")
    remedy = f"delete {out} and run the check alone, `snakemake {out} [--configfile FILE]`"
    assert "pinned archive" in problems[0] and remedy in problems[0]
    assert f"set data.{key} to it (a local directory" in problems[0]
    read = niah.read_data_manifest if bench == "niah" else ruler.read_data_manifest
    with pytest.raises(ValueError, match=re.escape(remedy)):
        read(out)
    edited.unlink()
    assert "missing" in data_sources.changed_files(bench, spec, tmp_path)[0]

    # The remedy restores the archive's bytes, and the same manifest.
    before = out.read_bytes()
    out.unlink()
    data_sources.prepare(bench, spec, files, out)
    assert edited.read_bytes() == original and out.read_bytes() == before
    assert data_sources.changed_files(bench, spec, tmp_path) == []

    # A local directory is watched by its check's fingerprint instead: not named here.
    local = _local(tmp_path, contents)
    assert data_sources.changed_files(bench, str(local), tmp_path) == []

"""The resumable JSONL job loop and the atomic JSON writer."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from longllada import files
from longllada.jobs import (
    SETTINGS_KEY,
    JsonlCheckpoint,
    OutputLocked,
    lock_path,
    partial_path,
    partials,
    read_jsonl,
    run_resumable,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def make_samples(n: int = 10) -> list[dict]:
    return [{"id": f"s{i:02d}", "x": i} for i in range(n)]


def square(sample: dict) -> dict:
    return {"id": sample["id"], "y": sample["x"] ** 2}


class Counter:
    """A `process` that records which samples it was called on."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.fail_at = fail_at

    def __call__(self, sample: dict) -> dict:
        self.calls.append(sample["id"])
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise RuntimeError("boom")
        return square(sample)


def clean_bytes(tmp_path: Path, n: int = 10) -> bytes:
    out = tmp_path / "clean" / "out.jsonl"
    out.parent.mkdir()
    run_resumable(make_samples(n), square, out)
    return out.read_bytes()


def test_clean_run_writes_in_prompt_order(tmp_path):
    out = tmp_path / "out.jsonl"
    samples = make_samples()
    samples.reverse()  # order must follow the prompts, not the ids
    assert run_resumable(samples, square, out) == 10
    rows = list(read_jsonl(out))
    assert [r["id"] for r in rows] == [s["id"] for s in samples]
    assert all(r["y"] == int(r["id"][1:]) ** 2 for r in rows)
    assert not partial_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_failure_keeps_partial_and_rerun_computes_only_the_rest(tmp_path):
    out = tmp_path / "out.jsonl"
    failing = Counter(fail_at=6)
    with pytest.raises(RuntimeError, match="boom"):
        run_resumable(make_samples(), failing, out)
    assert not out.exists()
    raw = partial_path(out).read_bytes()
    lines = raw.split(b"\n")
    assert lines[-1] == b""  # ends with a newline: only complete lines
    assert json.loads(lines[0]) == {SETTINGS_KEY: {}}  # the header: what the results depend on
    assert len(lines[1:-1]) == 5
    assert [json.loads(x)["id"] for x in lines[1:-1]] == [f"s{i:02d}" for i in range(5)]

    working = Counter()
    assert run_resumable(make_samples(), working, out) == 5
    assert working.calls == [f"s{i:02d}" for i in range(5, 10)]
    assert not partial_path(out).exists()
    assert out.read_bytes() == clean_bytes(tmp_path)


def test_torn_last_line_is_dropped_and_truncated(tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError):
        run_resumable(make_samples(), Counter(fail_at=4), out)
    part = partial_path(out)
    valid = part.read_bytes()
    assert valid.count(b"\n") == 1 + 3  # the settings header and three samples
    torn = json.dumps({"id": "s03", "y": 9})[:9].encode()
    with open(part, "ab") as f:
        f.write(torn)
    assert part.stat().st_size == len(valid) + len(torn)

    ckpt = JsonlCheckpoint(out)
    assert sorted(ckpt.done) == ["s00", "s01", "s02"]
    assert part.read_bytes() == valid  # truncated back to the complete lines

    working = Counter()
    assert run_resumable(make_samples(), working, out) == 7
    assert working.calls == [f"s{i:02d}" for i in range(3, 10)]
    assert out.read_bytes() == clean_bytes(tmp_path)


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from longllada.jobs import run_resumable

    out, marker = sys.argv[1], Path(sys.argv[2])
    samples = [{"id": f"s{i:02d}", "x": i} for i in range(10)]

    def process(sample):
        if sample["x"] == 3:  # samples 0..2 are already fsynced to the partial file
            marker.write_text("3")
        time.sleep(0.3)
        return {"id": sample["id"], "y": sample["x"] ** 2}

    run_resumable(samples, process, out)
    """
)


def test_sigkill_leaves_partial_and_rerun_resumes(tmp_path):
    out = tmp_path / "out.jsonl"
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"child exited early: {proc.communicate()[1].decode()}")
            if time.monotonic() > deadline:
                pytest.fail("child never reached sample 3")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    assert not out.exists()
    done_lines = partial_path(out).read_bytes().count(b"\n") - 1  # minus the settings header
    assert 3 <= done_lines < 10

    working = Counter()
    assert run_resumable(make_samples(), working, out) == 10 - done_lines
    assert working.calls == [f"s{i:02d}" for i in range(done_lines, 10)]
    assert [r["id"] for r in read_jsonl(out)] == [f"s{i:02d}" for i in range(10)]
    assert not partial_path(out).exists()
    assert out.read_bytes() == clean_bytes(tmp_path)


def test_duplicate_ids_rejected(tmp_path):
    out = tmp_path / "out.jsonl"
    samples = make_samples(3) + [{"id": "s01", "x": 99}]
    with pytest.raises(ValueError, match="not unique"):
        run_resumable(samples, square, out)
    assert not out.exists()
    assert not partial_path(out).exists()


def test_read_jsonl_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2}\n{not json\n')
    rows = read_jsonl(path)
    assert next(rows) == {"id": 1}
    assert next(rows) == {"id": 2}
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}:4: not a JSON line")):
        next(rows)


def test_write_json_atomic_round_trip(tmp_path):
    path = tmp_path / "sub" / "result.json"
    obj = {"b": [1, 2.5, None], "a": {"λ": "ünïcode"}, "ok": True}
    files.write_json(path, obj)
    assert files.read_json(path) == obj
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
    files.write_json(path, {"a": 1})  # overwrite in place, still no temp file left
    assert files.read_json(path) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def _interrupted(out: Path, settings: dict, n_done: int, value: int) -> None:
    """A job under `settings` killed after `n_done` samples."""
    done: list[str] = []

    def process(sample: dict) -> dict:
        if len(done) == n_done:
            raise RuntimeError("killed")
        done.append(sample["id"])
        return {"value": value}

    with pytest.raises(RuntimeError, match="killed"):
        run_resumable(SAMPLES, process, out, settings=settings)


SAMPLES = [{"id": f"s{i}"} for i in range(6)]


def test_switching_settings_a_b_a_loses_nothing(tmp_path: Path) -> None:
    """Finding 3: each header has a partial of its own; going back to A resumes A's work."""
    out = tmp_path / "preds.jsonl"
    a, b = {"steps": 32}, {"steps": 16}
    _interrupted(out, a, 2, value=1)
    _interrupted(out, b, 3, value=2)
    assert partials(out) == sorted([partial_path(out, a), partial_path(out, b)])
    assert len(list(read_jsonl(partial_path(out, a)))) == 1 + 2  # header + A's two samples

    calls: list[str] = []

    def process(sample: dict) -> dict:
        calls.append(sample["id"])
        return {"value": 1}

    assert run_resumable(SAMPLES, process, out, settings=a) == 4
    assert calls == ["s2", "s3", "s4", "s5"]  # A's first two were kept through B
    assert {r["value"] for r in read_jsonl(out)} == {1}
    # A's partial became the output; B's is still there for a later switch back to B.
    assert partials(out) == [partial_path(out, b)]
    assert len(list(read_jsonl(partial_path(out, b)))) == 1 + 3


def test_partial_header_is_its_name(tmp_path: Path) -> None:
    out = tmp_path / "preds.jsonl"
    _interrupted(out, {"steps": 32}, 1, value=1)
    part = partial_path(out, {"steps": 32})
    assert json.loads(part.read_text().splitlines()[0]) == {SETTINGS_KEY: {"steps": 32}}
    # A hand-moved partial under another settings' name is refused, never mixed in.
    part.rename(partial_path(out, {"steps": 16}))
    with pytest.raises(RuntimeError, match="does not match its name"):
        run_resumable(SAMPLES, square_id, out, settings={"steps": 16})


def square_id(sample: dict) -> dict:
    return {"value": 0}


def test_non_finite_value_stops_the_job(tmp_path: Path) -> None:
    """Finding 4: NaN never reaches a file as the non-standard token `NaN`."""
    out = tmp_path / "preds.jsonl"

    def process(sample: dict) -> dict:
        return {"loss": float("nan") if sample["id"] == "s2" else 1.0}

    with pytest.raises(ValueError, match=r"sample 's2': a non-finite number"):
        run_resumable(SAMPLES, process, out)
    assert not out.exists()
    rows = list(read_jsonl(partial_path(out)))
    assert [r["id"] for r in rows[1:]] == ["s0", "s1"]  # the finite ones are kept


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from longllada.jobs import run_resumable

    out, marker = sys.argv[1], Path(sys.argv[2])

    def process(sample):
        marker.write_text("started")
        time.sleep(60)
        return {}

    run_resumable([{"id": "s0"}], process, out)
    """
)


def test_second_writer_stops_naming_the_holder(tmp_path: Path) -> None:
    """Finding 3: an orphaned job still writing an output; a rerun must not append to it."""
    out = tmp_path / "out.jsonl"
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert proc.poll() is None, "holder exited early"
            assert time.monotonic() < deadline, "holder never started"
            time.sleep(0.02)
        calls = Counter()
        with pytest.raises(OutputLocked, match=rf"being written by pid {proc.pid} on "):
            run_resumable(make_samples(3), calls, out)
        assert calls.calls == []
        assert lock_path(out).exists()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    # The holder is gone (killed): its lock went with it, and a rerun proceeds.
    assert run_resumable(make_samples(3), Counter(), out) == 3
    assert not lock_path(out).exists()


def test_progress_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="longllada.jobs")
    run_resumable(make_samples(4), square, tmp_path / "out.jsonl")
    lines = [r.getMessage() for r in caplog.records if "done," in r.getMessage()]
    assert lines[0].startswith("out.jsonl: 1/4 done, ")
    assert lines[-1].startswith("out.jsonl: 4/4 done, ") and "per minute, ETA" in lines[-1]


@pytest.mark.parametrize("bad", ['{"y": 4}', "[1, 2]"])
def test_a_partial_row_without_id_names_file_and_line(tmp_path: Path, bad: str) -> None:
    """A hand-edited partial whose row has no `id`: the file and line, not a bare KeyError."""
    out = tmp_path / "out.jsonl"
    part = partial_path(out, {"steps": 8})
    header = json.dumps({SETTINGS_KEY: {"steps": 8}})
    part.write_text(f'{header}\n{{"id": "s00", "y": 0}}\n{bad}\n{{"id": "s02", "y": 4}}\n')
    with pytest.raises(RuntimeError, match=rf"{re.escape(str(part))}:3: a row without 'id'"):
        run_resumable(make_samples(3), square, out, settings={"steps": 8})
    assert not out.exists() and part.exists()  # nothing written, nothing thrown away


def test_a_damaged_line_inside_a_partial_is_named_not_truncated(tmp_path: Path) -> None:
    """A line that is not JSON with finished rows after it is damage, not a torn end: the job
    stops naming file and line, and the rows after it are kept."""
    out = tmp_path / "out.jsonl"
    part = partial_path(out, {"steps": 8})
    header = json.dumps({SETTINGS_KEY: {"steps": 8}})
    text = f'{header}\n{{"id": "s00", "y": 0}}\n{{"id": "s01", "y\n{{"id": "s02", "y": 4}}\n'
    part.write_text(text)
    with pytest.raises(RuntimeError, match=rf"{re.escape(str(part))}:3: not a JSON line"):
        run_resumable(make_samples(3), square, out, settings={"steps": 8})
    assert part.read_text() == text  # nothing thrown away
    # A torn last line is still dropped and the job resumes.
    part.write_text(f'{header}\n{{"id": "s00", "y": 0}}\n{{"id": "s01", "y')
    assert run_resumable(make_samples(3), square, out, settings={"steps": 8}) == 2


def test_read_answers_is_the_one_join_check(tmp_path: Path) -> None:
    """The check every score rule joins predictions with (NIAH, and RULER and LongBench through
    join_shards): duplicates, rows without id, gaps and strays, each naming file and ids."""
    from longllada.jobs import read_answers

    def preds(name: str, *rows: str) -> Path:
        path = tmp_path / name
        path.write_text("".join(r + "\n" for r in rows))
        return path

    a = preds("a.jsonl", '{"id": "s0", "prediction": "x"}', '{"id": "s1", "prediction": "y"}')
    assert list(read_answers(["s0", "s1"], [a], "p.jsonl", None)) == ["s0", "s1"]
    twice = preds("t.jsonl", '{"id": "s0", "prediction": "x"}', '{"id": "s0", "prediction": "z"}')
    with pytest.raises(ValueError, match=r"t\.jsonl: sample s0 appears twice \(lines 1 and 2\)"):
        read_answers(["s0"], [twice], "p.jsonl", None)
    b = preds("b.jsonl", '{"id": "s1", "prediction": "y"}')
    with pytest.raises(ValueError, match=r"s1 is answered by two shards \(.*a\.jsonl:2 and .*b"):
        read_answers(["s0", "s1"], [a, b], "p.jsonl", None)
    no_id = preds("n.jsonl", '{"id": "s0", "prediction": "x"}', '{"prediction": "y"}')
    with pytest.raises(ValueError, match=r"n\.jsonl:2: a row without 'id'"):
        read_answers(["s0", "s1"], [no_id], "p.jsonl", None)
    with pytest.raises(
        ValueError,
        match=r"a\.jsonl does not match p\.jsonl \(sample limit 1\): 0 prompt\(s\) without an "
        r"answer \(e\.g\. \[\]\), 1 answer\(s\) to no selected prompt \(e\.g\. \['s1'\]\)",
    ):
        read_answers(["s0"], [a], "p.jsonl", 1)

"""Dream's random stream as the official runs drew it, whatever our sharding: LongBench's official
tasks come from OpenCompass's own SizePartitioner (the prompts job records them per row, as
`oc_task`), and a sharded Dream job restarts its stream exactly at their first samples.

(RULER, one stream per (task, length) file through chained shards, and the chain's checks are
in test_generation.py; which runs the workflow chains, in test_config.py.) The OpenCompass tests
are skipped when LONGLLADA_OPENCOMPASS_PYTHON is unset.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from longllada import benchmark_data, checkpoints, opencompass_env, prose
from longllada.benchmarks import longbench, longbench_data
from longllada.config import PAPER_SAMPLERS, Model, Run
from longllada.jobs import read_jsonl
from longllada.stages import generation

PYTHON = os.environ.get("LONGLLADA_OPENCOMPASS_PYTHON")
needs_oc = pytest.mark.skipif(not PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")
SEED = 2025
# (subset, records): the paper's three sizes, one small enough to stay one task, one just above
SIZES = (("trec", 200), ("multifieldqa_en", 150), ("lcc", 500), ("samsum", 40), ("qasper", 67))
# The paper's partitioner cut (BENCHMARKS.md, "Facts found later"): 4 x 50, 3 x 50, 8 of 63
PAPER_CUTS = {
    200: [(0, 50), (50, 100), (100, 150), (150, 200)],
    150: [(0, 50), (50, 100), (100, 150)],
    500: [(63 * k, min(63 * (k + 1), 500)) for k in range(8)],
    40: [(0, 40)],
}

# The partitioner called directly, on the subset's entry of the installed configs: its
# split_dataset's test_range strings (or none when the dataset is not split).
DIRECT = textwrap.dedent(
    """
    import json, os, sys, tempfile
    sys.path.insert(0, sys.argv[1])
    from longbench_facts import load_entries
    from opencompass.partitioners.size import SizePartitioner
    _, entries = load_entries()
    out = {}
    for subset, n in json.loads(sys.argv[2]):
        entry = entries[subset]
        with tempfile.TemporaryDirectory() as tmp:
            sizes = os.path.join(tmp, "dataset_size.json")
            with open(sizes, "w") as f:
                json.dump({entry["abbr"]: n}, f)
            p = SizePartitioner(tmp, max_task_size=1000, gen_task_coef=15,
                                dataset_size_path=sizes)
            if p.get_cost(entry) > p.max_task_size:
                splits = p.split_dataset(entry)
                out[subset] = [[c["abbr"], c["reader_cfg"]["test_range"]] for c in splits]
            else:
                out[subset] = [[entry["abbr"], None]]
    with open(sys.argv[3], "w") as f:
        json.dump(out, f)
    """
)


def _runs(rows: list[dict]) -> list[tuple[str, int, int]]:
    """(oc_task, first, stop) of the runs of equal oc_task in the rows."""
    out: list[tuple[str, int, int]] = []
    for i, row in enumerate(rows):
        if out and out[-1][0] == row["oc_task"]:
            out[-1] = (out[-1][0], out[-1][1], i + 1)
        else:
            out.append((row["oc_task"], i, i + 1))
    return out


def _write_subset(src: Path, dst: Path, subset: str, n: int) -> Path:
    """`n` records of a subset, the demo's repeated under new ids."""
    records = [json.loads(line) for line in (src / f"{subset}.jsonl").read_text().splitlines()]
    dst.mkdir(parents=True, exist_ok=True)
    with open(dst / f"{subset}.jsonl", "w", encoding="utf-8") as f:
        for k in range(n):
            record = dict(records[k % len(records)], _id=f"{subset}-{k}")
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return dst / f"{subset}.jsonl"


@pytest.fixture(scope="module")
def prepared() -> dict:
    return opencompass_env.prepare(PYTHON)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    essays = [text for _name, text in prose.paul_graham_essays()]
    return longbench_data.write_demo_data(tmp_path_factory.mktemp("lb") / "demo", essays, 3)


@pytest.fixture(scope="module")
def built(demo: Path, prepared: dict, tmp_path_factory) -> dict[str, list[dict]]:
    """The prompts of every SIZES subset (and an 8-record trec cut into tasks of 3 by a smaller
    max_task_size, for the generation test), in one OpenCompass process."""
    tmp = tmp_path_factory.mktemp("oc_tasks")
    jobs = []
    for subset, n in (*SIZES, ("small_trec", 8)):
        name = subset.removeprefix("small_")
        data = _write_subset(demo, tmp / f"data_{subset}", name, n)
        job = {
            "data_file": str(data),
            "subset": name,
            "out": str(tmp / f"{subset}.jsonl"),
            "params_out": str(tmp / f"{subset}.params.json"),
        }
        if subset == "small_trec":  # 8 x 15 = 120 > 45: tasks of 3 rows
            job["partitioner"] = {
                "type": "SizePartitioner",
                "max_task_size": 45,
                "gen_task_coef": 15,
            }
        jobs.append(job)
    spec = tmp / "spec.json"
    spec.write_text(json.dumps(jobs), encoding="utf-8")
    res = opencompass_env.run_script(prepared, longbench.PROMPTER, spec, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = {}
    for subset, _n in (*SIZES, ("small_trec", 8)):
        params = json.loads((tmp / f"{subset}.params.json").read_text(encoding="utf-8"))
        out[subset] = (list(read_jsonl(tmp / f"{subset}.jsonl")), params["partitioner"])
    return out


@pytest.fixture(scope="module")
def direct(prepared: dict, tmp_path_factory) -> dict[str, list]:
    tmp = tmp_path_factory.mktemp("direct")
    script, out = tmp / "direct.py", tmp / "out.json"
    script.write_text(DIRECT, encoding="utf-8")
    sizes = json.dumps([list(s) for s in SIZES])
    res = opencompass_env.run_script(prepared, script, longbench.OC_SIDE, sizes, out)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(out.read_text())


@needs_oc
def test_oc_tasks_are_opencompass_size_partitioner_tasks(built: dict, direct: dict) -> None:
    for subset, n in SIZES:
        rows, partitioner = built[subset]
        assert len(rows) == n
        runs = _runs(rows)
        want = []
        for abbr, test_range in direct[subset]:
            first, stop = (0, n) if test_range is None else _slice(test_range)
            want.append((abbr, first, min(stop, n)))
        assert runs == want, subset
        assert [(t["oc_task"], t["first"], t["stop"]) for t in partitioner["tasks"]] == want
        assert [t["test_range"] for t in partitioner["tasks"]] == [r for _a, r in direct[subset]]
        assert partitioner["class"] == "opencompass.partitioners.size.SizePartitioner"
        assert partitioner["arguments"] == {"max_task_size": 1000, "gen_task_coef": 15}
        assert partitioner["strategy"] == "heuristic"
        if n in PAPER_CUTS:
            assert [(a, b) for _t, a, b in runs] == PAPER_CUTS[n], subset
    # a new task just above 1000 / 15 samples: 67 -> 34 + 33
    assert [(a, b) for _t, a, b in _runs(built["qasper"][0])] == [(0, 34), (34, 67)]
    assert [t for t, _a, _b in _runs(built["trec"][0])] == [f"LongBench_trec_{k}" for k in range(4)]
    assert {r["oc_task"] for r in built["samsum"][0]} == {"LongBench_samsum"}  # not split


def _slice(test_range: str) -> tuple[int, int]:
    match = re.fullmatch(r"\[(\d+): *(\d+)\]", test_range)
    assert match, test_range
    return int(match[1]), int(match[2])


@needs_oc
def test_the_prompts_job_records_the_tasks_and_the_partitioner(
    demo: Path, prepared: dict, tmp_path: Path
) -> None:
    data = _write_subset(demo, tmp_path / "data", "multifieldqa_en", 150)
    manifest = tmp_path / "manifest.json"
    files = benchmark_data.check_local_files(data.parent, ("multifieldqa_en.jsonl",))
    benchmark_data.write_manifest(manifest, files)
    out, meta_out = tmp_path / "multifieldqa_en.jsonl", tmp_path / "multifieldqa_en.meta.json"
    meta = longbench.make_prompts(manifest, "multifieldqa_en", out, meta_out, prepared)
    assert json.loads(meta_out.read_text()) == meta
    assert meta["partitioner"]["class"] == "opencompass.partitioners.size.SizePartitioner"
    assert meta["partitioner"]["arguments"] == {"max_task_size": 1000, "gen_task_coef": 15}
    assert [(t["first"], t["stop"]) for t in meta["partitioner"]["tasks"]] == PAPER_CUTS[150]
    assert "partitioner" not in meta["opencompass_entry"]
    rows = list(read_jsonl(out))
    assert [(a, b) for _t, a, b in _runs(rows)] == PAPER_CUTS[150]
    assert rows[49]["oc_task"] == "LongBench_multifieldqa_en_0" != rows[50]["oc_task"]


# --- a sharded Dream job over the prompts the OpenCompass side wrote ---------------------------


@pytest.fixture(scope="module")
def dream(tmp_path_factory) -> tuple[Model, Path]:
    model = Model(
        key="dream_tiny_base",
        label="dream-tiny",
        family="dream",
        variant="base",
        t_train=256,
        rope_theta=10000.0,
        head_dim=16,
        dtype="float32",
        demo={"preset": "tiny", "seed": 5},
    )
    root = tmp_path_factory.mktemp("checkpoints")
    snapshot = checkpoints.build_demo(model, root / "demo_hub" / model.key)
    manifest = root / model.key / "download.json"
    checkpoints.materialize(model, snapshot, manifest)
    return model, manifest


def _job(
    dream, prompts: Path, out: Path, sample_range=None, continue_from=None, rng_group="oc_task"
) -> dict:
    model, manifest = dream
    sampler = {**PAPER_SAMPLERS["dream"], "steps": 4}
    return generation.run(
        model,
        Run("longbench", model.key, "dream", 1.0, tuple(sorted(sampler.items()))),
        {"sample_limit": None},
        checkpoint_file=manifest,
        prompts_file=prompts,
        output=out,
        seed=SEED,
        max_new_tokens=4,
        rng_group=rng_group,
        sample_range=sample_range,
        budget=160,
        continue_from=continue_from,
    )


def _answers(path: Path) -> list[tuple]:
    return [(r["id"], r["prediction"], r["rng_state"]) for r in read_jsonl(path)]


@needs_oc
def test_a_sharded_dream_job_restarts_exactly_at_the_official_tasks(
    built: dict, dream, tmp_path: Path
) -> None:
    rows, partitioner = built["small_trec"]
    prompts = tmp_path / "trec.jsonl"
    prompts.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tasks = [(t["first"], t["stop"]) for t in partitioner["tasks"]]
    assert tasks == [(0, 3), (3, 6), (6, 8)]
    # each official task alone, as its own OpenCompass process ran it: seeded at its first
    # sample, one stream through the rest
    want = []
    for first, stop in tasks:
        alone = tmp_path / f"task{first}.jsonl"
        alone.write_text("".join(json.dumps(r) + "\n" for r in rows[first:stop]))
        out = tmp_path / f"task{first}.predictions.jsonl"
        _job(dream, alone, out)
        want.extend(_answers(out))
    whole = tmp_path / "whole.predictions.jsonl"
    record = _job(dream, prompts, whole)
    assert _answers(whole) == want
    assert record["settings"]["rng_stream"]["seeded_at"] == [rows[a]["id"] for a, _b in tasks]
    assert longbench.RNG_GROUP == "oc_task"  # what the workflow's longbench_generate passes
    # the test tells streams apart: one stream through the subset answers otherwise
    one_stream = tmp_path / "one_stream.predictions.jsonl"
    _job(dream, prompts, one_stream, rng_group=None)
    assert _answers(one_stream)[:3] == want[:3] and _answers(one_stream) != want
    # our shards: points 2 and 7 inside official tasks (the stream continues), 4 ... 6 one
    # shard over a task boundary (it restarts there)
    files, previous = [], None
    for first, stop in ((0, 2), (2, 7), (7, 8)):
        out = tmp_path / f"4k_trec.samples{first}-{stop}.predictions.jsonl"
        record = _job(dream, prompts, out, (first, stop), previous)
        seeded = record["settings"]["rng_stream"]["seeded_at"]
        assert seeded == [rows[a]["id"] for a, _b in tasks if first <= a < stop]
        files.append(out)
        previous = out
    assert [a for f in files for a in _answers(f)] == want

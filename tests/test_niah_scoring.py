"""NIAH scoring through OpenCompass's evaluator, and the paper's aggregation."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from longllada import opencompass_env
from longllada.benchmarks import niah

ROOT = Path(__file__).resolve().parents[1]
PYTHON = os.environ.get("LONGLLADA_OPENCOMPASS_PYTHON")


def test_aggregation_equals_the_published_overall_scores() -> None:
    """Figure 2's published cells, fed as one sample each, give its published Overall Scores."""
    cells: dict[str, list[dict]] = {}
    with open(ROOT / "config/published/figure2_niah_cells.csv") as f:
        for row in csv.DictReader(f):
            cells.setdefault(row["model"], []).append(row)
    with open(ROOT / "config/published/niah_overall_scores.csv") as f:
        published = {
            r["model"]: float(r["overall"])
            for r in csv.DictReader(f)
            if r["figure"].startswith("2")
        }
    assert set(published) == set(cells)
    for model, rows in cells.items():
        agg = niah.aggregate(rows)
        assert len(agg["cells"]) == 66  # 6 lengths x 11 depths
        assert round(agg["overall"], 2) == pytest.approx(published[model], abs=0.005), model


def test_cells_average_their_repeats() -> None:
    rows = [
        {"length": 100, "depth": 0, "score": 100.0},
        {"length": 100, "depth": 0, "score": 0.0},
        {"length": 100, "depth": 50, "score": 100.0},
        {"length": 200, "depth": 0, "score": 40.0},
        {"length": 200, "depth": 50, "score": 20.0},
    ]
    agg = niah.aggregate(rows)
    assert agg["cells"] == {(100, 0): 50.0, (100, 50): 100.0, (200, 0): 40.0, (200, 50): 20.0}
    assert agg["n"][(100, 0)] == 2
    assert agg["by_length"] == {100: 75.0, 200: 30.0}
    assert agg["overall"] == 52.5
    with pytest.raises(ValueError, match="no NIAH scores"):
        niah.aggregate([])


def _levenshtein(a: str, b: str) -> int:
    """Written for the test: the textbook dynamic programme."""
    dist = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, dist[0] = dist[0], i
        for j, cb in enumerate(b, 1):
            prev, dist[j] = dist[j], min(dist[j] + 1, dist[j - 1] + 1, prev + (ca != cb))
    return dist[-1]


def expected_score(prediction: str, gold: str, keyword: str) -> float:
    """BENCHMARKS.md's rule: 100 if the keyword is in the raw answer, else 0.2 x the edit
    similarity with all whitespace removed."""
    if keyword in prediction:
        return 100.0
    p, g = re.sub(r"\s+", "", prediction), re.sub(r"\s+", "", gold)
    longest = max(len(p), len(g))
    return 0.2 * (100 * (1 - _levenshtein(p, g) / longest) if longest else 100)


NEEDLE = "Hidden on Emerald Island is the legendary Stardust Shard."
CASES = [
    ("the Stardust Shard, of course", NEEDLE, "Stardust Shard"),  # found: 100
    ("the stardust shard", NEEDLE, "Stardust Shard"),  # case-sensitive: not found
    ("Hidden on Emerald Island is the legendary Moon Stone.", NEEDLE, "Stardust Shard"),
    ("", NEEDLE, "Stardust Shard"),  # an empty answer: 0
    ("  Hidden on\nEmerald  Island is the legendary Stardust Shar", NEEDLE, "Stardust Shard"),
    ("答案是星尘碎片", "翡翠岛上藏着传说中的星尘碎片。", "星尘之石"),
]


@pytest.mark.skipif(not PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")
def test_scores_equal_the_rule_on_hand_made_cases() -> None:
    prepared = opencompass_env.prepare(PYTHON)
    rows = [
        {"id": f"s{i}", "prediction": p, "gold": g, "keyword": k}
        for i, (p, g, k) in enumerate(CASES)
    ]
    scored = niah.score_predictions(rows, prepared)
    assert [s["id"] for s in scored] == [r["id"] for r in rows]
    for row, s in zip(rows, scored, strict=True):
        want = expected_score(row["prediction"], row["gold"], row["keyword"])
        assert s["score"] == pytest.approx(want, abs=1e-9), row
    assert scored[0]["score"] == 100 and scored[3]["score"] == 0
    assert 0 < scored[1]["score"] < 20  # a miss scores a little, not 0


# --- prompts -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prose = (ROOT / "src/longllada/data/demo_corpus.txt").read_text(encoding="utf-8")
    return niah.write_demo_data(tmp_path_factory.mktemp("needlebench"), prose)


OPENCOMPASS_LOAD = """
import json, sys
from opencompass.datasets.needlebench.origin import NeedleBenchOriginDataset
path, length, depth, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ds = NeedleBenchOriginDataset.load(path=path, length=length, depth=depth, tokenizer_model="gpt-4",
    file_list=["en_un_asr.jsonl"], num_repeats_per_file=repeats, length_buffer=600, guide=False,
    language="English", needle_file_name="needles.jsonl", position="End")
print(json.dumps({"prompt": ds["prompt"], "answer": ds["answer"]}))
"""


@pytest.mark.skipif(not PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")
def test_prompts_equal_opencompass_for_the_same_arguments(demo_data: Path, tmp_path: Path) -> None:
    import json
    import subprocess

    prepared = opencompass_env.prepare(PYTHON)
    out = tmp_path / "len1000.jsonl"
    niah.build_prompts(demo_data, 1000, [0, 50, 100], 2, out, prepared)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["depth"], r["repeat"]) for r in rows] == [
        (d, k) for d in (0, 50, 100) for k in (0, 1)
    ]
    for depth in (0, 50, 100):
        res = subprocess.run(
            [prepared["python"], "-c", OPENCOMPASS_LOAD, str(demo_data), "1000", str(depth), "2"],
            capture_output=True,
            text=True,
            timeout=300,
            env=opencompass_env.environment(prepared),
        )
        assert res.returncode == 0, res.stderr[-2000:]
        theirs = json.loads(res.stdout.strip().splitlines()[-1])
        ours = [r for r in rows if r["depth"] == depth]
        assert [r["prompt"] for r in ours] == theirs["prompt"]
        assert [f"{r['gold']}*{r['keyword']}" for r in ours] == theirs["answer"]
    first = rows[0]
    # The question ends in the answer prefix (the format blank stripped), as the paper's did.
    assert first["prompt"].endswith(" is ")
    assert first["keyword"] in first["gold"] and 300 < first["cl100k_tokens"] <= 1000


@pytest.mark.skipif(not PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")
def test_bad_needlebench_data_is_named(demo_data: Path, tmp_path: Path) -> None:
    import shutil

    prepared = opencompass_env.prepare(PYTHON)
    with pytest.raises(niah.NiahDataError, match=r"holds \d+ cl100k tokens; length 900000"):
        niah.build_prompts(demo_data, 900000, [0], 1, tmp_path / "long.jsonl", prepared)
    bad = shutil.copytree(demo_data, tmp_path / "bad")
    lines = (bad / "needles.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"arg2"', '"keyword"')
    (bad / "needles.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(niah.NiahDataError, match=r"needles.jsonl:2: no key 'arg2'"):
        niah.build_prompts(bad, 1000, [0], 1, tmp_path / "x.jsonl", prepared)
    assert not (tmp_path / "x.jsonl").exists()


# --- the join of predictions with their prompts (nothing silent) --------------------------------

NO_OC = {"python": "/nonexistent", "versions": {}, "cl100k_sha256": "", "tiktoken_cache_dir": ""}
RUN_INFO = {
    "model": "m",
    "setting": "ntk1",
    "family": "ar",
    "ntk_lambda": 1.0,
    "sampler": {},
    "sample_limit": None,
}


def _niah_files(tmp_path: Path, predictions: list[object]) -> tuple[Path, Path]:
    """A two-prompt NIAH length and a predictions file of the given rows (dicts, or raw text)."""
    import json

    prompts = tmp_path / "len64.jsonl"
    with open(prompts, "w", encoding="utf-8") as f:
        for d in (0, 50):
            row = {"id": f"len64_depth{d}_rep0", "length": 64, "depth": d, "repeat": 0}
            f.write(json.dumps({**row, "gold": f"item {d}", "keyword": f"{d}"}) + "\n")
    preds = tmp_path / "len64.predictions.jsonl"
    preds.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in predictions)
    )
    return prompts, preds


def test_a_sample_answered_twice_is_refused(tmp_path: Path) -> None:
    """The same id twice in one predictions file: never the later row silently scored."""
    prompts, preds = _niah_files(
        tmp_path,
        [
            {"id": "len64_depth0_rep0", "prediction": "item 0"},
            {"id": "len64_depth50_rep0", "prediction": "item 50"},
            {"id": "len64_depth0_rep0", "prediction": "something else"},
        ],
    )
    with pytest.raises(
        ValueError, match=r"len64\.predictions\.jsonl: sample len64_depth0_rep0 appears twice"
    ):
        niah.score_run([prompts], [preds], [], tmp_path / "scores.json", RUN_INFO, NO_OC)
    assert not (tmp_path / "scores.json").exists()


@pytest.mark.parametrize("value", [7, None, ["item 0"]])
def test_a_prediction_that_is_not_a_string_is_named(tmp_path: Path, value: object) -> None:
    """A number, null or list as a prediction stops before OpenCompass, naming file, line and
    sample (it used to end in OpenCompass's stderr tail, naming neither)."""
    prompts, preds = _niah_files(
        tmp_path,
        [
            {"id": "len64_depth0_rep0", "prediction": "item 0"},
            {"id": "len64_depth50_rep0", "prediction": value},
        ],
    )
    with pytest.raises(
        ValueError,
        match=r"len64\.predictions\.jsonl:2: sample len64_depth50_rep0: the prediction is "
        r"(a number \(7\)|null|an array \(\[\"item 0\"\]\)), not a string",
    ):
        niah.score_run([prompts], [preds], [], tmp_path / "scores.json", RUN_INFO, NO_OC)

"""LongBench through OpenCompass: the subsets' facts come from the installed configs, the scores
equal OpenCompass's evaluators called directly, and Table 1's categories and Avg.

The OpenCompass tests are skipped when LONGLLADA_OPENCOMPASS_PYTHON is unset. Each OpenCompass
process imports opencompass.datasets (~7 s): one facts call, one scoring call and one reference
call, shared by the tests through module-scoped fixtures.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from longllada import opencompass_env
from longllada.benchmarks import longbench

PYTHON = os.environ.get("LONGLLADA_OPENCOMPASS_PYTHON")
needs_oc = pytest.mark.skipif(not PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")

# --- categories and Avg --------------------------------------------------------------------------


def test_subsets_and_categories() -> None:
    assert len(longbench.SUBSETS) == 21
    assert {s.category for s in longbench.SUBSETS.values()} == set(longbench.CATEGORIES)
    assert sum(s.n_samples for s in longbench.SUBSETS.values()) == 4750  # BENCHMARKS.md
    assert longbench.SUBSETS["qasper"].max_new_tokens == 32  # OpenCompass's, not LongBench's 128


def hand_scores() -> dict[str, float]:
    """Subset scores whose category means are round: SD 10..40 (25), MD 1..4 (2.5), Sum all
    50, ICL 0, 0, 0, 100 (25), Syn 30, 60, 90 (60), Code 70, 80 (75)."""
    names = list(longbench.SUBSETS)
    values = [10, 20, 30, 40, 1, 2, 3, 4, 50, 50, 50, 50, 0, 0, 0, 100, 30, 60, 90, 70, 80]
    return dict(zip(names, map(float, values), strict=True))


def test_category_means_and_average() -> None:
    scores = hand_scores()
    cats = longbench.category_scores(scores)
    assert list(cats) == list(longbench.CATEGORIES)
    assert cats == pytest.approx(
        {"SD": 25.0, "MD": 2.5, "Sum": 50.0, "ICL": 25.0, "Syn": 60.0, "Code": 75.0}
    )
    # The 21-subset mean (740 / 21), not the mean of the six categories (237.5 / 6).
    assert longbench.average(scores) == pytest.approx(740 / 21)
    assert sum(cats.values()) / 6 == pytest.approx(39.583333333)
    del scores["lcc"]
    cats = longbench.category_scores(scores)
    assert cats["Code"] is None and cats["SD"] == pytest.approx(25.0)
    assert longbench.average(scores) is None


def test_unknown_subset_is_named_here() -> None:
    with pytest.raises(ValueError, match=r"unknown LongBench subset\(s\) 'repobench'; known: "):
        longbench.category_scores({"repobench": 1.0})
    with pytest.raises(ValueError, match=r"'qasper_e'"):
        longbench.average({**hand_scores(), "qasper_e": 1.0})
    row = {"id": "x", "subset": "qasper_e", "prediction": "", "answers": ["a"]}
    with pytest.raises(ValueError, match=r"unknown LongBench subset\(s\) 'qasper_e'"):
        longbench.score_predictions([row], {"python": "/nonexistent"})  # checked before running


# --- facts: read from the installed configs --------------------------------------------------

# What OpenCompass 0.5.4's configs say, copied here by hand from
# opencompass/configs/datasets/longbench/longbench*/longbench_*_gen_*.py to check that the facts
# script reads them: (evaluator, its arguments, the prediction postprocessor, input columns).
QA = ["context", "input"]
EXPECTED = {
    "narrativeqa": ("LongBenchF1Evaluator", {}, None, QA),
    "qasper": ("LongBenchF1Evaluator", {}, None, QA),
    "multifieldqa_en": ("LongBenchF1Evaluator", {}, None, QA),
    "multifieldqa_zh": ("LongBenchF1Evaluator", {"language": "zh"}, None, QA),
    "hotpotqa": ("LongBenchF1Evaluator", {}, None, QA),
    "2wikimqa": ("LongBenchF1Evaluator", {}, None, QA),
    "musique": ("LongBenchF1Evaluator", {}, None, QA),
    "dureader": ("LongBenchRougeEvaluator", {"language": "zh"}, None, QA),
    "gov_report": ("LongBenchRougeEvaluator", {}, None, ["context"]),
    "qmsum": ("LongBenchRougeEvaluator", {}, None, QA),
    "multi_news": ("LongBenchRougeEvaluator", {}, None, ["context"]),
    "vcsum": ("LongBenchRougeEvaluator", {"language": "zh"}, None, ["context"]),
    "trec": ("LongBenchClassificationEvaluator", {}, "trec_postprocess", QA),
    "triviaqa": ("LongBenchF1Evaluator", {}, "triviaqa_postprocess", QA),
    "samsum": ("LongBenchRougeEvaluator", {}, "samsum_postprocess", QA),
    "lsht": ("LongBenchClassificationEvaluator", {}, "lsht_postprocess", QA),
    # passage_count's reader lists `input`, but its template (and dataset class) has none.
    "passage_count": ("LongBenchCountEvaluator", {}, None, QA),
    "passage_retrieval_en": ("LongBenchRetrievalEvaluator", {}, None, QA),
    "passage_retrieval_zh": ("LongBenchRetrievalEvaluator", {"language": "zh"}, None, QA),
    "lcc": ("LongBenchCodeSimEvaluator", {}, None, ["context"]),
    "repobench-p": ("LongBenchCodeSimEvaluator", {}, None, QA),
}
# The LongBench jsonl fields the templates use; subsets without a question fill only context.
NO_INPUT = {"gov_report", "multi_news", "vcsum", "passage_count", "lcc"}
CONFIG_DIR = "opencompass/configs/datasets/longbench/"


@pytest.fixture(scope="module")
def prepared() -> dict:
    return opencompass_env.prepare(PYTHON)


@pytest.fixture(scope="module")
def facts(prepared: dict) -> dict:
    return longbench.subset_facts(prepared)


@needs_oc
def test_max_new_tokens_are_opencompass_max_out_len(facts: dict) -> None:
    assert set(facts) == set(longbench.SUBSETS)
    for name, subset in longbench.SUBSETS.items():
        assert subset.max_new_tokens == facts[name]["max_out_len"], name
    assert {f["max_out_len"] for f in facts.values()} == {32, 64, 128, 512}


@needs_oc
def test_facts_name_the_configs_templates_and_evaluators(facts: dict) -> None:
    for name, f in facts.items():
        evaluator, kwargs, post, columns = EXPECTED[name]
        assert (f["evaluator"], f["evaluator_kwargs"]) == (evaluator, kwargs), name
        assert f["pred_postprocessor"] == post and f["pred_postprocessor_kwargs"] == {}, name
        assert f["input_columns"] == columns, name
        assert f["name"] == name and f["abbr"] == f"LongBench_{name}", name
        assert f["output_column"] == (
            "all_labels" if post in ("trec_postprocess", "lsht_postprocess") else "answers"
        )
        # The defining file is the hashed one, reached from longbench.py through the subset's
        # longbench_<x>_gen.py (repobench-p's files are named longbench_repobench_*).
        stem = name.split("-")[0]
        assert f["chain"][0] == CONFIG_DIR + "longbench.py", name
        assert f["chain"][1] == f"{CONFIG_DIR}longbench{stem}/longbench_{stem}_gen.py", name
        assert f["config"] == f["chain"][-1] and len(f["chain"]) == 3, name
        assert f["config"].startswith(f"{CONFIG_DIR}longbench{stem}/longbench_{stem}_gen_"), name
        # The template: verbatim, with the placeholders the LongBench jsonl fields fill.
        want = ["context"] if name in NO_INPUT else ["context", "input"]
        assert sorted(f["placeholders"]) == sorted(want), name
        for field in want:
            assert f["template"].count("{" + field + "}") == 1, name
    # qasper takes the generic multi-document QA prompt (BENCHMARKS.md), hotpotqa's.
    assert facts["qasper"]["template"] == facts["hotpotqa"]["template"]
    assert facts["qasper"]["template"].startswith(
        "Answer the question based on the given passages. Only give me the answer"
    )
    assert facts["lcc"]["template"] == (
        "Please complete the code given below. \n{context}Next line of code:\n"
    )
    assert facts["repobench-p"]["name"] == "repobench-p"
    assert facts["lsht"]["template"].startswith("请判断给定新闻的类别")


# --- scores: equal to OpenCompass's evaluators called directly ------------------------------------

TREC_CLASSES = ["Abbreviation", "City", "Country", "Description of something", "Other location"]
LSHT_CLASSES = ["体育", "财经", "娱乐", "科技", "教育"]
# (subset, prediction, answers, all_classes, the score worked out by hand, or None where that
# is left to the reference: jieba's segmentation, Rouge's and fuzzywuzzy's arithmetic).
SCORE_CASES = [
    ("hotpotqa", "The Eiffel Tower.", ["Eiffel Tower"], None, 100.0),  # articles, punctuation
    ("hotpotqa", "Paris, France", ["Lyon", "Paris"], None, 200 / 3),  # max over references
    ("narrativeqa", "He goes home.", ["He returns to his home"], None, 50.0),
    ("qasper", "", ["yes"], None, 0.0),
    # jieba: 北京/是/中国/的/首都/。, the full stop dropped: 1 of 5 tokens, F1 = 1/3.
    ("multifieldqa_zh", "北京是中国的首都。", ["北京"], None, 100 / 3),
    ("multifieldqa_zh", "北京", ["北京"], None, 100.0),
    ("dureader", "多喝水，注意休息。", ["注意休息，多喝水"], None, None),
    (
        "gov_report",
        "The report finds the agency lacks a plan.",
        ["The agency lacks a plan."],
        None,
        1000 / 13,  # Rouge-L F: LCS 5 of 8 and of 5 tokens, 2PR / (P + R) = 10 / 13
    ),
    ("gov_report", "", ["The agency lacks a plan."], None, 0.0),  # Rouge raises: 0
    ("vcsum", "会议讨论了明年的预算安排。", ["本次会议讨论了预算。"], None, None),
    # First line only: "Country" on the second line is not counted (it would halve the score).
    ("trec", "City\nQuestion: Where is Rome?\nType: Country", ["City"], TREC_CLASSES, 100.0),
    ("trec", "\nOther location", ["Other location"], TREC_CLASSES, 100.0),
    ("trec", "A place", ["City"], TREC_CLASSES, 0.0),  # no class named: the fallback is dead code
    ("lsht", "体育\n财经", ["体育"], LSHT_CLASSES, 100.0),
    ("lsht", "体育和财经", ["体育"], LSHT_CLASSES, 50.0),
    (
        "triviaqa",
        "Paris\nQuestion: What is the capital of Italy?\nAnswer: Rome",
        ["Paris"],
        None,
        100.0,
    ),
    ("samsum", "Anna will buy the cake.\nBob: ok", ["Anna will buy a cake."], None, None),
    ("passage_count", "7", ["7"], None, 100.0),
    ("passage_count", "There are 7 unique paragraphs, not 8.", ["7"], None, 50.0),
    ("passage_count", "seven", ["7"], None, 0.0),
    ("passage_retrieval_en", "Paragraph 12", ["Paragraph 12"], None, 100.0),
    ("passage_retrieval_en", "Paragraph 3 or Paragraph 12", ["Paragraph 12"], None, 50.0),
    ("passage_retrieval_zh", "段落5", ["段落5"], None, 100.0),
    ("passage_retrieval_zh", "答案是段落15", ["段落5"], None, 0.0),
    ("lcc", "\n# the sum\n    return a + b\n", ["    return a + b"], None, 100.0),
    ("lcc", "x = compute(a)", ["x = compute(b)"], None, None),
    ("repobench-p", "self.assertEqual(result, 4)", ["self.assertEqual(result, 5)"], None, None),
]
POSTPROCESSED = {"trec", "lsht", "triviaqa", "samsum"}

REFERENCE = """
import json, sys
import opencompass.datasets as d
cases, expected = json.loads(open(sys.argv[1]).read())
out = []
for subset, pred, answers, classes in cases:
    evaluator, kwargs, post = expected[subset][:3]
    ev = getattr(d, evaluator)(**kwargs)
    ref = {"answers": answers, "all_classes": classes} if classes else answers
    first = getattr(d, post)(pred) if post else pred
    out.append({"score": ev.score([first], [ref])["score"],
                "raw": ev.score([pred], [ref])["score"], "postprocessed": first})
print(json.dumps(out))
"""


def score_rows() -> list[dict]:
    return [
        {"id": f"c{i:02d}", "subset": s, "prediction": p, "answers": a, "all_classes": c}
        for i, (s, p, a, c, _) in enumerate(SCORE_CASES)
    ]


@pytest.fixture(scope="module")
def opencompass_reference(prepared: dict, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("reference")
    spec = [[[s, p, a, c] for s, p, a, c, _ in SCORE_CASES], EXPECTED]
    (tmp / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
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
def scored(prepared: dict) -> list[dict]:
    return longbench.score_predictions(score_rows(), prepared)


@needs_oc
def test_scores_equal_opencompass_evaluators(scored: list[dict], opencompass_reference) -> None:
    assert [s["id"] for s in scored] == [r["id"] for r in score_rows()]
    assert [s["subset"] for s in scored] == [c[0] for c in SCORE_CASES]
    assert [s["score"] for s in scored] == [r["score"] for r in opencompass_reference]
    assert [s["postprocessed"] for s in scored] == [
        r["postprocessed"] for r in opencompass_reference
    ]
    for s, (subset, _p, _a, _c, want) in zip(scored, SCORE_CASES, strict=True):
        assert s["evaluator"] == EXPECTED[subset][0]
        assert 0.0 <= s["score"] <= 100.0
        if want is not None:
            assert s["score"] == pytest.approx(want), (subset, s)
    # The cases left to the reference score strictly between 0 and 100: partial matches.
    for s, case in zip(scored, SCORE_CASES, strict=True):
        if case[-1] is None:
            assert 0.0 < s["score"] < 100.0, (case, s)


@needs_oc
def test_first_line_postprocess(scored: list[dict], opencompass_reference) -> None:
    for s, (subset, pred, *_rest) in zip(scored, SCORE_CASES, strict=True):
        if subset in POSTPROCESSED:
            assert s["postprocessed"] == pred.lstrip("\n").split("\n")[0], subset
        else:
            assert s["postprocessed"] == pred, subset
    # Without it, trec's, lsht's, triviaqa's and samsum's first cases would score lower.
    by_subset: dict[str, tuple[dict, dict]] = {}
    for s, ref, case in zip(scored, opencompass_reference, SCORE_CASES, strict=True):
        by_subset.setdefault(case[0], (s, ref))
    for subset in POSTPROCESSED:
        s, ref = by_subset[subset]
        assert ref["raw"] < s["score"], subset
    assert by_subset["trec"][1]["raw"] == pytest.approx(50.0)  # City and Country both named


@needs_oc
def test_unknown_subset_is_named_by_the_scorer(prepared: dict, tmp_path: Path) -> None:
    rows = [
        {"id": "x", "subset": "qasper_e", "prediction": "", "answers": ["a"], "all_classes": None}
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = opencompass_env.run_script(
        prepared, longbench.SCORER, src, tmp_path / "out.jsonl", timeout=120
    )
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert "unknown LongBench subset(s) ['qasper_e']" in last
    assert all(name in last for name in longbench.SUBSETS)
    assert not (tmp_path / "out.jsonl").exists()

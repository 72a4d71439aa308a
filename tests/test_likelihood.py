"""Tests for the perplexity estimators of Figure 1a (src/longllada/likelihood.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from longllada import likelihood as lk
from longllada.jobs import read_jsonl, run_resumable

VOCAB = 40
MASK_ID = VOCAB - 1


class ToyLM(nn.Module):
    """One attention layer + LM head, deterministic weights; the diffusion model API.

    ``model(ids, logits_index=None)``: None -> [B, L, V]; 1-D positions -> [B, n, V];
    bool [B, L] -> [N_true, V] (row-major). ``causal=True`` masks attention and wraps the
    output like Hugging Face (``.logits``).
    """

    def __init__(self, causal: bool = False, family: str = "llada", seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        d = 16
        self.emb = nn.Parameter(torch.randn(VOCAB, d, generator=g))
        self.qkv = nn.Parameter(torch.randn(d, 3 * d, generator=g) / d**0.5)
        self.head = nn.Parameter(torch.randn(d, VOCAB, generator=g) / d**0.5)
        self.causal = causal
        self.family = family
        self.mask_token_id = MASK_ID
        self.calls: list[torch.Tensor] = []
        self.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, logits_index: torch.Tensor | None = None):
        self.calls.append(input_ids.clone())
        length = input_ids.shape[1]
        pos = torch.arange(length, dtype=torch.float32)[:, None]
        freq = torch.arange(1, 17, dtype=torch.float32)[None] / 50
        h = self.emb[input_ids] + torch.sin(pos * freq)
        q, k, v = (h @ self.qkv).chunk(3, dim=-1)
        h = h + F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        if logits_index is None:
            out = h @ self.head
        elif logits_index.dtype == torch.bool:
            out = h[logits_index] @ self.head
        else:
            out = h[:, logits_index] @ self.head
        return SimpleNamespace(logits=out) if self.causal else out


def _ids(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB - 1, (n,), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------- causal


def test_causal_curve_matches_prefix_by_prefix_computation():
    model, ids, every = ToyLM(causal=True), _ids(70), 16
    rows = lk.causal_ppl_curve(model, ids, every=every)
    # Independent computation: one forward per prefix, the prediction of the next token.
    losses = []
    for j in range(len(ids) - 1):
        logits = model(ids[None, : j + 1]).logits[0, -1]
        losses.append(float(F.cross_entropy(logits[None].double(), ids[j + 1 : j + 2])))
    assert [r["context_tokens"] for r in rows] == [16, 32, 48, 64]
    for r in rows:
        n = r["context_tokens"]  # official: the row at n averages the first n + 1 losses
        assert r["ppl"] == pytest.approx(math.exp(sum(losses[: n + 1]) / (n + 1)), rel=1e-5)


def test_causal_x_grid_matches_published_convention():
    model = ToyLM(causal=True)
    # 16385 tokens -> 64..16320; the paper's LLaMA document (16065 tokens) -> 64..16000.
    assert lk.official_causal_length(20000) == 16385
    assert lk.official_causal_length(16100) == 16065
    rows = lk.causal_ppl_curve(model, _ids(257), every=64)
    assert [r["context_tokens"] for r in rows] == [64, 128, 192]
    rows = lk.causal_ppl_curve(model, _ids(300), every=64, n_tokens=lk.official_causal_length(300))
    assert rows[-1]["context_tokens"] == 192  # 257 tokens used


def test_causal_short_document():
    model = ToyLM(causal=True)
    with pytest.raises(ValueError, match="has 50 tokens but .* asks for 100"):
        lk.causal_ppl_curve(model, _ids(50), every=16, n_tokens=100)
    with pytest.raises(ValueError, match="has 10 tokens"):
        lk.causal_ppl_curve(model, _ids(10), every=16)


# ------------------------------------------------------------------------------- MC masks


def test_draw_masks_k_range_and_exactly_k():
    ks, masks = lk.draw_masks(4, 400, torch.Generator().manual_seed(0))
    assert masks.shape == (400, 4) and masks.dtype == torch.bool
    assert torch.equal(masks.sum(1), ks)
    assert set(ks.tolist()) == {1, 2, 3, 4}


def test_mc_noised_input_masks_exactly_k_answer_tokens():
    model, ids, chunk, i = ToyLM(), _ids(64), 8, 2
    sampler = lk.MaskSampler(seed=3)
    lk.mc_chunk_loss(model, ids, i, chunk=chunk, draws=5, sampler=sampler, batched=True)
    ks, _ = lk.MaskSampler(seed=3).masks(i, chunk, 5)
    (batch,) = model.calls
    prompt_len = chunk * (i + 1)
    assert batch.shape == (5, prompt_len + chunk)
    assert torch.equal(batch[:, :prompt_len], ids[:prompt_len].expand(5, -1))
    assert torch.equal((batch[:, prompt_len:] == MASK_ID).sum(1), ks)
    unmasked = batch[:, prompt_len:] != MASK_ID
    assert torch.equal(
        batch[:, prompt_len:][unmasked],
        ids[prompt_len : prompt_len + chunk].expand(5, -1)[unmasked],
    )


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_mc_fast_equals_plain(family):
    model, ids = ToyLM(family=family), _ids(96)
    for i in range(4):
        fast = lk.mc_chunk_loss(model, ids, i, chunk=16, draws=6, batched=True)
        plain = lk.mc_chunk_loss(model, ids, i, chunk=16, draws=6, batched=False)
        assert fast == pytest.approx(plain, abs=1e-6)


def test_mc_chunk_loss_matches_manual_definition():
    model, ids, chunk, i, draws = ToyLM(), _ids(48), 8, 3, 4
    ks, masks = lk.MaskSampler(seed=7).masks(i, chunk, draws)
    prompt_len = chunk * (i + 1)
    expected = []
    for d in range(draws):
        x = ids[: prompt_len + chunk].clone()
        pos = prompt_len + torch.nonzero(masks[d]).flatten()
        x[pos] = MASK_ID
        logits = model(x[None])[0]
        expected.append(float(F.cross_entropy(logits[pos], ids[pos])))
        assert len(pos) == ks[d]
    got = lk.mc_chunk_loss(model, ids, i, chunk, draws, lk.MaskSampler(seed=7))
    assert got == pytest.approx(sum(expected) / draws, abs=1e-6)
    per_draw = lk.mc_draw_losses(model, ids, i, chunk, draws, lk.MaskSampler(seed=7))
    assert per_draw == pytest.approx(expected, abs=1e-6)


def test_dream_predicts_from_previous_row():
    # A model whose row r predicts token r + 1 perfectly is perfect only under Dream's shift.
    class Shifted(nn.Module):
        mask_token_id, family = MASK_ID, "dream"

        def __init__(self, ids):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))
            self.ids = ids

        def forward(self, input_ids, logits_index=None):
            nxt = torch.cat([self.ids[1:], self.ids[:1]])[: input_ids.shape[1]]
            logits = 50.0 * F.one_hot(nxt, VOCAB).float().expand(len(input_ids), -1, -1)
            return logits if logits_index is None else logits[logits_index]

    ids = _ids(32)
    for batched in (True, False):
        assert lk.mc_chunk_loss(Shifted(ids), ids, 1, chunk=8, draws=3, batched=batched) < 1e-6


def test_mc_determinism_and_seed_dependence():
    model, ids = ToyLM(), _ids(64)
    a = lk.mc_chunk_losses(model, ids, n_chunks=3, chunk=16, draws=4, seed=5)
    b = lk.mc_chunk_losses(model, ids, n_chunks=3, chunk=16, draws=4, seed=5)
    c = lk.mc_chunk_losses(model, ids, n_chunks=3, chunk=16, draws=4, seed=6)
    assert a == b and a != c
    # Per-chunk seeding: a chunk's loss does not depend on which chunks ran before it.
    alone = lk.mc_chunk_loss(model, ids, 2, 16, 4, lk.MaskSampler(seed=5))
    assert alone == a[2]


def test_official_rng_replays_skipped_chunks():
    chunk, draws = 8, 3
    stream = lk.MaskSampler(seed=11, official_rng=True)
    sequential = [stream.masks(i, chunk, draws) for i in range(5)]
    # One generator across chunks: chunk 3's masks are not those of a fresh stream's chunk 0.
    fresh = lk.MaskSampler(seed=11, official_rng=True).masks(0, chunk, draws)
    assert torch.equal(fresh[1], sequential[0][1])
    jumped = lk.MaskSampler(seed=11, official_rng=True)
    assert torch.equal(jumped.masks(3, chunk, draws)[1], sequential[3][1])
    assert torch.equal(jumped.masks(4, chunk, draws)[1], sequential[4][1])
    # Going back restarts the stream.
    assert torch.equal(jumped.masks(1, chunk, draws)[1], sequential[1][1])
    # Same stream as one generator drawing k then perm per draw, chunk after chunk.
    g = torch.Generator().manual_seed(11)
    for i in range(5):
        assert torch.equal(lk.draw_masks(chunk, draws, g)[1], sequential[i][1])
    # The per-chunk mode gives different masks.
    per_chunk = lk.MaskSampler(seed=11).masks(3, chunk, draws)
    assert not torch.equal(per_chunk[1], sequential[3][1])


@pytest.mark.parametrize("official_rng", [False, True])
def test_resumed_job_equals_uninterrupted(tmp_path, official_rng):
    model, ids, chunk, draws, n = ToyLM(), _ids(112), 16, 4, 6
    expected = lk.mc_chunk_losses(model, ids, n, chunk, draws, seed=2025, official_rng=official_rng)
    samples = [{"id": i} for i in range(n)]

    def make_process(fail_at: int | None):
        sampler = lk.MaskSampler(2025, official_rng=official_rng)  # a fresh process each run

        def process(sample):
            if sample["id"] == fail_at:
                raise KeyboardInterrupt  # the job is killed here
            return {"loss": lk.mc_chunk_loss(model, ids, sample["id"], chunk, draws, sampler)}

        return process

    out = tmp_path / "ppl.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_resumable(samples, make_process(fail_at=3), out)
    assert not out.exists()
    assert run_resumable(samples, make_process(fail_at=None), out) == n - 3
    got = [row["loss"] for row in read_jsonl(out)]
    assert got == expected
    curve = lk.mc_ppl_curve(got, chunk)
    assert [r["context_tokens"] for r in curve] == [16, 32, 48, 64, 80, 96]


def test_mc_ppl_curve_is_running_geometric_mean():
    losses = [math.log(4.0), math.log(16.0), math.log(1.0)]
    rows = lk.mc_ppl_curve(losses, chunk=64)
    assert [r["context_tokens"] for r in rows] == [64, 128, 192]
    assert [r["ppl"] for r in rows] == pytest.approx([4.0, 8.0, 4.0])
    assert [r["chunk_ppl"] for r in rows] == pytest.approx([4.0, 16.0, 1.0])


def test_mc_short_document():
    model = ToyLM()
    with pytest.raises(
        ValueError, match=r"has 40 tokens but chunk 2 \(prompt \+ answer\) asks for 49"
    ):
        lk.mc_chunk_loss(model, _ids(40), 2, chunk=16, draws=2)
    with pytest.raises(ValueError, match="has 40 tokens but 3 chunks .* asks for 64"):
        lk.mc_chunk_losses(model, _ids(40), n_chunks=3, chunk=16, draws=2)


def test_many_draws_go_through_the_model_in_bounded_batches():
    """Thousands of draws at a real vocabulary would need tens of GB of logits in one forward:
    at most _MC_BATCH_ROWS answer positions go at a time, with the plain path's numbers."""
    model, chunk, draws = ToyLM(), 64, 40
    ids = _ids(3 * chunk)
    fast = lk.mc_chunk_loss(model, ids, 1, chunk, draws, batched=True)
    assert [len(c) for c in model.calls] == [16, 16, 8]  # 1024 // 64 draws per forward
    plain = lk.mc_chunk_loss(model, ids, 1, chunk, draws, batched=False)
    assert fast == pytest.approx(plain, rel=1e-6)


def test_official_chunk_count():
    # The official loop: max_tokens // chunk - 1 chunks, those with at least one answer token.
    assert lk.official_chunk_count(20000, 16384) == 255
    assert lk.official_chunk_count(16385, 16384) == 255
    assert lk.official_chunk_count(16320, 16384) == 254  # chunk 254's prompt is the document
    assert lk.official_chunk_count(16321, 16384) == 255  # one answer token
    assert lk.official_chunk_count(65, 16384) == 1
    with pytest.raises(ValueError, match="has 64 tokens .* needs at least 65"):
        lk.official_chunk_count(64, 16384)


@pytest.mark.parametrize("official_rng", [False, True])
def test_short_last_answer_draws_over_its_length(official_rng):
    """As the official forward_process: k ~ U{1..answer} and a permutation of the answer."""
    model, chunk, draws = ToyLM(), 16, 3
    ids = _ids(16 * 3 + 5)  # chunk 2's answer has 5 tokens
    sampler = lk.MaskSampler(7, official_rng=official_rng)
    loss = lk.mc_chunk_loss(model, ids, 2, chunk, draws, sampler=sampler)
    assert math.isfinite(loss)
    assert all(len(call[0]) == 16 * 3 + 5 for call in model.calls)
    if official_rng:  # the replayed chunks 0 and 1 had full answers
        g = torch.Generator().manual_seed(7)
        lk.draw_masks(chunk, draws, g)
        lk.draw_masks(chunk, draws, g)
        expected = lk.draw_masks(5, draws, g)[1]
        got = lk.MaskSampler(7, official_rng=True).masks(2, chunk, draws, answer=5)[1]
        assert torch.equal(got, expected)


# ------------------------------------------------------------------------------- ELBO


@pytest.mark.parametrize("low_discrepancy", [False, True])
def test_elbo_runs_and_is_finite(low_discrepancy):
    model, ids = ToyLM(), _ids(48)
    kw = dict(chunk=16, draws=20, seed=1, low_discrepancy=low_discrepancy, max_batch=6)
    fast = lk.elbo_chunk_loss(model, ids, 1, batched=True, **kw)
    plain = lk.elbo_chunk_loss(model, ids, 1, batched=False, **kw)
    assert math.isfinite(fast) and fast > 0
    assert fast == pytest.approx(plain, abs=1e-6)
    assert lk.elbo_chunk_loss(model, ids, 1, batched=True, **kw) == fast


def test_elbo_masks():
    t, masks = lk.draw_elbo_masks(64, 500, torch.Generator().manual_seed(0))
    assert ((t > 0) & (t <= 1)).all()
    # Bernoulli(t) masking: the masked fraction tracks t.
    assert torch.corrcoef(torch.stack([t, masks.double().mean(1)]))[0, 1] > 0.9
    # Low discrepancy: the 8 times are one uniform shifted by multiples of 1/8 (mod 1).
    t, _ = lk.draw_elbo_masks(64, 8, torch.Generator().manual_seed(0), low_discrepancy=True)
    assert torch.sort(1 - t).values.diff().tolist() == pytest.approx([1 / 8] * 7)


# ------------------------------------------------------------------------------- real models


def _load_or_skip():
    loading = pytest.importorskip("longllada.models.loading")
    return loading.load_model


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_demo_checkpoint_fast_equals_plain(tmp_path, family):
    load_model = _load_or_skip()
    from longllada.demo import PRESETS, build_demo_checkpoint

    build_demo_checkpoint(family, tmp_path, seed=0, **PRESETS["tiny"][family])
    model = load_model(tmp_path, family)
    ids = torch.randint(0, 400, (80,), generator=torch.Generator().manual_seed(0))
    fast = lk.mc_chunk_loss(model, ids, 2, chunk=16, draws=4, batched=True)
    plain = lk.mc_chunk_loss(model, ids, 2, chunk=16, draws=4, batched=False)
    assert math.isfinite(fast)
    assert fast == pytest.approx(plain, abs=1e-6)


def test_demo_checkpoint_causal_curve(tmp_path):
    load_model = _load_or_skip()
    from longllada.demo import PRESETS, build_demo_checkpoint

    build_demo_checkpoint("llama", tmp_path, seed=0, **PRESETS["tiny"]["llama"])
    model = load_model(tmp_path, "ar")
    ids = torch.randint(0, 400, (100,), generator=torch.Generator().manual_seed(0))
    rows = lk.causal_ppl_curve(model, ids, every=32)
    with torch.no_grad():
        logits = model(ids[None]).logits[0].double()
    losses = F.cross_entropy(logits[:-1], ids[1:], reduction="none")
    assert [r["context_tokens"] for r in rows] == [32, 64, 96]
    for r in rows:
        n = r["context_tokens"]
        assert r["ppl"] == pytest.approx(float(losses[: n + 1].mean().exp()), rel=1e-5)

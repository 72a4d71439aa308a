"""Figure 1a jobs: perplexity against context length on one long document.

LLaMA3 (causal): one forward over max_tokens + 1 tokens, running mean every `chunk` positions.
LLaDA (masked diffusion): the official Monte-Carlo estimate chunk by chunk, each chunk a
checkpointed "sample" of the resumable job loop, so a preempted job resumes at its next chunk.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from longllada import likelihood, provenance
from longllada.config import Model, Run
from longllada.documents import document_ids, read_document
from longllada.files import write_json
from longllada.jobs import read_jsonl, run_resumable
from longllada.stages.common import load_run_model, run_settings

log = logging.getLogger(__name__)


def chunk_progress_path(output: str | Path) -> Path:
    """The per-chunk JSONL beside a diffusion PPL result (a declared output of the rule)."""
    output = Path(output)
    return output.with_name(output.name.removesuffix(".json") + ".chunks.jsonl")


def run(
    model: Model,
    run: Run,
    settings: dict[str, Any],
    checkpoint_file: str | Path,
    document: str | Path,
    output: str | Path,
    seed: int,
) -> dict[str, Any]:
    watch = provenance.Stopwatch()
    net, tokenizer, prov = load_run_model(model, checkpoint_file, settings.get("dtype"))
    text = read_document(document, settings.get("document_index", 0))
    chunk, max_tokens = settings["chunk"], settings["max_tokens"]
    device = next(net.parameters()).device
    if model.diffusion:
        ids = torch.tensor(document_ids(tokenizer, text, max_tokens, "the PPL run"), device=device)
        # A partial chunk file is reused only under the same everything-that-changes-a-loss.
        depends_on = {
            **settings,
            "seed": seed,
            "document": str(document),
            "commit_sha": prov["model"].get("commit_sha"),
            "rope": prov["rope"],
            "dtype": prov["dtype"],
        }
        losses = _diffusion_losses(
            net, ids, settings, seed, chunk_progress_path(output), depends_on
        )
        curve = likelihood.mc_ppl_curve(losses, chunk)
    else:
        # The official script scores 16385 tokens to report 64..16320 (one more than max_tokens).
        n = max_tokens + 1
        ids = torch.tensor(document_ids(tokenizer, text, n, "the PPL run"), device=device)
        with torch.no_grad():
            curve = likelihood.causal_ppl_curve(net, ids, every=chunk)
    result = {
        "model": model.label,
        "curve": curve,
        "document": str(document),
        "provenance": provenance.record(
            "perplexity",
            watch=watch,
            model=prov["model"],
            rope=prov["rope"],
            settings={**run_settings(run, settings), "dtype": prov["dtype"]},
            seed=seed,
        ),
    }
    write_json(output, result)
    log.info(
        "%s: ppl at %d tokens = %.3f", model.key, curve[-1]["context_tokens"], curve[-1]["ppl"]
    )
    return result


def _diffusion_losses(
    net: torch.nn.Module,
    ids: torch.Tensor,
    settings: dict[str, Any],
    seed: int,
    progress: Path,
    depends_on: dict[str, Any],
) -> list[float]:
    chunk, draws = settings["chunk"], settings["mc_draws"]
    n_chunks = settings["max_tokens"] // chunk - 1  # the last chunk's answer ends at max_tokens
    estimator = settings.get("estimator", "official_mc")
    sampler = likelihood.MaskSampler(
        seed, official_rng=settings.get("official_rng", False), k_device=ids.device
    )

    def one_chunk(sample: dict[str, Any]) -> dict[str, Any]:
        i = sample["id"]
        with torch.no_grad():
            if estimator == "elbo":
                loss = likelihood.elbo_chunk_loss(net, ids, i, chunk=chunk, draws=draws, seed=seed)
            else:
                loss = likelihood.mc_chunk_loss(net, ids, i, chunk, draws, sampler=sampler)
        if i % 16 == 0:
            log.info("chunk %d/%d: loss %.4f", i + 1, n_chunks, loss)
        return {"id": i, "context_tokens": chunk * (i + 1), "loss": loss}

    run_resumable(({"id": i} for i in range(n_chunks)), one_chunk, progress, settings=depends_on)
    return [row["loss"] for row in read_jsonl(progress)]

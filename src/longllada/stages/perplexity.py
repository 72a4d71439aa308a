"""Figure 1a jobs: perplexity against context length on one long document.

LLaMA3 (causal): one forward over max_tokens + 1 tokens, running mean every `chunk` positions.
LLaDA (masked diffusion): the official Monte-Carlo estimate chunk by chunk, each chunk a
checkpointed "sample" of the resumable job loop, so a preempted job resumes at its next chunk.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from longllada import fingerprints, likelihood, provenance
from longllada.config import Model, Run
from longllada.documents import document_ids, read_document
from longllada.files import write_json
from longllada.jobs import read_jsonl, run_resumable
from longllada.stages.common import NonFiniteError, load_run_model, run_settings

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
    depends_on: str | None = None,
) -> dict[str, Any]:
    """`depends_on`: the job's fingerprint (the rule's params.depends_on); computed from the
    arguments when called directly."""
    watch = provenance.Stopwatch()
    settings = dict(settings)  # a rule hands a read-only mapping
    if depends_on is None:
        depends_on = fingerprints.canonical(fingerprints.compute(model, run, settings, seed))
    # What this job's numbers depend on: the config's part and the bytes of its inputs.
    header = fingerprints.partial_header(
        depends_on, {"checkpoint": checkpoint_file, "document": document}
    )
    net, tokenizer, prov = load_run_model(model, checkpoint_file, settings.get("dtype"))
    text = read_document(document, settings.get("document_index", 0))
    chunk, max_tokens = settings["chunk"], settings["max_tokens"]
    device = next(net.parameters()).device
    if model.diffusion:
        ids = torch.tensor(document_ids(tokenizer, text, max_tokens, "the PPL run"), device=device)
        # A partial chunk file is resumed only under the same header.
        losses = _diffusion_losses(
            net, ids, settings, seed, chunk_progress_path(output), header, model.key
        )
        curve = likelihood.mc_ppl_curve(losses, chunk)
    else:
        # The official script scores 16385 tokens to report 64..16320 (one more than max_tokens).
        n = max_tokens + 1
        ids = torch.tensor(document_ids(tokenizer, text, n, "the PPL run"), device=device)
        with torch.no_grad():
            curve = likelihood.causal_ppl_curve(net, ids, every=chunk)
        for point in curve:
            if not math.isfinite(point["ppl"]):
                raise NonFiniteError(
                    f"{model.key}: perplexity at {point['context_tokens']} tokens is "
                    f"{point['ppl']} (NaN/inf logits: a broken checkpoint or an overflowing "
                    f"dtype, {prov['dtype']}); nothing was written"
                )
    result = {
        "model": model.key,
        "curve": curve,
        "document": str(document),
        "provenance": provenance.record(
            "perplexity",
            watch=watch,
            model=prov["model"],
            rope=prov["rope"],
            settings={**run_settings(run, settings), "dtype": prov["dtype"]},
            seed=seed,
            depends_on=header,
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
    header: dict[str, Any],
    model_key: str,
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
        if not math.isfinite(loss):
            raise NonFiniteError(
                f"{model_key}: the loss of chunk {i} (context {chunk * (i + 1)} tokens) is {loss} "
                "(NaN/inf logits: a broken checkpoint or an overflowing dtype); the chunks "
                f"before it are kept in {progress.name}'s partial file"
            )
        return {"id": i, "context_tokens": chunk * (i + 1), "loss": loss}

    run_resumable(({"id": i} for i in range(n_chunks)), one_chunk, progress, settings=header)
    return [row["loss"] for row in read_jsonl(progress)]

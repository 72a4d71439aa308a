"""Figure 1a jobs: perplexity against context length on one long document.

LLaMA3 (causal): one forward over the official script's token count (max_tokens + 1, or the
largest `chunk` m + 1 a shorter document holds), running mean every `chunk` positions.
LLaDA (masked diffusion): the official Monte-Carlo estimate chunk by chunk (max_tokens / chunk - 1
chunks, a shorter last answer where the document ends), each chunk a checkpointed "sample" of
the resumable job loop, so a preempted job resumes at its next chunk. The document's token count,
the tokens used and the points go into the result and its provenance.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from longllada import fingerprints, likelihood, provenance
from longllada.config import Model, Run
from longllada.documents import read_document
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
    # The official PPL scripts loaded LLaDA without flash_attention: SDPA (`auto` follows).
    net, tokenizer, prov = load_run_model(
        model, checkpoint_file, settings.get("dtype"), benchmark=run.benchmark
    )
    text = read_document(document, settings.get("document_index", 0))
    chunk, max_tokens = settings["chunk"], settings["max_tokens"]
    device = next(net.parameters()).device
    # Tokenised as the official scripts (`tokenizer(text)["input_ids"]`, special tokens kept);
    # how much of it a run uses is the official scripts' rule, recorded below.
    all_ids = tokenizer(text)["input_ids"]
    if model.diffusion:
        n_chunks = likelihood.official_chunk_count(len(all_ids), max_tokens, chunk)
        used = min(len(all_ids), chunk * (n_chunks + 1))
        ids = torch.tensor(all_ids[:used], device=device)
        # A partial chunk file is resumed only under the same header.
        losses = _diffusion_losses(
            net, ids, settings, seed, n_chunks, chunk_progress_path(output), header, model.key
        )
        curve = likelihood.mc_ppl_curve(losses, chunk)
    else:
        # The official script feeds max_tokens + 1 tokens (16385: 64..16320) or, on a shorter
        # document, the largest 64 m + 1 (the paper's 16,108 LLaMA-3 tokens: 16,065, 64..16,000).
        used = min(
            len(all_ids), likelihood.official_causal_length(len(all_ids), max_tokens + 1, chunk)
        )
        if used < chunk + 2:
            raise ValueError(
                f"the document has {len(all_ids)} tokens with this tokenizer: not one "
                f"perplexity point of {chunk} tokens (the PPL run needs at least {chunk + 2})"
            )
        ids = torch.tensor(all_ids[:used], device=device)
        with torch.no_grad():
            curve = likelihood.causal_ppl_curve(net, ids, every=chunk)
        for point in curve:
            if not math.isfinite(point["ppl"]):
                raise NonFiniteError(
                    f"{model.key}: perplexity at {point['context_tokens']} tokens is "
                    f"{point['ppl']} (NaN/inf logits: a broken checkpoint or an overflowing "
                    f"dtype, {prov['dtype']}); nothing was written"
                )
    tokens = {"document": len(all_ids), "used": used, "points": len(curve)}
    if curve[-1]["context_tokens"] < max_tokens - chunk:
        log.warning(
            "%s: the document has %d tokens with this tokenizer; as the official script, the "
            "curve ends at %d tokens (%d points), not at %d",
            model.key,
            len(all_ids),
            curve[-1]["context_tokens"],
            len(curve),
            max_tokens - chunk,
        )
    result = {
        "model": model.key,
        "curve": curve,
        "document": str(document),
        "document_tokens": tokens,
        "provenance": provenance.record(
            "perplexity",
            watch=watch,
            model=prov["model"],
            rope=prov["rope"],
            settings={**run_settings(run, settings), "dtype": prov["dtype"]},
            seed=seed,
            depends_on=header,
            document_tokens=tokens,
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
    n_chunks: int,
    progress: Path,
    header: dict[str, Any],
    model_key: str,
) -> list[float]:
    chunk, draws = settings["chunk"], settings["mc_draws"]
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

"""Rules *_generate: one model's answers to one prompts file (GPU; resumable per sample)."""

from longllada.snakejob import logged
from longllada.stages import generation

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    generation.run(
        snakemake.params.model,  # noqa: F821
        snakemake.params.run,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        checkpoint_file=snakemake.input.checkpoint,  # noqa: F821
        prompts_file=snakemake.input.prompts,  # noqa: F821
        output=snakemake.output.predictions,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        max_new_tokens=snakemake.params.max_new_tokens,  # noqa: F821
        rng_group=snakemake.params.rng_group,  # noqa: F821
        spread_by=snakemake.params.spread_by,  # noqa: F821
        depends_on=snakemake.params.depends_on,  # noqa: F821
        sample_range=getattr(snakemake.params, "sample_range", None),  # noqa: F821
        budget=getattr(snakemake.params, "budget", None),  # noqa: F821
        continue_from=getattr(snakemake.params, "continue_from", None),  # noqa: F821
    )

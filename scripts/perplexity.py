"""Rules perplexity_*: one model's perplexity curve on the config's document (Figure 1a)."""

from longllada.snakejob import logged
from longllada.stages import perplexity

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    perplexity.run(
        snakemake.params.model,  # noqa: F821
        snakemake.params.run,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        checkpoint_file=snakemake.input.checkpoint,  # noqa: F821
        document=snakemake.input.document,  # noqa: F821
        output=snakemake.output.result,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        depends_on=snakemake.params.depends_on,  # noqa: F821
    )

"""Rule qk_states: final-layer Q/K states with and without RoPE for one document (Figure 5)."""

from longllada.snakejob import logged
from longllada.stages import qk_states

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    qk_states.run(
        snakemake.params.model,  # noqa: F821
        snakemake.params.run,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        checkpoint_file=snakemake.input.checkpoint,  # noqa: F821
        document=snakemake.input.document,  # noqa: F821
        document_index=snakemake.params.document_index,  # noqa: F821
        output=snakemake.output[0],  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        depends_on=snakemake.params.depends_on,  # noqa: F821
    )

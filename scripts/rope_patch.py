"""Rule rope_patch: a λ-scaled view of a checkpoint (links + patched config.json)."""

from longllada import checkpoints
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    checkpoints.patch(
        snakemake.params.scaling,  # noqa: F821
        manifest_path=snakemake.input[0],  # noqa: F821
        record_path=snakemake.output.record,  # noqa: F821
    )

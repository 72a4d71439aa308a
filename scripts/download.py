"""Rule download: fetch a pinned hub snapshot (or check a local one) and write its manifest."""

from longllada import checkpoints
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    checkpoints.materialize(
        snakemake.params.model,  # noqa: F821
        snapshot_dir=snakemake.params.snapshot_dir,  # noqa: F821
        manifest_path=snakemake.output.manifest,  # noqa: F821
    )

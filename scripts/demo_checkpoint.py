"""Rule demo_checkpoint: a tiny random-weight checkpoint in the hub layout of its family."""

from longllada import checkpoints
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    checkpoints.build_demo(snakemake.params.model, snakemake.output[0])  # noqa: F821

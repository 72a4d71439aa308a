"""Rule verify: our model class against the checkpoint's own hub code (separate environment)."""

from longllada import verify
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    s = dict(snakemake.params.settings)  # noqa: F821
    verify.run_verify(
        snakemake.params.model,  # noqa: F821
        snakemake.input.checkpoint,  # noqa: F821
        python=s["python"],
        out_path=snakemake.output[0],  # noqa: F821
        max_abs_diff=s["max_abs_diff"],
        min_argmax_agreement=s["min_argmax_agreement"],
        dtype=s["dtype"],
        timeout=s["timeout_minutes"] * 60,
        n_seqs=s["n_seqs"],
        length=s["length"],
        seed=snakemake.params.seed,  # noqa: F821
    )

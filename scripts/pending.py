"""Stand-in for a stage that is not built yet: fail loudly, naming what it waits for."""

from longllada import targets
from longllada.snakejob import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    raise NotImplementedError(
        f"rule {snakemake.rule} is not implemented yet: it waits for "  # noqa: F821
        f"{targets.pending_reason(snakemake.rule)}. "  # noqa: F821
        "`snakemake implemented` builds every target whose stages exist (README, Targets)."
    )

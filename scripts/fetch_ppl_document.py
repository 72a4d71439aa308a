"""Rule fetch_ppl_document: the long document of Figures 1a and 5, from its pinned source."""

from longllada.documents import fetch_document
from longllada.snakejob import logged

with logged(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    digest = fetch_document(
        snakemake.params.url,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        sha256=snakemake.params.sha256,  # noqa: F821
    )
    log.info("fetched %s (sha256 %s)", snakemake.params.url, digest)  # noqa: F821

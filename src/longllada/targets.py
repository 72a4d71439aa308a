"""Which kinds of target the pipeline can build today, and what each waits for.

`rule all` asks for every target; `rule implemented` only for those whose every stage exists,
so the demo and CI run the whole of what is built without tripping on what is not yet.
"""

from __future__ import annotations

# kind -> None when every stage exists, else what it waits for (README "Targets").
PENDING: dict[str, str | None] = {
    "rope_coverage": None,
    "perplexity_curve": None,
    "tsne_qk": None,
    "niah_heatmaps": None,
    "niah_by_length": None,
    "longbench_table": None,
    "ruler_table": None,
}


def implemented(kind: str) -> bool:
    return PENDING[kind] is None

"""Rule longbench_prompts: one LongBench subset's prompts, whole, by OpenCompass's dataset class
and prompt template (its own environment).

As ruler_prompts.py: the OpenCompass-side modules come from src/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from longllada import opencompass_env  # noqa: E402
from longllada.benchmarks import longbench  # noqa: E402
from longllada.snakejob import logged  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    # The time limit changes no prompt: read from the config, not fingerprinted.
    timeout = snakemake.config["benchmarks"]["longbench"].get("prompt_timeout_s", 1800)  # noqa: F821
    longbench.make_prompts(
        snakemake.input.data,  # noqa: F821
        snakemake.wildcards.subset,  # noqa: F821
        snakemake.output.prompts,  # noqa: F821
        snakemake.output.meta,  # noqa: F821
        opencompass_env.prepare(opencompass_env.interpreter()),
        timeout=timeout,
    )

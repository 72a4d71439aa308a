"""Rules niah_score, ruler_score: every unit of one run, scored by OpenCompass (its own
environment).

As the prompts scripts: the OpenCompass-side modules come from src/, and the run is read from
params.depends_on (what the scores depend on).
"""

import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from longllada import opencompass_env  # noqa: E402
from longllada.snakejob import logged  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    bench = importlib.import_module(f"longllada.benchmarks.{snakemake.params.benchmark}")  # noqa: F821
    spec = json.loads(snakemake.params.depends_on)  # noqa: F821
    run = spec["run"]
    bench.score_run(
        snakemake.input.prompts,  # noqa: F821
        snakemake.input.predictions,  # noqa: F821
        snakemake.input.generation,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        {
            "model": snakemake.wildcards.model,  # noqa: F821
            "setting": run["run"]["setting"],
            "family": run["model"]["family"],
            "ntk_lambda": run["run"]["ntk_lambda"],
            "sampler": run["run"]["sampler"],
            "sample_limit": spec["settings"].get("sample_limit"),
            "contexts": spec["settings"].get("contexts"),  # LongBench: label -> token budget
        },
        opencompass_env.prepare(opencompass_env.interpreter()),
    )

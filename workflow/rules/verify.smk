# Equivalence check: our LLaDA / Dream / LLaMA class against the checkpoint's own hub code, run in
# the separate hub-code environment (transformers 4.46.3, config verify.python). With config
# verify.required (true, or the families it gates: the paper's [llada, dream]), every GPU job of
# such a model waits for its passing verify.json (verified_of); a failing check leaves none.
from longllada.verify import settings as verify_settings

VERIFY = verify_settings(config.get("verify"))


rule verify:
    input:
        checkpoint=f"{CKPT}/{{model}}/download.json",
    output:
        f"{CKPT}/{{model}}/verify.json",
    log:
        "logs/verify/{model}.log",
    benchmark:
        "benchmarks/verify/{model}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        # The reference loads on the CPU first (4.46.3 without accelerate): 8B in fp32 is 32 GB.
        mem_mb=96000,
        # Past the reference run's own time limit, so that its clear error reaches the log.
        runtime=lambda w, attempt: (VERIFY["timeout_minutes"] + 30) * attempt,
    params:
        model=lambda w: study.models[w.model],
        settings=fingerprints.unrecorded(VERIFY),
        seed=study.seed,
        depends_on=depends_on("verify"),
    script:
        "../../scripts/verify.py"

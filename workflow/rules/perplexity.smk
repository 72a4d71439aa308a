# Figure 1a (perplexity vs context) and Figure 5 (Q/K states for t-SNE): one document, GPU.
# Diffusion models are scored chunk by chunk (resumable); causal models in one forward.


if "ppl_document_url" in study.data:

    rule fetch_ppl_document:
        output:
            study.data["ppl_document"],
        log:
            "logs/fetch_ppl_document.log",
        localrule: True
        conda:
            "../../envs/longllada.yaml"
        params:
            url=study.data["ppl_document_url"],
            sha256=study.data.get("ppl_document_sha256"),
        script:
            "../../scripts/fetch_ppl_document.py"


rule perplexity_diffusion:
    input:
        checkpoint=checkpoint_of("ppl"),
        document=ppl_document(),
        verified=verified_of("ppl"),
    output:
        result="results/ppl/{model}/{setting}/mc{draws}_chunk{chunk}.json",
        chunks="results/ppl/{model}/{setting}/mc{draws}_chunk{chunk}.chunks.jsonl",
    log:
        "logs/ppl/{model}/{setting}/mc{draws}_chunk{chunk}.log",
    benchmark:
        "benchmarks/ppl/{model}/{setting}/mc{draws}_chunk{chunk}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("ppl", lambda w: f"mc{w.draws}_chunk{w.chunk}"),
    params:
        model=lambda w: study.models[w.model],
        run=run_of("ppl"),
        settings=fingerprints.unrecorded(study.benchmarks.get("ppl")),
        seed=study.seed,
        depends_on=depends_on("ppl"),
    script:
        "../../scripts/perplexity.py"


rule perplexity_causal:
    input:
        checkpoint=checkpoint_of("ppl"),
        document=ppl_document(),
        verified=verified_of("ppl"),
    output:
        result="results/ppl/{model}/{setting}/causal_chunk{chunk}.json",
    log:
        "logs/ppl/{model}/{setting}/causal_chunk{chunk}.log",
    benchmark:
        "benchmarks/ppl/{model}/{setting}/causal_chunk{chunk}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("ppl", lambda w: f"causal_chunk{w.chunk}"),
    params:
        model=lambda w: study.models[w.model],
        run=run_of("ppl"),
        settings=fingerprints.unrecorded(study.benchmarks.get("ppl")),
        seed=study.seed,
        depends_on=depends_on("ppl"),
    script:
        "../../scripts/perplexity.py"


rule qk_states:
    input:
        checkpoint=checkpoint_of("qk_states"),
        document=ppl_document(),
        verified=verified_of("qk_states"),
    output:
        "results/qk_states/{model}/{setting}/{unit}.npz",
    log:
        "logs/qk_states/{model}/{setting}/{unit}.log",
    benchmark:
        "benchmarks/qk_states/{model}/{setting}/{unit}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("qk_states", lambda w: w.unit),
    params:
        model=lambda w: study.models[w.model],
        run=run_of("qk_states"),
        settings=fingerprints.unrecorded(study.benchmarks.get("qk_states")),
        document_index=study.benchmarks.get("ppl", {}).get("document_index", 0),
        seed=study.seed,
        depends_on=depends_on("qk_states"),
    script:
        "../../scripts/qk_states.py"

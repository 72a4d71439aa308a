"""The long document behind Figure 1a (perplexity) and Figure 5 (Q/K states)."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from pathlib import Path


def read_document(path: str | Path, index: int = 0) -> str:
    """A document's text: a .txt file's first line (as the official PPL scripts read
    `gov_report_001.txt`), or the `context` of record `index` of a LongBench-style .jsonl."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"document {path} not found: set data.ppl_document in the config (README, Data)"
        )
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            records = [line for line in f if line.strip()]
        if index >= len(records):
            raise ValueError(f"{path} has {len(records)} records, no document_index {index}")
        return json.loads(records[index])["context"]
    with open(path, encoding="utf-8") as f:
        return f.readline().rstrip("\n")


def document_ids(tokenizer, text: str, n_tokens: int, what: str) -> list[int]:
    """The first n_tokens token ids of the document, tokenized as the official scripts do
    (`tokenizer(text)["input_ids"]`, special tokens included), or a clear error if too short."""
    ids = tokenizer(text)["input_ids"]
    if len(ids) < n_tokens:
        raise ValueError(
            f"the document has {len(ids)} tokens with this tokenizer, but {what} needs {n_tokens}"
        )
    return ids[:n_tokens]


def fetch_document(url: str, out: str | Path, sha256: str | None = None, timeout: int = 60) -> str:
    """Download a document once (a local rule: compute nodes have no internet), check its
    sha256 when one is configured, write it atomically; returns the sha256 for provenance."""
    out = Path(out)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except OSError as e:
        raise OSError(
            f"could not download {url} ({e}); place the file at {out} by hand instead"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 and digest != sha256:
        raise ValueError(f"{url}: sha256 {digest} is not the configured {sha256}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return digest

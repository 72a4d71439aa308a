"""Scripts run by the OpenCompass environment's interpreter (longllada.opencompass_env).

They import only the standard library and OpenCompass (this package is not installed there:
its driver dependencies need numpy >= 2), read and write plain JSONL, and are run one process
per rule.
"""

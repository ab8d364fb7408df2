"""In-context (few-shot) evaluation of causal LMs, lm-evaluation-harness style.

``tasks`` (``ICLTask`` specs, their registry, ``get_icl_task``), ``taskfiles`` (YAML includes,
lm-evaluation-harness task files, groups and folders), ``templates`` (sandboxed Jinja2 rows -> documents),
``readers`` (raw files -> rows with line numbers),
``fewshot`` (seeded demonstration sampling), ``requests`` (prompt rendering and
tokenisation), ``scoring`` (naive and fast log-likelihoods), ``padding`` (padded and
packed batches for scoring and generation), ``metrics``, ``harness``
(one task end to end), ``results`` (json/table/plot), ``resume`` (each (task, shots) saved
when done, reused by a rerun with the same settings), ``config`` (CLI dataclass),
``models`` (folder, Hub id, GGUF, selfsup-gpt or peft adapter -> model and tokenizer).
"""

"""The ``stratum`` command: score prompts, explain a decision, check a config.

    stratum score "prompt"            score and tier of one prompt
    stratum score --jsonl < in.jsonl  {"id","prompt"} or {"id","messages"} lines in,
                                      {"id","score","tier","reason"} lines out, in order
    stratum explain "prompt"          each dimension's part, the decision, the signals read
    stratum calibrate FILE --target-share 0.1 [--write]
                                      the threshold for a target smart-tier share
    stratum check FILE                validate a config without starting anything (exit 0/2)
    stratum fit [--labels FILE] [--out PROFILE]
                                      fit a profile to the store's (or a file's) labels
    stratum labels stats|export|purge|import-openwebui
                                      the label store

The settings come from ``--config FILE``, else ``$STRATUM_CONFIG``, else
``./litellm_config.yaml`` when present, else the defaults. The CLI never imports LiteLLM.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]

"""Backend load signals: what the serving engines say about their own queues, read in the background.

NVML memory barely moves with load (vLLM pre-allocates its KV cache), so the honest answer
to "is this tier busy?" comes from the engines themselves. The parts:

* :mod:`.load`: :class:`BackendTarget` (where a tier's backend is, how to read it) and
  :class:`BackendLoad` (what one poll found).
* :mod:`.fetch`: the HTTP GET, capped in time and size; :mod:`.prometheus`: the gauges
  out of a ``/metrics`` text.
* One reader per kind, each ``poll`` (the GETs, in order) and ``read`` (a pure function
  of the replies): :mod:`.vllm`, :mod:`.llamacpp`, :mod:`.llama_swap`; :mod:`.reading`
  holds what they share. :mod:`.detect` recognises the kind of an ``auto`` target and
  re-detects it after an outage.
* :mod:`.poller`: :class:`BackendPoller`, the thread (scheduling, back-off, staleness,
  logging) that publishes ``tier -> BackendLoad``; :mod:`.warmup`, the request that
  loads a cold model.

Unknown is never invented: an unreachable or erroring backend is ``down`` with the reason
and no numbers; a reading that could not be taken is ``None``; an entry not refreshed within
``stale_after_s`` comes back ``unknown``.
"""

from __future__ import annotations

from .load import BackendLoad, BackendTarget
from .poller import BackendPoller

__all__ = ["BackendLoad", "BackendPoller", "BackendTarget"]

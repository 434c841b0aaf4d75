"""What the router knows about its tiers' capacity, read off the request path.

* :mod:`.snapshot`: :class:`~.snapshot.Signals`, the owner of every source, and the
  :class:`~.snapshot.SignalSnapshot` a decision reads (no I/O, any thread).
* :mod:`.gpu`: the NVML poller; :mod:`.circuit`: the utilisation circuit (hysteresis).
* :mod:`.backends`: what the serving engines (vLLM, llama.cpp, llama-swap) say of their
  own load, polled over HTTP.
* :mod:`.latency`: per-tier latency averages, in-flight counts and failure streaks.
* :mod:`.status`: the one status vocabulary of GPU and backend readings;
  :mod:`.thread`: the daemon thread the pollers run in.
"""

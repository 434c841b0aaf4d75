"""The router inside a LiteLLM gateway.

- :mod:`.engine`: route a request body, learn from a callback, fail open (no LiteLLM import);
- :mod:`.plugin`: the LiteLLM glue, the only module that imports LiteLLM (the proxy
  handler and the SDK router);
- :mod:`.stats`: what the router reports about itself; :mod:`.metrics`: those stats and
  the decisions as Prometheus metrics;
- :mod:`.reload`: live reload of the settings file.
"""

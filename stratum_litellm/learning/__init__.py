"""Learning which requests need a stronger tier, from the deployment's own labels.

Labels come from judged samples taken in the gateway (:mod:`.sampler`, :mod:`.judge`), from
users' ratings in Open WebUI (:mod:`.openwebui`) and from files (:mod:`.labels`); they land
in one store (:mod:`.store`, SQLite) holding what a refit needs, and ``stratum fit``
(:mod:`.fit`) turns them into a scoring profile. Nothing here imports LiteLLM.
"""

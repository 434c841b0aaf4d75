"""Which tier a request goes to, and why.

- :mod:`.policy`: the chain of steps a request walks (:class:`~.policy.Policy`);
- :mod:`.checks`: the capacity checks, in order, and :mod:`.verdict`, what each says;
- :mod:`.decision`: the result (:class:`~.decision.Decision`, :class:`~.decision.Reason`);
- :mod:`.rules`: the operators' custom rules; :mod:`.patterns`: the regular expressions
  they may use; :mod:`.override`: a client choosing its own tier;
- :mod:`.affinity`: a conversation keeping the tier it reached.
"""

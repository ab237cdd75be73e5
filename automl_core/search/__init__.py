"""The search: the loop (``loop``: ask -> evaluate in a worker -> tell -> callbacks), which family to
try next (``scheduler``), one trial in a worker process (``trial``), where trials run (``executors``),
ensembles and stacking (``ensemble``), the final choice and refit (``finalize``), and the events and
results every listener receives (``results``, ``progress``).
"""

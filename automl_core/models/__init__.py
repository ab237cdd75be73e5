"""The model families as data (``families``: search space, defaults, cost, threads; the warm-start
portfolio in ``portfolio.json`` beside it) and the metrics they are scored with (``metrics``).
"""

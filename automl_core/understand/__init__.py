"""What a finished run tells a person: scores and charts data (``evaluation``, ``predictions``),
explanations on raw columns (``explain``, ``contributions``), and the checks on data and model
(``guardrails``, ``leakage``, ``insights``).
"""

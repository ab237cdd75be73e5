"""From a raw table to what the search needs: column roles (``roles``), the task and its target
(``task``), the prepared training / test split (``tables``), validation folds (``folds``), and the
featurizer saved inside every model (``featurize``, ``batch_featurize``). ``schema`` holds the plain
types (tasks, roles, column info) every stage shares.
"""

"""What leaves a run: the saved model and its model.json (``artifacts``), predicting with it after
the new data is checked against the training data (``predict``, ``drift_checks``), ONNX export
(``onnx``), the generated training script (``codegen``) and the REST server (``serve``).
"""

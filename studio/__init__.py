"""Streamlit-side helpers of AutoML Studio: job registry, session state, navigation, charts.

Pages import from here; ``automl_core`` and ``storage`` never import this package.
"""

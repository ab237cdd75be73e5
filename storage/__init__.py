"""DuckDB experiment store and artifact files. Never imports streamlit.

>>> from storage import Store
>>> store = Store()          # $AUTOML_STORE, else ./.automl/store.duckdb

``automl_core`` is imported lazily (only where an error is raised) and for type hints only:
importing ``automl_core.errors`` runs ``automl_core/__init__``, which loads the whole engine, and
if the engine imports ``storage`` while ``storage`` is itself being imported first, the import
would fail as circular. Lazy imports make ``import storage`` safe in either order.
"""
from .store import STATUSES, TERMINAL, Store, resolve_store_path

__all__ = ["STATUSES", "TERMINAL", "Store", "resolve_store_path"]

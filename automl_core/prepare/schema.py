"""The shared vocabulary of column roles and tasks, used by intake, featurization and the store."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Role(str, Enum):
    """What a column is, as far as modelling is concerned."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"            # few levels: one-hot
    HIGH_CARDINALITY = "high_cardinality"  # many levels: target / string encoding
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"                          # free text: TF-IDF
    ID = "id"                              # dropped
    CONSTANT = "constant"                  # dropped
    EMPTY = "empty"                        # all missing: dropped

    @property
    def dropped(self) -> bool:
        return self in (Role.ID, Role.CONSTANT, Role.EMPTY)


class Task(str, Enum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"
    FORECASTING = "forecasting"
    MULTILABEL = "multilabel"          # a list of labels per row (prepare/multilabel.py)

    @property
    def is_classification(self) -> bool:
        return self in (Task.BINARY, Task.MULTICLASS)


@dataclass(frozen=True)
class ColumnInfo:
    """One input column as intake saw it. Plain data: stored as JSON in the store and model.json."""

    name: str
    role: Role
    dtype: str                      # pandas dtype after cleaning
    n_missing: int
    n_unique: int
    reason: str = ""                # why this role, in words ("12 distinct values in 30,000 rows")
    missing_tokens: dict[str, int] = field(default_factory=dict)  # e.g. {"?": 12, "": 3}
    datetime_format: str | None = None
    overridden: bool = False        # role set by the user rather than inferred

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "role": self.role.value, "dtype": self.dtype,
            "n_missing": self.n_missing, "n_unique": self.n_unique, "reason": self.reason,
            "missing_tokens": dict(self.missing_tokens), "datetime_format": self.datetime_format,
            "overridden": self.overridden,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ColumnInfo":
        return cls(**{**d, "role": Role(d["role"])})

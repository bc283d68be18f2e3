"""Label encodings of the two classifier kinds, saved as JSON (never pickled).

- multilabel: the values of every label column form one set per image, encoded by scikit-learn's
  MultiLabelBinarizer (one sigmoid per class); a label is predicted when its probability reaches
  the threshold. `columns` remembers which classes belong to which column, so that each column
  also gets a single-label accuracy (its most probable class).
- multioutput: one softmax head per label column, targets one-hot per column, keyed by column.
Classes come from every row (train and test), so a class seen only in test still has a unit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tasks.core.errors import DataError

Kind = Literal["multilabel", "multioutput"]


@dataclass
class LabelEncoding:
    kind: Kind
    columns: dict[str, list[str]]  # label column -> its classes, sorted
    threshold: float = 0.5

    @property
    def classes(self) -> list[str]:
        """Multilabel outputs, in the binarizer's (sorted) order."""
        return sorted(c for classes in self.columns.values() for c in classes)

    @classmethod
    def fit(cls, table: pd.DataFrame, label_columns: list[str], kind: Kind, threshold: float = 0.5) -> LabelEncoding:
        columns = {name: sorted(table[name].astype(str).unique()) for name in label_columns}
        if kind == "multilabel":
            owner: dict[str, str] = {}
            for name, classes in columns.items():
                for value in classes:
                    if value in owner:
                        raise DataError(f"label {value!r} appears in columns {owner[value]} and {name}: a multilabel "
                                        "model cannot tell them apart; rename one of them")
                    owner[value] = name
        return cls(kind, columns, threshold)

    def binarizer(self):
        from sklearn.preprocessing import MultiLabelBinarizer

        return MultiLabelBinarizer(classes=self.classes).fit([])

    def encode(self, table: pd.DataFrame) -> np.ndarray | dict[str, np.ndarray]:
        """Targets: (N, classes) 0/1 for multilabel; {column: (N, its classes) one-hot} for multioutput."""
        if self.kind == "multilabel":
            sets = table[list(self.columns)].astype(str).to_numpy().tolist()
            return self.binarizer().transform(sets).astype(np.float32)
        return {name: np.eye(len(classes), dtype=np.float32)[self.indices(table, name)]
                for name, classes in self.columns.items()}

    def indices(self, table: pd.DataFrame, column: str) -> np.ndarray:
        """Each row's class index within one label column."""
        lookup = {value: i for i, value in enumerate(self.columns[column])}
        return table[column].astype(str).map(lookup).to_numpy()

    def column_probabilities(self, predicted, column: str) -> np.ndarray:
        """(N, classes of the column) probabilities from a model's output."""
        if self.kind == "multioutput":
            return np.asarray(predicted[column])
        positions = [self.classes.index(value) for value in self.columns[column]]
        return np.asarray(predicted)[:, positions]

    def decode(self, predicted) -> list[dict]:
        """Per image: {"labels": [(label, probability)...], "columns": {column: (label, probability)}}."""
        n = len(predicted) if self.kind == "multilabel" else len(next(iter(predicted.values())))
        results = []
        for i in range(n):
            columns = {}
            for name, classes in self.columns.items():
                probabilities = self.column_probabilities(predicted, name)[i]
                best = int(np.argmax(probabilities))
                columns[name] = (classes[best], float(probabilities[best]))
            if self.kind == "multilabel":
                row = np.asarray(predicted)[i]
                labels = sorted(((c, float(p)) for c, p in zip(self.classes, row, strict=True) if p >= self.threshold),
                                key=lambda item: -item[1])
            else:
                labels = list(columns.values())
            results.append({"labels": labels, "columns": columns})
        return results

    def to_json(self) -> dict:
        return {**asdict(self), "classes": self.classes}

    @classmethod
    def from_json(cls, value: dict) -> LabelEncoding:
        return cls(value["kind"], {k: list(v) for k, v in value["columns"].items()}, float(value["threshold"]))

"""History: what fit recorded, one value per evaluation, and its JSON and CSV files."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from dlcore.atomic_file import atomic_write


class History:
    """`history.history` maps a metric name to one value per evaluation, e.g.
    {'iteration': [100, 200], 'loss': [0.41, 0.22], 'accuracy': [...], 'val_accuracy': [...]}."""

    def __init__(self, history: dict[str, list] | None = None):
        self.history: dict[str, list] = {key: list(values) for key, values in (history or {}).items()}

    def record(self, **values):
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History({last})"

    # ---- files
    def to_json(self, path) -> Path:
        """Write {metric: [values]} as JSON (floats round-trip exactly); returns the path."""
        path = Path(path)
        with atomic_write(path, text=True) as file:
            json.dump(self.history, file, indent=1)
        return path

    @classmethod
    def from_json(cls, path) -> History:
        """Read what to_json wrote."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise ValueError(f"{path}: expected a JSON object of lists (metric -> values), "
                             f"got {type(data).__name__}")
        return cls(data)

    def to_csv(self, path) -> Path:
        """Write one row per evaluation and one column per metric (blank where a metric has
        fewer values); returns the path."""
        path = Path(path)
        columns = list(self.history)
        rows = max((len(values) for values in self.history.values()), default=0)
        with atomic_write(path, text=True) as file:
            writer = csv.writer(file)
            writer.writerow(columns)
            for i in range(rows):
                writer.writerow([self.history[c][i] if i < len(self.history[c]) else "" for c in columns])
        return path

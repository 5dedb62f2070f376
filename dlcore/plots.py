"""PNG plots of training curves (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path

LABELS = {"accuracy": "training (subset)", "val_accuracy": "validation (subset)",
          "loss": "training loss", "val_loss": "validation loss"}


def plot_history(history, path, metrics=("accuracy", "val_accuracy"), title: str | None = None) -> Path:
    """Plot the chosen metrics of a History (or its dict) against the iteration; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = getattr(history, "history", history)
    missing = [m for m in metrics if m not in records]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(records)}")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for metric in metrics:
        ax.plot(records["iteration"], records[metric], marker="o", markersize=3,
                label=LABELS.get(metric, metric))
    ax.set_xlabel("iteration")
    ax.set_ylabel(", ".join(sorted({m.replace("val_", "") for m in metrics})))
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

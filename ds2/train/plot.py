"""The learning-curve picture: training/dev loss and dev CER per epoch."""

from __future__ import annotations

from pathlib import Path


def plot_curves(history: dict, path: str | Path) -> None:
    """Write a PNG with the loss curves (left) and the dev CER (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_cer) = plt.subplots(1, 2, figsize=(11, 4))
    steps = history.get("steps", [])
    if steps:
        ax_loss.plot([s["epoch_frac"] for s in steps], [s["loss"] for s in steps],
                     alpha=0.5, label="train (per batch)")
    epochs = history.get("epochs", [])
    if epochs:
        x = [e["epoch"] + 1 for e in epochs]
        ax_loss.plot(x, [e["train_loss"] for e in epochs], "o-", label="train (epoch mean)")
        ax_loss.plot(x, [e["dev_loss"] for e in epochs], "s-", label="dev")
        ax_cer.plot(x, [100 * e["dev_cer"] for e in epochs], "s-", color="C3", label="dev CER")
        for e, c in zip(x, [100 * e["dev_cer"] for e in epochs]):
            ax_cer.annotate(f"{c:.1f}", (e, c), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("CTC loss per token")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_cer.set_xlabel("epoch")
    ax_cer.set_ylabel("%CER (greedy)")
    ax_cer.set_ylim(bottom=0)
    ax_cer.legend()
    ax_cer.grid(alpha=0.3)
    fig.suptitle(history.get("title", "training curves"))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

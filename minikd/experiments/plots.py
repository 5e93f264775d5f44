"""Pictures for the command line and the examples (needs matplotlib: ``pip install minikd[plot]``).

Each function takes the plain data an experiment returned and writes one PNG. matplotlib is
imported only when a picture is drawn, so minikd never needs it otherwise.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

__all__ = ["plot_sweep", "plot_temperature", "plot_training_curves", "require_matplotlib"]


def require_matplotlib():
    """Import matplotlib with a non-interactive backend, or raise ImportError with a hint."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("matplotlib is not installed; install it with "
                          "'pip install \"minikd[plot]\"' (or 'pip install matplotlib')") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        import matplotlib.pyplot as plt

        plt.close(fig)


def plot_temperature(temperatures, table, names, *, path):
    """Probability of each class versus temperature (log-scaled T axis).

    Parameters
    ----------
    temperatures : sequence of float, length K
    table : ndarray of shape (K, C)
        ``table[k]`` is the softmax at ``temperatures[k]``.
    names : sequence of str, length C
    path : str
        Where to write the PNG.
    """
    plt = require_matplotlib()
    order = np.argsort(temperatures)
    ts = np.asarray(temperatures, dtype=float)[order]
    table = np.asarray(table)[order]  # (K, C)
    fig, ax = plt.subplots(figsize=(6, 4))
    for c, name in enumerate(names):
        ax.plot(ts, table[:, c], marker="o" if len(ts) <= 12 else None, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("softmax(z / T)")
    ax.set_ylim(0, 1)
    ax.set_title("Higher temperature spreads probability to the other classes")
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_training_curves(curves, *, path, title="Test accuracy per epoch"):
    """Accuracy per epoch of several models (e.g. scratch vs distilled), mean over seeds.

    Parameters
    ----------
    curves : dict of str to ndarray of shape (S, E)
        Per model, the accuracy of each of S seeds after each of E epochs.
    path : str
    title : str
    """
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, acc in curves.items():
        acc = np.atleast_2d(np.asarray(acc, dtype=float))  # (S, E)
        epochs = np.arange(1, acc.shape[1] + 1)
        mean, std = acc.mean(axis=0), acc.std(axis=0)
        ax.plot(epochs, 100 * mean, label=name)
        ax.fill_between(epochs, 100 * (mean - std), 100 * (mean + std), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_sweep(temperatures, alphas, gain, *, path, title=None):
    """Heat map of the distilled student's gain over scratch for each (T, alpha).

    Parameters
    ----------
    temperatures : sequence of float, length K
    alphas : sequence of float, length A
    gain : ndarray of shape (K, A)
        Mean gain in accuracy points.
    path : str
    title : str, optional
    """
    plt = require_matplotlib()
    gain = np.asarray(gain, dtype=float)  # (K, A)
    fig, ax = plt.subplots(figsize=(1.2 * len(alphas) + 2.5, 0.6 * len(temperatures) + 2))
    lim = max(float(np.max(np.abs(gain))), 1e-9)
    im = ax.imshow(gain, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_yticks(range(len(temperatures)), [f"{t:g}" for t in temperatures])
    ax.set_xlabel("alpha (weight of the soft term)")
    ax.set_ylabel("temperature T")
    for i in range(gain.shape[0]):
        for j in range(gain.shape[1]):
            dark = abs(gain[i, j]) > 0.6 * lim  # white text on the saturated cells
            ax.text(j, i, f"{gain[i, j]:+.1f}", ha="center", va="center", fontsize=9,
                    color="white" if dark else "black")
    fig.colorbar(im, ax=ax, label="gain over scratch (points)")
    ax.set_title(title or "Distilled minus scratch accuracy")
    _save(fig, path)

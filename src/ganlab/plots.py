"""Report figures (matplotlib, Agg backend, PNG). Each function draws one figure from plain data, writes it
atomically to `out` and returns `out`, or returns None (and writes nothing) when there is nothing to draw,
so the report can say "not run" instead of showing an empty axis."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI or in DVC stages
import matplotlib.pyplot as plt  # noqa: E402

from ganlab.catalogue import SweepPoint  # noqa: E402
from ganlab.io import atomic_path  # noqa: E402

DPI = 100


def _save(fig: "plt.Figure", out: Path) -> Path:
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Path(out)


def _panels(items: Sequence[tuple[str, Sequence[Mapping[str, float]]]], draw, out: Path) -> Path | None:
    """Small multiples, four to a row: one panel per (title, rows) item, filled by `draw(ax, rows)`; None when
    there are no items."""
    if not items:
        return None
    cols = min(4, len(items))
    nrows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.6 * nrows), squeeze=False)
    for ax, (title, rows) in zip(axes.flat, items):
        draw(ax, rows)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out)


def loss_curves(losses: Mapping[str, Sequence[Mapping[str, float]]], out: Path) -> Path | None:
    """One panel per experiment: loss_d and loss_g against epoch.

    losses: experiment -> rows with keys epoch, loss_d, loss_g (as in metrics/train/<exp>_losses.csv)."""

    def draw(ax, rows) -> None:
        epochs = [float(r["epoch"]) for r in rows]
        ax.plot(epochs, [float(r["loss_d"]) for r in rows], marker=".", label="loss_d")
        ax.plot(epochs, [float(r["loss_g"]) for r in rows], marker=".", label="loss_g")
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)

    return _panels([(exp, rows) for exp, rows in sorted(losses.items()) if rows], draw, out)


def learning_curves(curves: Mapping[str, Sequence[Mapping[str, float]]], *, x: str, x_label: str, out: Path,
                    collapse_recall: float) -> Path | None:
    """One panel per experiment: FID (left axis, log scale) and recall (right axis) against `x` ("epoch" or
    "train_seconds"), with the collapse line recall = `collapse_recall` dashed.

    curves: experiment -> rows with keys epoch, train_seconds, fid, recall (metrics/train/<exp>_curve.csv, seed means)."""

    def draw(ax, rows) -> None:
        xs = [float(r[x]) for r in rows]
        ax.plot(xs, [float(r["fid"]) for r in rows], marker=".", color="tab:blue")
        ax.set_yscale("log")
        ax.set_ylabel("FID", fontsize=8, color="tab:blue")
        right = ax.twinx()
        right.plot(xs, [float(r["recall"]) for r in rows], marker=".", color="tab:orange")
        right.axhline(collapse_recall, color="tab:orange", linestyle="--", linewidth=0.8)
        right.set_ylim(0, 1)
        right.set_ylabel("recall", fontsize=8, color="tab:orange")
        right.tick_params(labelsize=7)
        ax.set_xlabel(x_label, fontsize=8)

    return _panels([(exp, rows) for exp, rows in sorted(curves.items()) if rows], draw, out)


def sweep(
    series: Mapping[str, Sequence[SweepPoint]],
    *,
    x_label: str,
    out: Path,
    metrics: Sequence[str] = ("fid", "precision", "recall"),
    reported: Mapping[str, Sequence[tuple[float, Mapping[str, float]]]] | None = None,
) -> Path | None:
    """One panel per metric: each series' metric (mean, error bar = std when several seeds) against the
    swept value; `reported` adds a source report's points as hollow markers.

    series: label -> points sorted by x; reported: label -> [(x, {metric: value})]."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.8 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for label, points in sorted(series.items()):
            pts = [p for p in points if metric in p.metrics]
            if not pts:
                continue
            ax.errorbar(
                [p.x for p in pts], [p.metrics[metric].mean for p in pts],
                yerr=[p.metrics[metric].std or 0.0 for p in pts], marker="o", capsize=3, label=f"ours: {label}",
            )
        for label, points in sorted((reported or {}).items()):
            pts = [(x, m[metric]) for x, m in points if m.get(metric) is not None]
            if pts:
                ax.plot([x for x, _ in pts], [v for _, v in pts], linestyle="none", marker="s",
                        markerfacecolor="none", label=f"reported: {label}")
        ax.set_xlabel(x_label)
        ax.set_title(metric)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)

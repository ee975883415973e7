"""The experiment catalogue as data: every number the five source reports printed, and every "claim to
test" as a small pure predicate over our results (source: `shared/reference/experiments.md`, §A–§D).

Nothing here reads files. The report stage builds a `Results` (aggregated evaluation / training / probe
numbers, mean ± std over training seeds) and calls `judge(claim, results)`, which returns a `Verdict`. The rules,
in the order they apply to each comparison of two numbers:

- ``not run``        an input the claim needs is missing (no evaluation file for that experiment × method,
                     fewer sweep points than the claim needs);
- ``not judged: collapsed``  a side of a comparison of sample metrics is a collapsed generator: its mean recall
                     or coverage is below `COLLAPSE` (0.05), or its FID is above the best noise set's of the
                     feature space's sanity battery (worse than noise). Such a generator scores a high precision
                     and an arbitrary FID (precision alone proves nothing), so no ordering of it means anything.
                     The verdict names the side. (Loss and encoder-probe claims are not guarded.)
- ``inconclusive``   a tie (equal means), or, with ≥ `MIN_SEEDS` (3) seeds on both sides, Welch's two-sided
                     t-test (unequal variances) finds no difference at α = `ALPHA` (0.05);
- ``confirmed`` / ``refuted``  with ≥ 3 seeds per side and p < 0.05, by the sign of the difference;
- ``indicative``     fewer than 3 seeds on a side: no test is possible, the sign of the difference is reported
                     ("indicative (n = 1): holds" / "does not hold") and counted apart from the judged verdicts.

A claim with several parts (e.g. "better on FID and recall") is the conjunction of its parts, the first of
these that any part has: not run, refuted, not judged, indicative against, inconclusive, indicative for,
confirmed. Verdicts are computed, never written by hand.

The catalogue also says what the report shows (`ganlab.report` renders it and names no section itself): each
`Section`'s results table and its extra `blocks` (`ReportedTable`, `SweepSummary`, `ProbeTable`, `Note`), the
sweep figures (`SWEEP_FIGURES`), the extra grid images (`GRID_FIGURES`), and which evaluation files are sweep
points (`SWEEPS_BY_METHOD`, `SWEEPS_BY_EXPERIMENT`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

from scipy import stats

MIN_SEEDS = 3  # per side, for a test; fewer gives an indicative verdict
ALPHA = 0.05  # Welch's two-sided t-test
COLLAPSE = {"recall": 0.05, "coverage": 0.05}  # a generator below either mean is collapsed: not judged

CONFIRMED, REFUTED, INCONCLUSIVE = "confirmed", "refuted", "inconclusive"
INDICATIVE, NOT_JUDGED, NOT_RUN = "indicative", "not judged: collapsed", "not run"
STATUSES = (CONFIRMED, REFUTED, INCONCLUSIVE, INDICATIVE, NOT_JUDGED, NOT_RUN)
JUDGED = (CONFIRMED, REFUTED, INCONCLUSIVE)

METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "label_accuracy")
LOWER_IS_BETTER = {"fid": True, "kid": True, "precision": False, "recall": False, "density": False,
                   "coverage": False, "label_accuracy": False}


# --- Reported numbers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reported:
    """One row a source report printed. `experiment`/`method` key it to our evaluation files; metrics the
    report did not print are None. FID was computed by the course's server with unknown settings, so it is
    shown beside ours, never compared with it."""

    section: str
    experiment: str
    method: str
    source: str
    fid: float | None = None
    precision: float | None = None
    recall: float | None = None
    note: str = ""


UNSTATED_BASE = "?"  # `Reported.experiment` when the source does not say which generator a method was applied to

REPORTED: tuple[Reported, ...] = (
    Reported("A", "vanilla", "none", "000", 29.28, 0.54, 0.23),
    Reported("A", "vanilla", "none", "003", 63.99, 0.39, 0.21, "003's baseline (recall 0.205 in its text)"),
    Reported("A", "vanilla_bn", "none", "000", 26.68, 0.54, 0.19),
    Reported("A", "wgan", "none", "000", 58.41, 0.50, 0.27),
    Reported("A", "wgan", "none", "003", 40.78, 0.34, 0.29),
    Reported("A", "wgan_gp", "none", "000", 40.45, 0.51, 0.32),
    Reported("A", "hinge_bn", "none", "000", 20.98, 0.51, 0.47),
    Reported("A", "sagan", "none", "000", 18.19, 0.77, 0.58),
    Reported("A", "gmgan_static", "none", "000", 41.01, 0.85, 0.48),
    Reported("B", "vanilla", "none", "003", 63.99, 0.39, 0.21, "baseline"),
    Reported("B", "vanilla", "drs", "003", 38.49, 0.34, 0.28, "threshold 0.7"),
    Reported("B", "wgan", "none", "003", 40.78, 0.34, 0.29, "baseline"),
    Reported("B", "wgan", "drs", "003", 38.02, 0.51, 0.25, "threshold 0.7"),
    Reported("B", "wgan", "dgflow", "003", 40.02, 0.47, 0.25, "KL, η=0.1, γ=0.01, 25 steps"),
    Reported("B", UNSTATED_BASE, "ddls", "003", 51.66, None, None, "base generator not stated; E(z)=‖z‖²/2 − d(G(z))"),
    Reported("B", "vanilla", "truncation", "003", 27.65, 0.42, 0.16, "hard truncation ψ=2.0"),
    Reported("B", "wgan", "truncation", "003", 28.35, 0.49, 0.18, "hard truncation ψ=0.9"),
)


@dataclass(frozen=True)
class SigmaRow:
    """A row of report 004's GM-GAN table (None: not reported)."""

    sigma0: float
    c: float
    lr: float
    gm_lr: float
    local_fid: float | None
    server_fid: float | None
    precision: float | None
    recall: float | None


GMGAN_SIGMA_TABLE: tuple[SigmaRow, ...] = (
    SigmaRow(1.7, 3, 8e-5, 1e-9, 8.63, 26.06, 0.53, 0.31),
    SigmaRow(1.4, 3, 8e-5, 1e-7, 8.17, 17.84, 0.56, 0.23),
    SigmaRow(1.4, 3, 8e-5, 1e-9, 8.18, None, None, None),
    SigmaRow(1.1, 3, 8e-5, 1e-9, 11.96, None, None, None),
)
# Collapsed runs before the GM-lr fix (150 epochs, GM lr = lr): (σ₀, c, lr) -> reported FID.
GMGAN_COLLAPSED: tuple[tuple[float, float, float, float], ...] = (
    (1.7, 3, 8e-5, 100), (0.7, 3, 2e-4, 150), (1.0, 3, 2e-4, 134), (1.0, 1, 2e-4, 210),
)

# Report 002 (AFHQ): classifiers on BiGAN encoder codes E(x); BiGAN paper (Donahue et al. 2017, Table 1):
# 1-NN on the encoder's features on MNIST, the anchor for our MNIST BiGAN.
BIGAN_REPORTED: dict[str, dict[str, float]] = {
    "bigan_afhq": {"svm": 0.7285, "linear": 0.5613},
    "bigan_mnist": {"knn1": 0.974},
}
PROBES = ("svm", "linear", "knn1")


# --- What the report shows besides each section's results table ------------------------------------------
# Plain data, no rendering: `ganlab.report` turns each kind into Markdown/HTML blocks through its registry
# `SECTION_BLOCKS`, so a new section, or a new table in one, is an edit of this module only.


@dataclass(frozen=True)
class Note:
    """A paragraph, shown as written."""

    text: str


@dataclass(frozen=True)
class ReportedTable:
    """A table a source report printed: the `caption` paragraph, then the rows, each cell written with its
    column's `format()` spec (`formats[i]`, e.g. "g" or ".2f"); a None cell (not reported) is written "–"."""

    caption: str
    headers: tuple[str, ...]
    formats: tuple[str, ...]
    rows: tuple[tuple[float | None, ...], ...]


@dataclass(frozen=True)
class SweepSummary:
    """One sentence with our sweep series (experiment, method, key), point by point: P, R and FID at each swept
    value (mean ± std over seeds), or "not run". `symbol` is how the text writes the swept value, e.g. "σ₀"."""

    symbol: str
    experiment: str
    method: str
    key: str


@dataclass(frozen=True)
class ProbeTable:
    """Encoder-probe accuracies under the subheading `title`: for every experiment probed by us or in `reported`
    (sorted), our row (mean ± std) and the reported row, one column per probe name in `probes`."""

    title: str
    reported: Mapping[str, Mapping[str, float]]
    probes: tuple[str, ...]


SectionBlock = Note | ReportedTable | SweepSummary | ProbeTable


@dataclass(frozen=True)
class Section:
    """A section of the catalogue and of the report: its results table lists `experiments` × `methods` (ours
    beside the `REPORTED` rows of the same key), then its `blocks` in order."""

    key: str
    title: str
    sources: tuple[str, ...]
    experiments: tuple[str, ...]  # our experiment names belonging to this section, in table order
    methods: tuple[str, ...] = ("none",)
    # A methods × bases grid: a row with a method other than "none" is kept only when it was run or reported.
    hide_unrun_methods: bool = False
    blocks: tuple[SectionBlock, ...] = ()


SECTIONS: tuple[Section, ...] = (
    Section(
        "A",
        "A. MNIST, fixed MLP generator",
        ("000", "003"),
        ("vanilla", "vanilla_bn", "wgan", "wgan_gp", "hinge_bn", "sagan", "gmgan_static"),
    ),
    Section(
        "B",
        "B. Post-processing of trained MNIST generators",
        ("003",),
        ("vanilla", "wgan"),
        ("none", "drs", "dgflow", "ddls", "truncation"),
        hide_unrun_methods=True,
    ),
    Section(
        "C",
        "C. Supervised dynamic GM-GAN on MNIST",
        ("004",),
        ("gmgan", "gmgan_sep"),
        blocks=(
            ReportedTable(
                "Report 004's σ₀ table (reported):",
                ("σ₀", "c", "lr", "GM lr", "local FID", "server FID", "P", "R"),
                ("g", "g", "g", "g", ".2f", ".2f", ".2f", ".2f"),
                tuple((r.sigma0, r.c, r.lr, r.gm_lr, r.local_fid, r.server_fid, r.precision, r.recall)
                      for r in GMGAN_SIGMA_TABLE),
            ),
            SweepSummary("σ₀", "gmgan", "none", "sigma"),
            Note("Collapsed runs before the GM-lr fix (reported, GM lr = lr, 150 epochs): " + ", ".join(
                f"σ₀/c/lr = {s:g}/{c:g}/{lr:g} → FID {fid:g}" for s, c, lr, fid in GMGAN_COLLAPSED) + "."),
        ),
    ),
    Section(
        "D",
        "D. DCGAN family",
        ("001", "002"),
        (
            "dcgan_mnist", "dcgan_mnist_imbalance_g", "dcgan_mnist_imbalance_d", "dcgan_mnist_torchinit",
            "dcgan_mnist_nz10", "dcgan_mnist_nz1000", "cdcgan_mnist", "cdcgan_mnist_noyd", "bigan_mnist",
            "dcgan_cifar10", "dcgan_sheep", "dcgan_afhq", "cwgan_afhq", "bigan_afhq",
        ),
        blocks=(
            ProbeTable("BiGAN encoder probes (accuracy on E(x))", BIGAN_REPORTED, PROBES),
            Note("Reported: bigan_afhq from report 002 (SVM 72.85 %, linear 56.13 %); bigan_mnist 1-NN "
                 "is the BiGAN paper's MNIST anchor (about 97.4 %)."),
        ),
    ),
)


# --- Sweeps and figures --------------------------------------------------------------------------------

# Which plain evaluation files (no "sweep" mapping) are points of a sweep: by method, and by experiment (the
# evaluate stage writes the recipe as `params`, so the base experiment joins the curve of its sweep points).
SWEEPS_BY_METHOD: dict[str, tuple[str, ...]] = {"drs": ("threshold",), "truncation": ("psi",)}
SWEEPS_BY_EXPERIMENT: dict[str, tuple[str, ...]] = {"gmgan": ("sigma", "gm_lr")}


@dataclass(frozen=True)
class SweepFigure:
    """A figure of every sweep series with this `method` and swept `key` (one line per experiment), one panel
    per metric, drawn to `<figures dir>/<file>`; `reported` adds a source report's points as hollow markers
    (label -> [(x, {metric: value})])."""

    title: str
    method: str
    key: str
    x_label: str
    file: str
    metrics: tuple[str, ...] = ("fid", "precision", "recall")
    reported: Mapping[str, Sequence[tuple[float, Mapping[str, float]]]] = field(default_factory=dict)


# In the order the report's "Figures" part shows them (after the loss curves).
SWEEP_FIGURES: tuple[SweepFigure, ...] = (
    SweepFigure(
        "GM-GAN σ₀ sweep (precision, recall vs σ₀)", "none", "sigma", "σ₀", "gmgan_sigma_sweep.png",
        metrics=("precision", "recall"),
        reported={"004": [(r.sigma0, {"precision": r.precision, "recall": r.recall})
                          for r in GMGAN_SIGMA_TABLE if r.precision is not None]},
    ),
    SweepFigure("DRS threshold sweep (FID, precision, recall vs threshold)", "drs", "threshold",
                "acceptance threshold", "drs_threshold_sweep.png"),
    SweepFigure("Truncation ψ curve (FID, precision, recall vs ψ)", "truncation", "psi", "ψ", "truncation_psi.png"),
)


@dataclass(frozen=True)
class GridFigures:
    """PNGs of the grids folder whose name contains `marker`, shown under `title` in the "Figures" part (one
    image each, "not run" when there is none) instead of among the sample grids."""

    marker: str
    title: str


GRID_FIGURES: tuple[GridFigures, ...] = (
    GridFigures("interp", "Conditional GAN class interpolation (class a → b at a fixed latent)"),
    GridFigures("recon", "BiGAN reconstructions x vs G(E(x))"),
)


# --- Learning curves ------------------------------------------------------------------------------------

CONVERGED_FID_GAIN = 0.05  # "converged": the last three curve points improve FID by less than 5 %


def convergence(fids: Sequence[float]) -> str:
    """"converged" when FID at the last curve point is less than 5 % below FID three points back (the last three
    points), "still improving" otherwise, "too few points" with fewer than three."""
    if len(fids) < 3:
        return "too few points"
    gain = (fids[-3] - fids[-1]) / fids[-3]
    return "converged" if gain < CONVERGED_FID_GAIN else "still improving"


# --- Our results, as the predicates see them --------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """A number aggregated over n runs (seeds): mean, and the sample std (ddof 1) when n ≥ 2, else None."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Stat":
        values = [float(v) for v in values]
        if not values:
            raise ValueError("Stat.of needs at least one value")
        n = len(values)
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n >= 2 else None
        return cls(mean, std, n)

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g} (n={self.n})" if self.std is not None else f"{self.mean:.4g}"


@dataclass(frozen=True)
class SweepPoint:
    x: float
    metrics: Mapping[str, Stat]


@dataclass(frozen=True)
class Results:
    """What the predicates read.

    evaluations: (experiment, method) -> metric name -> Stat (FID, precision, recall, density, coverage);
    sweeps: (experiment, method, swept key) -> points sorted by x (e.g. ("vanilla", "drs", "threshold"),
      ("gmgan", "none", "sigma"));
    training: experiment -> {"final_loss_d", "final_loss_g", ...} -> Stat;
    probes: experiment -> {"svm", "linear", "knn1"} -> Stat (accuracies in [0, 1]);
    noise_fid: (experiment, method) -> (noise set, its FID) in the run's feature space."""

    evaluations: Mapping[tuple[str, str], Mapping[str, Stat]] = field(default_factory=dict)
    sweeps: Mapping[tuple[str, str, str], Sequence[SweepPoint]] = field(default_factory=dict)
    training: Mapping[str, Mapping[str, Stat]] = field(default_factory=dict)
    probes: Mapping[str, Mapping[str, Stat]] = field(default_factory=dict)
    # (experiment, method) -> the best noise set's FID in that run's feature space (its sanity battery, see
    # `ganlab.battery`): a generator with a higher FID is worse than noise there, and not judged
    noise_fid: Mapping[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def metric(self, experiment: str, method: str, name: str) -> Stat | None:
        return self.evaluations.get((experiment, method), {}).get(name)


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str  # one sentence: what was compared and why this status
    used: tuple[tuple[str, str], ...] = ()  # (label, number) pairs the verdict rests on
    holds: bool | None = None  # the direction of an indicative verdict (and of confirmed / refuted)
    n: int | None = None  # an indicative verdict's smallest number of seeds on a side

    @property
    def label(self) -> str:
        """The status as the report prints it, e.g. "indicative (n = 1): holds"."""
        if self.status != INDICATIVE:
            return self.status
        return f"{INDICATIVE} (n = {self.n}): {'holds' if self.holds else 'does not hold'}"


# --- Verdict building blocks (pure) -------------------------------------------------------------------


def welch_p(a: Stat, b: Stat) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) from the two sides' mean, std and n (each n ≥ 2)."""
    if a.std == 0 and b.std == 0:  # no spread on either side: any difference is certain, a tie is not one
        return 1.0 if a.mean == b.mean else 0.0
    return float(stats.ttest_ind_from_stats(a.mean, a.std, a.n, b.mean, b.std, b.n, equal_var=False).pvalue)


def compare(label_a: str, a: Stat | None, label_b: str, b: Stat | None, *, a_greater: bool) -> Verdict:
    """Is a > b (a_greater) or a < b? The rules of the module docstring, collapse aside (`better` guards it)."""
    used = tuple((lbl, str(s) if s is not None else "missing") for lbl, s in ((label_a, a), (label_b, b)))
    missing = [lbl for lbl, s in ((label_a, a), (label_b, b)) if s is None]
    if missing:
        return Verdict(NOT_RUN, f"missing: {', '.join(missing)}", used)
    question = f"{label_a} {'>' if a_greater else '<'} {label_b}"
    diff = a.mean - b.mean
    if diff == 0:
        return Verdict(INCONCLUSIVE, f"{question}? a tie (both {a.mean:.4g})", used)
    holds = diff > 0 if a_greater else diff < 0
    answer = f"{question}: {'yes' if holds else 'no'}"
    n = min(a.n, b.n)
    if n < MIN_SEEDS:
        return Verdict(INDICATIVE, f"{answer} (n = {n}: too few seeds for a test)", used, holds, n)
    p = welch_p(a, b)
    if p >= ALPHA:
        return Verdict(INCONCLUSIVE, f"{question}? Welch's t-test p = {p:.2g} ≥ {ALPHA:g}", used)
    return Verdict(CONFIRMED if holds else REFUTED, f"{answer} (Welch's t-test p = {p:.2g})", used, holds)


def collapsed(metrics: Mapping[str, Stat] | None) -> str | None:
    """Why a run counts as collapsed (its mean recall or coverage below `COLLAPSE`), or None."""
    low = [f"{m} {metrics[m].mean:.3g} < {limit:g}" for m, limit in COLLAPSE.items()
           if metrics and m in metrics and metrics[m].mean < limit]
    return ", ".join(low) or None


def worse_than_noise(results: Results, run: tuple[str, str]) -> str | None:
    """Why `run` scores worse than noise in its feature space (mean FID above the battery's best noise set), or None."""
    fid, noise = results.metric(*run, "fid"), results.noise_fid.get(run)
    if fid is None or noise is None or fid.mean <= noise[1]:
        return None
    return f"FID {fid.mean:.4g} > {noise[1]:.4g} of {noise[0]}: worse than noise"


def collapse_guard(results: Results, runs: Sequence[tuple[str, str]], used=()) -> Verdict | None:
    """"not judged: collapsed" naming every run of `runs` that is collapsed or worse than noise, or None."""
    bad = [f"{_label(r)} ({why})" for r in runs
           if (why := collapsed(results.evaluations.get(r)) or worse_than_noise(results, r))]
    return Verdict(NOT_JUDGED, "collapsed: " + "; ".join(bad), tuple(used)) if bad else None


def better(results: Results, metric: str, a: tuple[str, str], b: tuple[str, str]) -> Verdict:
    """Is run a better than run b on `metric` (lower FID and KID, higher everything else)?"""
    verdict = compare(
        f"{metric}({_label(a)})", results.metric(*a, metric),
        f"{metric}({_label(b)})", results.metric(*b, metric),
        a_greater=not LOWER_IS_BETTER[metric],
    )
    if verdict.status == NOT_RUN:
        return verdict
    return collapse_guard(results, (a, b), verdict.used) or verdict


# First match wins: how a conjunction's parts combine (an indicative part counts by its direction).
_CONJUNCTION_ORDER = (NOT_RUN, REFUTED, NOT_JUDGED, (INDICATIVE, False), INCONCLUSIVE, (INDICATIVE, True), CONFIRMED)


def _rank(v: Verdict) -> int:
    return _CONJUNCTION_ORDER.index((INDICATIVE, bool(v.holds)) if v.status == INDICATIVE else v.status)


def all_of(parts: Sequence[Verdict]) -> Verdict:
    """Conjunction: not run > refuted > not judged > indicative against > inconclusive > indicative for > confirmed."""
    worst = min(parts, key=_rank)
    deciding = [p for p in parts if _rank(p) == _rank(worst)]
    detail = "; ".join(dict.fromkeys(p.detail for p in (deciding if worst.status != CONFIRMED else parts)))  # once each
    used = tuple(dict.fromkeys(u for p in parts for u in p.used))
    n = min((p.n for p in deciding if p.n is not None), default=None)
    return Verdict(worst.status, detail, used, worst.holds, n)


def best_among(results: Results, metric: str, target: tuple[str, str], runs: Sequence[tuple[str, str]], *, worst: bool = False) -> Verdict:
    """Is `target` the best (or worst) on `metric` among `runs`? Every run must be present (else not run);
    the target is compared pairwise with each other run, each comparison under the rules above."""
    others = [r for r in runs if r != target]
    missing = [_label(r) for r in [target, *others] if results.metric(*r, metric) is None]
    if missing:
        return Verdict(NOT_RUN, f"{metric}: missing {', '.join(missing)}",
                       tuple((f"{metric}({_label(r)})", str(results.metric(*r, metric) or "missing")) for r in [target, *others]))
    if worst:
        parts = [better(results, metric, r, target) for r in others]
    else:
        parts = [better(results, metric, target, r) for r in others]
    return all_of(parts)


def best_of_group(results: Results, metric: str, group: Sequence[tuple[str, str]], rest: Sequence[tuple[str, str]], *, worst: bool = False) -> Verdict:
    """Is the best (worst) run on `metric` one of `group` rather than one of `rest`? Compares the group's
    best (worst) with the rest's best (worst) under the rules above; every run must be present."""
    missing = [_label(r) for r in [*group, *rest] if results.metric(*r, metric) is None]
    used = tuple((f"{metric}({_label(r)})", str(results.metric(*r, metric) or "missing")) for r in [*group, *rest])
    if missing:
        return Verdict(NOT_RUN, f"{metric}: missing {', '.join(missing)}", used)
    sign = 1.0 if LOWER_IS_BETTER[metric] else -1.0
    if worst:
        sign = -sign
    pick = lambda runs: min(runs, key=lambda r: sign * results.metric(*r, metric).mean)  # noqa: E731
    g, r = pick(group), pick(rest)
    verdict = better(results, metric, g, r) if not worst else better(results, metric, r, g)
    return replace(verdict, detail=f"{'worst' if worst else 'best'} {metric}: {verdict.detail}", used=used)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    def ranks(v: Sequence[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def trend(points: Sequence[SweepPoint] | None, metric: str, *, increasing: bool, label: str, min_points: int = 2) -> Verdict:
    """Does `metric` rise (increasing) or fall with the swept value? Not judged when a point is a collapsed
    generator; Spearman ρ over the points gives the direction, and the end points (smallest vs largest x) are
    compared under the rules above: a tie or a failed test there is inconclusive, fewer than 3 seeds indicative.
    Fewer than `min_points` distinct x values: not run."""
    pts = [p for p in (points or ()) if metric in p.metrics]
    used = tuple((f"{label} {metric} @ {p.x:g}", str(p.metrics[metric])) for p in pts)
    if len({p.x for p in pts}) < min_points:
        return Verdict(NOT_RUN, f"{label}: {len(pts)} sweep point(s) with {metric}, need {min_points}", used)
    bad = [f"{label} @ {p.x:g} ({why})" for p in pts if (why := collapsed(p.metrics))]
    if bad:
        return Verdict(NOT_JUDGED, "collapsed: " + "; ".join(bad), used)
    rho = spearman([p.x for p in pts], [p.metrics[metric].mean for p in pts])
    lo, hi = min(pts, key=lambda p: p.x), max(pts, key=lambda p: p.x)
    ends = compare(f"{metric}@{hi.x:g}", hi.metrics[metric], f"{metric}@{lo.x:g}", lo.metrics[metric], a_greater=increasing)
    if math.isnan(rho):  # the metric does not move over the sweep (e.g. saturated at 1): no direction to judge
        return Verdict(INCONCLUSIVE, f"{label}: {metric} is the same at every point, so it neither rises nor "
                       "falls (Spearman ρ undefined)", used)
    holds = rho > 0 if increasing else rho < 0
    detail = f"{label}: {metric} {'rises' if increasing else 'falls'} with x? Spearman ρ = {rho:.2f} over {len(pts)} points; end points {ends.detail}"
    if ends.status == INDICATIVE:
        return Verdict(INDICATIVE, detail, used, holds, ends.n)
    if ends.status == INCONCLUSIVE or ends.holds != holds:  # the ends disagree with the ranks: no direction
        return Verdict(INCONCLUSIVE, detail, used)
    return Verdict(CONFIRMED if holds else REFUTED, detail, used, holds)


def final_loss(results: Results, experiment: str, which: str) -> Stat | None:
    return results.training.get(experiment, {}).get(f"final_loss_{which}")


def probe(results: Results, experiment: str, name: str) -> Stat | None:
    return results.probes.get(experiment, {}).get(name)


def _label(run: tuple[str, str]) -> str:
    experiment, method = run
    return experiment if method == "none" else f"{experiment}+{method}"


# --- Claims -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A claim from a source report. `text` is the report's wording; `test` says how we operationalise it;
    `judge` is the pure predicate."""

    id: str
    section: str
    source: str
    text: str
    test: str
    judge: Callable[[Results], Verdict]


SECTION_A_RUNS = tuple((e, "none") for e in SECTIONS[0].experiments)
# Report 003's results table: the seven rows the truncation claim ranks.
SECTION_B_ROWS = (
    ("vanilla", "none"), ("vanilla", "drs"), ("wgan", "none"), ("wgan", "drs"), ("wgan", "dgflow"),
    ("vanilla", "truncation"), ("wgan", "truncation"),
)
_TRUNC = [r for r in SECTION_B_ROWS if r[1] == "truncation"]
_NOT_TRUNC = [r for r in SECTION_B_ROWS if r[1] != "truncation"]


def _drs_threshold(results: Results) -> Verdict:
    # Every experiment with a DRS threshold series must show it (the report swept the vanilla/WGAN ones).
    keys = sorted(k for k in results.sweeps if k[1] == "drs" and k[2] == "threshold")
    if not keys:
        return Verdict(NOT_RUN, "no DRS threshold sweep series")
    return all_of([trend(results.sweeps[k], "precision", increasing=True, label=f"{k[0]}+drs", min_points=3) for k in keys])


def _sigma_tradeoff(results: Results) -> Verdict:
    points = results.sweeps.get(("gmgan", "none", "sigma"))
    return all_of([
        trend(points, "precision", increasing=False, label="gmgan σ₀ sweep"),
        trend(points, "recall", increasing=True, label="gmgan σ₀ sweep"),
    ])


def _gm_lr_collapse(results: Results) -> Verdict:
    # Per-class collapse shows as lost coverage; the tiny-GM-lr point must cover more than the GM lr = lr point.
    # Only the tiny-GM-lr side is guarded: the claim is that the other one collapses.
    points = results.sweeps.get(("gmgan", "none", "gm_lr"))
    pts = [p for p in (points or ()) if "coverage" in p.metrics]
    if len({p.x for p in pts}) < 2:
        return Verdict(NOT_RUN, f"gmgan gm_lr sweep: {len(pts)} point(s) with coverage, need 2 (tiny vs large GM lr)")
    lo, hi = min(pts, key=lambda p: p.x), max(pts, key=lambda p: p.x)
    verdict = compare(f"coverage(gm_lr={lo.x:g})", lo.metrics["coverage"], f"coverage(gm_lr={hi.x:g})",
                      hi.metrics["coverage"], a_greater=True)
    why = collapsed(lo.metrics)
    if verdict.status != NOT_RUN and why:
        verdict = Verdict(NOT_JUDGED, f"collapsed: gmgan @ gm_lr={lo.x:g} ({why})", verdict.used)
    return replace(verdict, detail=f"{verdict.detail}. {_mixture_drift(results, 'gmgan')}")


def _mixture_drift(results: Results, experiment: str) -> str:
    """What training did to the mixture's parameters (train metrics `prior_drift.*`: the fraction of μ and σ entries
    that changed at all): a GM lr of 1e-9 is below float32's resolution for them, so the mixture stays frozen."""
    drift = {k.removeprefix("prior_changed."): v for k, v in results.training.get(experiment, {}).items()
             if k.startswith("prior_changed.")}
    if not drift:
        return f"Mixture drift of {experiment}: not recorded"
    return f"Mixture drift of {experiment} over training: " + ", ".join(
        f"{100 * v.mean:.3g} % of {name} entries changed" for name, v in sorted(drift.items()))


def _discriminator_dominates(results: Results) -> Verdict:
    # Report 001: with ngf/ndf 1000/32, and with the roles reversed, D wins (its loss falls towards 0, G's rises).
    # vs balanced dcgan_mnist: D's final loss lower and G's higher, in both imbalance ablations. Loss claims are not
    # guarded for collapse: a collapsed generator is what a winning D looks like.
    parts = []
    for exp in ("dcgan_mnist_imbalance_g", "dcgan_mnist_imbalance_d"):
        parts.append(compare(f"loss_d({exp})", final_loss(results, exp, "d"),
                             "loss_d(dcgan_mnist)", final_loss(results, "dcgan_mnist", "d"), a_greater=False))
        parts.append(compare(f"loss_g({exp})", final_loss(results, exp, "g"),
                             "loss_g(dcgan_mnist)", final_loss(results, "dcgan_mnist", "g"), a_greater=True))
    return all_of(parts)


def _svm_vs_linear(experiment: str) -> Callable[[Results], Verdict]:
    def judge(results: Results) -> Verdict:
        return compare(f"svm({experiment})", probe(results, experiment, "svm"),
                       f"linear({experiment})", probe(results, experiment, "linear"), a_greater=True)

    return judge


CLAIMS: tuple[Claim, ...] = (
    Claim("A1", "A", "000", "BN lowers FID vs vanilla", "FID(vanilla_bn) < FID(vanilla)",
          lambda r: better(r, "fid", ("vanilla_bn", "none"), ("vanilla", "none"))),
    Claim("A2", "A", "000", "WGAN-GP beats WGAN on FID and recall", "FID(wgan_gp) < FID(wgan) and recall(wgan_gp) > recall(wgan)",
          lambda r: all_of([better(r, m, ("wgan_gp", "none"), ("wgan", "none")) for m in ("fid", "recall")])),
    Claim("A3", "A", "000", "hinge + BN beats vanilla on FID and recall", "FID(hinge_bn) < FID(vanilla) and recall(hinge_bn) > recall(vanilla)",
          lambda r: all_of([better(r, m, ("hinge_bn", "none"), ("vanilla", "none")) for m in ("fid", "recall")])),
    Claim("A4", "A", "000", "SAGAN is best on FID, precision and recall", "sagan beats every other §A experiment on FID, precision and recall",
          lambda r: all_of([best_among(r, m, ("sagan", "none"), SECTION_A_RUNS) for m in ("fid", "precision", "recall")])),
    Claim("A5", "A", "000", "GM-GAN static has the highest precision", "precision(gmgan_static) > precision of every other §A experiment",
          lambda r: best_among(r, "precision", ("gmgan_static", "none"), SECTION_A_RUNS)),
    Claim("B1", "B", "003", "DRS improves the vanilla FID", "FID(vanilla+drs) < FID(vanilla)",
          lambda r: better(r, "fid", ("vanilla", "drs"), ("vanilla", "none"))),
    Claim("B2", "B", "003", "truncation gives the best FID and the worst recall",
          "among report 003's seven rows, a truncation row has the lowest FID and a truncation row the lowest recall",
          lambda r: all_of([best_of_group(r, "fid", _TRUNC, _NOT_TRUNC), best_of_group(r, "recall", _TRUNC, _NOT_TRUNC, worst=True)])),
    Claim("B3", "B", "003", "raising the DRS threshold raises precision",
          "Spearman ρ(threshold, precision) > 0 over each DRS threshold sweep (≥ 3 thresholds)", _drs_threshold),
    Claim("B4", "B", "003", "DGflow improves WGAN precision", "precision(wgan+dgflow) > precision(wgan)",
          lambda r: better(r, "precision", ("wgan", "dgflow"), ("wgan", "none"))),
    Claim("C1", "C", "004", "small σ₀ → higher precision, large σ₀ → higher recall",
          "over the gmgan σ₀ sweep: Spearman ρ(σ₀, precision) < 0 and ρ(σ₀, recall) > 0", _sigma_tradeoff),
    Claim("C2", "C", "004", "a tiny GM lr avoids per-class mode collapse",
          "over a gmgan GM-lr sweep: coverage at the smallest GM lr > coverage at the largest (the text states how "
          "far the mixture moved: 1e-9 is below float32's resolution for μ and σ)", _gm_lr_collapse),
    Claim("D1", "D", "001", "conditioning stabilises training; with y in D the digits match their labels",
          "FID(cdcgan_mnist) < FID(dcgan_mnist) and label_accuracy(cdcgan_mnist) > label_accuracy(cdcgan_mnist_noyd) "
          "(the domain classifier's accuracy on G(z, y) against y)",
          lambda r: all_of([better(r, "fid", ("cdcgan_mnist", "none"), ("dcgan_mnist", "none")),
                            better(r, "label_accuracy", ("cdcgan_mnist", "none"), ("cdcgan_mnist_noyd", "none"))])),
    Claim("D2", "D", "001", "imbalanced ngf/ndf: the discriminator wins either way",
          "in both imbalance ablations (1000/32 and 32/1000) vs balanced dcgan_mnist: D's final loss is lower and "
          "G's higher", _discriminator_dominates),
    Claim("D3", "D", "001", "DCGAN init is more stable than the default", "FID(dcgan_mnist) < FID(dcgan_mnist_torchinit)",
          lambda r: better(r, "fid", ("dcgan_mnist", "none"), ("dcgan_mnist_torchinit", "none"))),
    Claim("D4", "D", "002", "SVM beats linear on BiGAN codes (AFHQ)", "svm accuracy > linear accuracy on E(x), bigan_afhq",
          _svm_vs_linear("bigan_afhq")),
    Claim("D5", "D", "002", "SVM beats linear on BiGAN codes (our MNIST BiGAN)", "svm accuracy > linear accuracy on E(x), bigan_mnist",
          _svm_vs_linear("bigan_mnist")),
)


def judge(claim: Claim, results: Results) -> Verdict:
    return claim.judge(results)

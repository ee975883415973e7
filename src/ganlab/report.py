"""The results report: our numbers beside the reported ones, every catalogue claim with a computed verdict,
each section's extra tables and the figures, as `reports/results.md` and a self-contained `reports/results.html`
(figures embedded as base64 PNG data URIs; no external resource, so it opens offline).

What is shown is declared in `ganlab.catalogue`, never here: the sections (`SECTIONS`, each with its results
table and its `blocks`: reported tables, sweep summaries, probe tables, notes), the sweep figures
(`SWEEP_FIGURES`), the extra grid images (`GRID_FIGURES`) and which files join which sweep
(`SWEEPS_BY_METHOD`, `SWEEPS_BY_EXPERIMENT`). This module loads the inputs and renders each kind of block
(`SECTION_BLOCKS` maps a block kind to its builder); it names no section and no experiment.

Inputs (every one optional; what is missing is shown as "not run"):

- evaluation files `metrics/evaluate/*.json` (searched recursively), each
  `{experiment, method, fid, kid, precision, recall, density, coverage, [label_accuracy], protocol{feature_space,
  feature_weights_sha256, n_real, n_fake, seed, checkpoint_sha256, scale, ...}}`. Files sharing
  (experiment, method) are different seeds (training seed → checkpoint, or `protocol.seed`) and are
  aggregated to mean ± std; two files with the same checkpoint and seed are the same run, counted once.
- sweep points: an evaluation file with a `"sweep": {"threshold": 0.8}` mapping is a point of the sweep
  (experiment, method, key), and is kept out of the main table; a series file
  `{experiment, method, "sweep": "threshold", "points": [{"threshold": 0.5, "fid": …, "precision": …}, …]}`
  is the same thing in one file. Plain evaluation files also join a sweep when they name the swept value in
  `params`, `method_params`, `protocol` or at top level (DRS `threshold`, truncation `psi`, GM-GAN `sigma`
  and `gm_lr` = `lr_prior`; which method or experiment sweeps which key: `catalogue.SWEEPS_BY_*`): the
  evaluate stage writes the recipe as `params`, so the base experiment of a sweep (e.g. gmgan at σ₀ 1.7)
  joins the curve of its sweep points (gmgan_sigma1p1: `sweep_of: gmgan`).
- `metrics/train/<exp>.json` (final_loss_d, final_loss_g, per seed under `runs`, with `prior_changed` for mixture
  priors), `metrics/train/<exp>_losses.csv` (seed, epoch, loss_d, loss_g, seconds; curves are averaged over seeds)
  and `metrics/train/<exp>_curve.csv` (learning curves: seed, epoch, train_seconds, fid, precision, recall, ...);
- `metrics/probe/<exp>.json`: BiGAN encoder probes (svm, linear, 1-NN accuracies, fractions or percent);
- PNGs in the grids folder: `<exp>-<method>.png` sample grids, and the images of `catalogue.GRID_FIGURES`
  (any `*interp*.png`: class interpolation; `*recon*.png`: BiGAN x vs G(E(x))).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ganlab import catalogue as cat
from ganlab.catalogue import METRICS, Results, Stat, SweepPoint
from ganlab.io import read_json, write_csv, write_text_atomic

# Swept values and where a file may name them: key -> aliases, looked up in sweep/params/method_params/protocol/top level.
SWEEP_ALIASES = {
    "threshold": ("threshold", "drs_threshold", "acceptance_threshold"),
    "psi": ("psi", "truncation_psi"),
    "sigma": ("sigma", "sigma0"),
    "gm_lr": ("gm_lr", "lr_gm", "lr_prior"),
}
PROBE_ALIASES = {
    "svm": "svm", "svm_rbf": "svm", "linear": "linear", "logistic": "linear", "knn1": "knn1", "1nn": "knn1", "nn1": "knn1",
    "one_nn": "knn1", "1-nn": "knn1", "knn": "knn1",
}


# --- Loading -----------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """Raw inputs, before aggregation."""

    records: list[dict[str, Any]] = field(default_factory=list)  # main-table evaluation records
    sweep_records: list[dict[str, Any]] = field(default_factory=list)  # records with a "sweep" mapping
    skipped: list[str] = field(default_factory=list)  # JSON files that are neither


def _is_evaluation(d: Any) -> bool:
    return isinstance(d, dict) and "experiment" in d and any(m in d for m in METRICS)


def load_evaluations(metrics_dir: Path) -> Loaded:
    """Classify every `*.json` under `metrics_dir` (recursively, sorted) as an evaluation record, a sweep point
    (or a series of them), or skipped."""
    loaded = Loaded()
    metrics_dir = Path(metrics_dir)
    if not metrics_dir.is_dir():
        return loaded
    for path in sorted(metrics_dir.rglob("*.json")):
        try:
            data = read_json(path)
        except (OSError, json.JSONDecodeError):
            loaded.skipped.append(str(path))
            continue
        if isinstance(data, dict) and isinstance(data.get("points"), list) and isinstance(data.get("sweep"), str):
            key = data["sweep"]
            for point in data["points"]:
                if isinstance(point, dict) and key in point:
                    loaded.sweep_records.append({
                        "experiment": data.get("experiment", path.stem), "method": data.get("method", "none"),
                        "protocol": data.get("protocol", {}), **point, "sweep": {key: point[key]},
                    })
        elif _is_evaluation(data):
            data.setdefault("method", "none")
            data.setdefault("protocol", {})
            (loaded.sweep_records if isinstance(data.get("sweep"), dict) else loaded.records).append(data)
        else:
            loaded.skipped.append(str(path))
    return loaded


def _run_key(record: Mapping[str, Any]) -> tuple:
    # Same checkpoint + same evaluation seeds = the same run written twice (e.g. `<exp>.json` and `<exp>-none.json`).
    p = record.get("protocol", {})
    return (p.get("checkpoint_sha256"), p.get("seed"), p.get("first_sample_seed"),
            json.dumps(record.get("sweep"), sort_keys=True))


def aggregate(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Stat]]:
    """(experiment, method) -> metric -> Stat over distinct runs (see `_run_key`)."""
    groups: dict[tuple[str, str], dict[tuple, Mapping[str, Any]]] = defaultdict(dict)
    for r in records:
        groups[(r["experiment"], r["method"])].setdefault(_run_key(r), r)
    out: dict[tuple[str, str], dict[str, Stat]] = {}
    for key, runs in groups.items():
        out[key] = {
            m: Stat.of([r[m] for r in runs.values()])
            for m in METRICS
            if any(isinstance(r.get(m), (int, float)) for r in runs.values())
            and all(isinstance(r.get(m), (int, float)) for r in runs.values())
        }
    return out


def swept_value(record: Mapping[str, Any], key: str) -> float | None:
    """The swept value `key` named by a record (see SWEEP_ALIASES), or None."""
    for where in (record.get("sweep"), record.get("params"), record.get("method_params"), record.get("protocol"), record):
        if isinstance(where, Mapping):
            for alias in SWEEP_ALIASES.get(key, (key,)):
                value = where.get(alias)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return float(value)
    return None


def collect_sweeps(loaded: Loaded) -> dict[tuple[str, str, str], list[SweepPoint]]:
    """(experiment, method, key) -> points sorted by x, each aggregated over seeds at that x."""
    buckets: dict[tuple[str, str, str, float], list[Mapping[str, Any]]] = defaultdict(list)
    canonical = {alias: key for key, aliases in SWEEP_ALIASES.items() for alias in aliases}
    for r in loaded.sweep_records:
        for key in map(lambda k: canonical.get(k, k), r["sweep"]):
            x = swept_value(r, key)
            if x is not None:
                buckets[(r["experiment"], r["method"], key, x)].append(r)
    for r in loaded.records:
        keys = cat.SWEEPS_BY_METHOD.get(r["method"], ()) + cat.SWEEPS_BY_EXPERIMENT.get(r["experiment"], ())
        for key in keys:
            x = swept_value(r, key)
            if x is not None:
                buckets[(r["experiment"], r["method"], key, x)].append(r)
    sweeps: dict[tuple[str, str, str], list[SweepPoint]] = defaultdict(list)
    for (exp, method, key, x), rs in sorted(buckets.items()):
        stats = aggregate([{**r, "experiment": exp, "method": method} for r in rs]).get((exp, method), {})
        sweeps[(exp, method, key)].append(SweepPoint(x, stats))
    return dict(sweeps)


def load_training(train_dir: Path) -> tuple[dict[str, dict[str, Stat]], dict[str, list[dict[str, float]]]]:
    """(final losses per experiment, loss-curve rows per experiment) from metrics/train."""
    training: dict[str, dict[str, Stat]] = {}
    curves: dict[str, list[dict[str, float]]] = {}
    train_dir = Path(train_dir)
    if not train_dir.is_dir():
        return training, curves
    for path in sorted(train_dir.glob("*.json")):
        try:
            data = read_json(path)
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            exp = data.get("experiment", path.stem)
            runs = data["runs"] if isinstance(data.get("runs"), list) else [data]  # one run per training seed
            training[exp] = {k: Stat.of([r[k] for r in runs]) for k in ("final_loss_d", "final_loss_g")
                             if all(isinstance(r.get(k), (int, float)) for r in runs)}
            changed = [r.get("prior_changed") for r in runs]  # mixture priors: fraction of entries moved, per parameter
            if all(isinstance(c, dict) for c in changed):
                training[exp] |= {f"prior_changed.{k}": Stat.of([c[k] for c in changed]) for k in changed[0]}
    for path in sorted(train_dir.glob("*_losses.csv")):
        with open(path, newline="") as f:
            rows = [{k: float(v) for k, v in row.items() if k in ("epoch", "loss_d", "loss_g", "seconds") and v not in ("", None)}
                    for row in csv.DictReader(f)]
        by_epoch: dict[float, list[dict[str, float]]] = defaultdict(list)  # the seeds' rows of each epoch
        for r in rows:
            if {"epoch", "loss_d", "loss_g"} <= r.keys():
                by_epoch[r["epoch"]].append(r)
        curves[path.name.removesuffix("_losses.csv")] = [
            {k: sum(r[k] for r in rs) / len(rs) for k in rs[0] if all(k in r for r in rs)}
            for _, rs in sorted(by_epoch.items())
        ]
    return training, curves


@dataclass(frozen=True)
class Battery:
    """A feature space's sanity battery (metrics/features/<dataset>.json, see `ganlab.battery`)."""

    feature_space: str
    scores: Mapping[str, Mapping[str, float]]  # set -> fid, precision, recall, density, coverage
    kinds: Mapping[str, str]  # set -> real, subset, collapse, noise, corruption
    checks: Mapping[str, bool]
    n: int

    def best_noise(self) -> tuple[str, float] | None:
        """(name, FID) of the noise set closest to the real images, or None without noise sets."""
        noise = [(name, m["fid"]) for name, m in self.scores.items() if self.kinds.get(name) == "noise"]
        return min(noise, key=lambda item: item[1]) if noise else None


def load_batteries(features_dir: Path) -> dict[str, Battery]:
    """feature space name -> its battery, from every metrics/features/*.json that has one."""
    batteries = {}
    for path in sorted(Path(features_dir).glob("*.json")) if Path(features_dir).is_dir() else []:
        data = read_json(path)
        if isinstance(data, dict) and isinstance(data.get("battery"), dict):
            protocol = data.get("battery_protocol", {})
            batteries[data["feature_space"]] = Battery(data["feature_space"], data["battery"], protocol.get("kinds", {}),
                                                       data.get("battery_checks", {}), int(protocol.get("n", 0)))
    return batteries


def noise_fids(records: Iterable[Mapping[str, Any]], batteries: Mapping[str, Battery]) -> dict[tuple[str, str], tuple[str, float]]:
    """(experiment, method) -> the best noise set's (name, FID) in the feature space of the run's records."""
    out = {}
    for r in records:
        battery = batteries.get(r.get("protocol", {}).get("feature_space"))
        if battery is not None and (noise := battery.best_noise()) is not None:
            out[(r["experiment"], r["method"])] = noise
    return out


def load_learning_curves(train_dir: Path) -> dict[str, list[dict[str, float]]]:
    """experiment -> one row per curve epoch (epoch, train_seconds, fid, precision, ...: means over the seeds
    that have that epoch) from metrics/train/<exp>_curve.csv."""
    curves: dict[str, list[dict[str, float]]] = {}
    for path in sorted(Path(train_dir).glob("*_curve.csv")) if Path(train_dir).is_dir() else []:
        with open(path, newline="") as f:
            rows = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
        by_epoch: dict[float, list[dict[str, float]]] = defaultdict(list)
        for r in rows:
            by_epoch[r["epoch"]].append(r)
        curves[path.name.removesuffix("_curve.csv")] = [
            {k: sum(r[k] for r in rs) / len(rs) for k in rs[0] if k != "seed" and all(k in r for r in rs)}
            for _, rs in sorted(by_epoch.items())
        ]
    return {exp: rows for exp, rows in curves.items() if rows}


def _probe_entries(data: Any, prefix: str = "") -> Iterable[tuple[str, float]]:
    if isinstance(data, Mapping):
        for k, v in data.items():
            yield from _probe_entries(v, f"{prefix}{k}_" if k not in ("accuracy", "accuracies") else prefix)
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield prefix.rstrip("_"), float(data)


def normalise_probe(data: Any) -> dict[str, float]:
    """{svm, linear, knn1} -> accuracy in [0, 1] from a probe file, whatever its nesting or unit: keys like
    `svm`, `svm_accuracy`, `accuracy: {svm: …}`, `1nn`; values > 1 are read as percent."""
    out: dict[str, float] = {}
    for key, value in _probe_entries(data):
        name = key.lower().replace("accuracy", "").replace("acc", "").strip("_-")
        name = PROBE_ALIASES.get(name)
        if name is not None and name not in out:
            out[name] = value / 100.0 if value > 1.0 else value
    return out


def load_probes(probe_dir: Path) -> dict[str, dict[str, Stat]]:
    probes: dict[str, dict[str, Stat]] = {}
    probe_dir = Path(probe_dir)
    if probe_dir.is_dir():
        for path in sorted(probe_dir.glob("*.json")):
            try:
                data = read_json(path)
            except (OSError, json.JSONDecodeError):
                continue
            exp = data.get("experiment", path.stem) if isinstance(data, dict) else path.stem
            probes[exp] = {k: Stat.of([v]) for k, v in normalise_probe(data).items()}
    return probes


def protocol_summary(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Distinct (scale, N real, N fake, feature space, weights sha256[:12], k) with the experiments using them."""
    groups: dict[tuple, set[str]] = defaultdict(set)
    for r in records:
        p = r.get("protocol", {})
        key = (str(p.get("scale", "?")), str(p.get("n_real", "?")), str(p.get("n_fake", "?")),
               str(p.get("feature_space", "?")), str(p.get("feature_weights_sha256", "?"))[:12], str(p.get("nearest_k", "?")))
        groups[key].add(r["experiment"])
    return [(*k, ", ".join(sorted(v))) for k, v in sorted(groups.items())]


# --- The document: blocks rendered to Markdown and HTML ------------------------------------------------


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    title: str
    path: Path | None  # None: not run


Block = Heading | Para | Table | Image


def _cell(s: Stat | None, digits: int = 3) -> str:
    if s is None:
        return "not run"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f} (n={s.n})" if s.std is not None else f"{s.mean:.{digits}f}"


def _rep(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


RESULT_HEADERS = ("experiment", "method", "", *METRICS, "note")
DIGITS = {"fid": 2, "kid": 4}  # decimals per metric in the tables (3 for the others)


def _metric_cells(ours: Mapping[str, Stat]) -> tuple[str, ...]:
    # a run that exists but has no such metric (label accuracy of an unconditional generator) shows "–"
    return tuple(_cell(ours.get(m), DIGITS.get(m, 3)) if m in ours or not ours else "–" for m in METRICS)


def _ours_row(exp: str, method: str, ours: Mapping[str, Stat]) -> tuple[str, ...]:
    return (exp, method, "ours", *_metric_cells(ours))


def _reported_row(r: cat.Reported) -> tuple[str, ...]:
    reported = {"fid": r.fid, "precision": r.precision, "recall": r.recall}
    return ("", "", f"reported ({r.source})", *(_rep(reported.get(m), 2) for m in METRICS)) + ((r.note,) if r.note else ())


def section_rows(section: cat.Section, results: Results) -> list[tuple[str, ...]]:
    """Every experiment × method of the section (ours, or "not run"), each followed by the reported numbers for it,
    plus any evaluated (experiment, method) of the section's experiments that the catalogue does not list, then
    the reported rows whose base generator the source did not state (with the bases we ran that method on)."""
    reported = [r for r in cat.REPORTED if r.section == section.key]
    keys = [(e, m) for e in section.experiments for m in section.methods]
    keys += sorted(k for k in results.evaluations if k[0] in section.experiments and k not in keys)
    rows = []
    for exp, method in keys:
        ours = results.evaluations.get((exp, method), {})
        reps = [r for r in reported if (r.experiment, r.method) == (exp, method)]
        if section.hide_unrun_methods and method != "none" and not ours and not reps:
            continue
        rows.append(_ours_row(exp, method, ours))
        rows += [_reported_row(r) for r in reps]
    for r in reported:
        if r.experiment == cat.UNSTATED_BASE:
            ours_bases = sorted(k for k in results.evaluations if k[1] == r.method)
            rows.append((f"(base not stated; ours: {', '.join(e for e, _ in ours_bases) or 'not run'})", r.method,
                         *_reported_row(r)[2:]))
    return [row + ("",) * (len(RESULT_HEADERS) - len(row)) for row in rows]


# --- What a section shows after its results table: one builder per kind of `catalogue.SectionBlock` --------


def _note(spec: cat.Note, results: Results) -> list[Block]:
    return [Para(spec.text)]


def _reported_table(spec: cat.ReportedTable, results: Results) -> list[Block]:
    rows = tuple(tuple("–" if v is None else format(v, f) for v, f in zip(row, spec.formats, strict=True)) for row in spec.rows)
    return [Para(spec.caption), Table(spec.headers, rows)]


def _sweep_summary(spec: cat.SweepSummary, results: Results) -> list[Block]:
    points = results.sweeps.get((spec.experiment, spec.method, spec.key), [])
    text = ", ".join(
        f"{spec.symbol}={p.x:g}: P {_cell(p.metrics.get('precision'))}, R {_cell(p.metrics.get('recall'))}, "
        f"FID {_cell(p.metrics.get('fid'), 2)}" for p in points)
    return [Para(f"Our {spec.symbol} sweep: " + (text or "not run") + ".")]


def _probe_table(spec: cat.ProbeTable, results: Results) -> list[Block]:
    exps = sorted(set(results.probes) | set(spec.reported))
    rows = tuple(row for e in exps for row in (
        (e, "ours", *(_cell(results.probes.get(e, {}).get(p)) for p in spec.probes)),
        (e, "reported", *(_rep(spec.reported.get(e, {}).get(p), 4) for p in spec.probes)),
    ))
    return [Heading(3, spec.title), Table(("experiment", "", *spec.probes), rows)]


SECTION_BLOCKS: dict[type, Callable[[Any, Results], list[Block]]] = {
    cat.Note: _note, cat.ReportedTable: _reported_table, cat.SweepSummary: _sweep_summary, cat.ProbeTable: _probe_table,
}


# The battery sets shown as baseline rows under every results table (the full battery has its own table)
BASELINE_SETS = ("real_train", "half_classes", "one_image")


def baseline_rows(batteries: Mapping[str, Battery]) -> list[tuple[str, ...]]:
    """Rows of the feature spaces' batteries for a results table: real images, half the classes, one image, and
    the best noise set (a generator with a higher FID is worse than noise: not judged)."""
    rows = []
    for space, battery in sorted(batteries.items()):
        noise = battery.best_noise()
        names = [n for n in BASELINE_SETS if n in battery.scores] + ([noise[0]] if noise else [])
        for name in names:
            metrics = {m: Stat.of([v]) for m, v in battery.scores[name].items() if isinstance(v, (int, float))}
            rows.append((f"baseline: {name}", "", f"battery ({space}, N = {battery.n})", *_metric_cells(metrics),
                         "worse than this: not judged" if noise and name == noise[0] else ""))
    return rows


def section_blocks(section: cat.Section, results: Results, batteries: Mapping[str, Battery] | None = None) -> list[Block]:
    """A catalogue section: its heading, its results table (`section_rows`, then the battery's baseline rows),
    then its declared `blocks`."""
    rows = section_rows(section, results) + baseline_rows(batteries or {})
    blocks: list[Block] = [
        Heading(2, section.title + f" (reports {', '.join(section.sources)})"),
        Table(RESULT_HEADERS, tuple(row + ("",) * (len(RESULT_HEADERS) - len(row)) for row in rows)),
    ]
    for spec in section.blocks:
        build = SECTION_BLOCKS.get(type(spec))
        if build is None:
            raise TypeError(f"section {section.key}: no report builder for {type(spec).__name__}; "
                            f"known kinds: {', '.join(t.__name__ for t in SECTION_BLOCKS)}")
        blocks += build(spec, results)
    return blocks


# --- The parts of the document around the sections ------------------------------------------------------


def verdict_counts(verdicts: Sequence[cat.Verdict]) -> str:
    """The report's first line about the claims: how many were judged, indicative, not judged and not run."""
    by = {s: [v for v in verdicts if v.status == s] for s in cat.STATUSES}
    judged = sum(len(by[s]) for s in cat.JUDGED)
    holds = sum(bool(v.holds) for v in by[cat.INDICATIVE])
    return (f"Claims ({len(verdicts)}): {judged} judged ({len(by[cat.CONFIRMED])} confirmed, {len(by[cat.REFUTED])} "
            f"refuted, {len(by[cat.INCONCLUSIVE])} inconclusive); {len(by[cat.INDICATIVE])} indicative ({holds} "
            f"hold, {len(by[cat.INDICATIVE]) - holds} do not); {len(by[cat.NOT_JUDGED])} not judged (a side "
            f"collapsed); {len(by[cat.NOT_RUN])} not run.")


RULES = (
    f"How a claim is judged: a comparison with a collapsed generator on either side (mean recall < "
    f"{cat.COLLAPSE['recall']:g} or coverage < {cat.COLLAPSE['coverage']:g} in the domain space) is **not judged**, "
    f"whatever its precision; a tie is **inconclusive**; with ≥ {cat.MIN_SEEDS} training seeds on both sides, "
    f"Welch's two-sided t-test at α = {cat.ALPHA:g} decides (**confirmed** / **refuted** by the sign, else "
    f"**inconclusive**); with fewer seeds the verdict is **indicative (n = k)**: the sign of one or two runs, no "
    f"test. Loss and encoder-probe claims are not guarded for collapse. Mean ± std (sample std, ddof 1) over n "
    f"distinct runs (training checkpoints) where n ≥ 2."
)


def _preamble(loaded: Loaded, verdicts: Sequence[tuple[cat.Claim, cat.Verdict]]) -> list[Block]:
    """Title, the claim counts, provenance, the verdict rules and the protocol table."""
    proto = protocol_summary(loaded.records + loaded.sweep_records)
    return [
        Heading(1, "Results"),
        Para(verdict_counts([v for _, v in verdicts])),
        Para("Generated by the `report` stage (`stages/report.py`) from `metrics/evaluate`, `metrics/train` and "
             "`metrics/probe`; do not edit by hand. Reported numbers come from the five source reports "
             "(`shared/seeds/`); their FID was computed by a course server with unknown settings and feature "
             "network, so only orderings (the claims) are comparable, not the values."),
        Para(RULES),
        Heading(2, "Protocol: the scale and N these numbers were made at"),
        Table(("scale", "N real", "N fake", "feature space", "weights sha256", "k", "experiments"), tuple(proto))
        if proto else Para("No evaluation files yet: every number below is \"not run\"."),
    ]


def _claim_blocks(verdicts: Sequence[tuple[cat.Claim, cat.Verdict]]) -> list[Block]:
    return [Heading(2, "Claims"), Table(
        ("id", "source", "claim", "tested as", "verdict", "why", "numbers used"),
        tuple((c.id, c.source, c.text, c.test, f"**{v.label}**", v.detail, "; ".join(f"{k} = {n}" for k, n in v.used) or "–")
              for c, v in verdicts),
    )]


def battery_blocks(batteries: Mapping[str, Battery]) -> list[Block]:
    """Each feature space's report card: every battery set's scores and the bars it meets."""
    blocks: list[Block] = [Heading(2, "Feature-space report card (sanity battery)")]
    if not batteries:
        return blocks + [Para("No battery: the features stage wrote none.")]
    for space, battery in sorted(batteries.items()):
        rows = tuple((name, battery.kinds.get(name, "?"), *(f"{battery.scores[name][m]:.{DIGITS.get(m, 3)}f}"
                                                              for m in BATTERY_METRICS)) for name in battery.scores)
        checks = "; ".join(f"{name}: {'yes' if ok else '**no**'}" for name, ok in battery.checks.items())
        blocks += [Para(f"`{space}`, N = {battery.n} images per set against the first {battery.n} test images "
                        f"(`metrics/features/`; sets in `src/ganlab/battery.py`). Bars: {checks or 'none'}."),
                   Table(("set", "kind", *BATTERY_METRICS), rows)]
    return blocks


BATTERY_METRICS = ("fid", "precision", "recall", "density", "coverage")


def learning_curve_blocks(curves: Mapping[str, Sequence[Mapping[str, float]]]) -> list[Block]:
    """Each experiment's learning curve summarised: its last point and the convergence label (`catalogue.convergence`)."""
    rule = (f"Scored during training on a fixed set of latents (metrics/train/<exp>_curve.csv; figures below). "
            f"\"converged\": the last three points improve FID by less than {100 * cat.CONVERGED_FID_GAIN:g} %; "
            f"\"collapsed\": recall or coverage at the last point below {cat.COLLAPSE['recall']:g}.")
    if not curves:
        return [Heading(2, "Learning curves"), Para("No learning curves: `curves` is off in params.yaml, or not run.")]
    rows = []
    for exp, points in sorted(curves.items()):
        last = points[-1]
        fids = [p["fid"] for p in points]
        collapsed = last["recall"] < cat.COLLAPSE["recall"] or last["coverage"] < cat.COLLAPSE["coverage"]
        rows.append((exp, f"{last['epoch']:g}", f"{last['train_seconds']:.0f}", f"{last['fid']:.1f}",
                     f"{last['recall']:.3f}", f"{last['coverage']:.3f}",
                     cat.convergence(fids) + (", collapsed" if collapsed else "")))
    headers = ("experiment", "last epoch", "training s", "FID", "recall", "coverage", "state at the last point")
    return [Heading(2, "Learning curves"), Para(rule), Table(headers, tuple(rows))]


def _image_blocks(figures: Mapping[str, Path | None], extra_images: Mapping[str, Sequence[Path]],
                  grids: Sequence[Path]) -> list[Block]:
    """The drawn figures, the extra grid images by group (one "not run" line for an empty group), the sample grids."""
    blocks: list[Block] = [Heading(2, "Figures"), *(Image(title, path) for title, path in figures.items())]
    for title, paths in extra_images.items():
        blocks += [Image(f"{title}: {p.stem}", p) for p in paths] if paths else [Image(title, None)]
    blocks.append(Heading(2, "Sample grids"))
    blocks += [Image(p.stem, p) for p in grids] if grids else [Image("sample grids", None)]
    return blocks


def document(
    results: Results,
    loaded: Loaded,
    *,
    figures: Mapping[str, Path | None],
    grids: Sequence[Path],
    extra_images: Mapping[str, Sequence[Path]],
    learning_curves: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    batteries: Mapping[str, Battery] | None = None,
) -> list[Block]:
    """The whole report as blocks. Pure: paths are only referenced, never read, here."""
    verdicts = [(c, cat.judge(c, results)) for c in cat.CLAIMS]
    blocks = _preamble(loaded, verdicts) + _claim_blocks(verdicts) + battery_blocks(batteries or {})
    for section in cat.SECTIONS:
        blocks += section_blocks(section, results, batteries or {})
    blocks += learning_curve_blocks(learning_curves or {})
    blocks += _image_blocks(figures, extra_images, grids)
    if loaded.skipped:
        blocks.append(Para("Ignored files (neither an evaluation nor a sweep series): " + ", ".join(f"`{s}`" for s in loaded.skipped)))
    return blocks


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block], *, out_path: Path) -> str:
    """Markdown; images are relative links from `out_path`'s folder."""
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            lines += [b.text, ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(_md_escape(h) for h in b.headers) + " |")
            lines.append("|" + "---|" * len(b.headers))
            lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif isinstance(b, Image):
            if b.path is None:
                lines += [f"**{b.title}**: not run", ""]
            else:
                lines += [f"**{b.title}**", "", f"![{b.title}]({os.path.relpath(b.path, Path(out_path).parent)})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _inline(text: str) -> str:
    # The Markdown subset the blocks use: **bold** and `code`.
    out, parts = [], html.escape(text).split("`")
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{part}</code>")
        else:
            bold = part.split("**")
            out.append("".join(f"<b>{t}</b>" if j % 2 else t for j, t in enumerate(bold)))
    return "".join(out)


HTML_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ganlab results</title>
<style>
body { font-family: sans-serif; max-width: 1400px; margin: 1em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; vertical-align: top; }
th { background: #eee; }
img { max-width: 100%; border: 1px solid #ddd; }
.notrun { color: #888; font-style: italic; }
</style></head><body>
"""


def render_html(blocks: Sequence[Block]) -> str:
    """Self-contained HTML: images are read and embedded as base64 `data:image/png` URIs; no external resource."""
    parts = [HTML_HEAD]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            parts.append("<table><thead><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in b.headers) + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in b.rows]
            parts.append("</tbody></table>")
        elif isinstance(b, Image):
            if b.path is None or not Path(b.path).is_file():
                parts.append(f"<p><b>{html.escape(b.title)}</b>: <span class=\"notrun\">not run</span></p>")
            else:
                data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
                parts.append(f"<figure><figcaption><b>{html.escape(b.title)}</b></figcaption>"
                             f"<img alt=\"{html.escape(b.title)}\" src=\"data:image/png;base64,{data}\"></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --- The whole report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    results: Results
    verdicts: tuple[tuple[cat.Claim, cat.Verdict], ...]
    figures: dict[str, Path | None]
    markdown: Path
    html: Path


def load_results(metrics_dir: Path, train_dir: Path, probe_dir: Path,
                 batteries: Mapping[str, Battery] | None = None) -> tuple[Results, Loaded, dict[str, list[dict[str, float]]]]:
    loaded = load_evaluations(metrics_dir)
    training, curves = load_training(train_dir)
    results = Results(
        evaluations=aggregate(loaded.records), sweeps=collect_sweeps(loaded), training=training, probes=load_probes(probe_dir),
        noise_fid=noise_fids(loaded.records, batteries or {}),
    )
    return results, loaded, curves


def write_plot_data(results: Results, curves: Mapping[str, Sequence[Mapping[str, float]]], plots_dir: Path) -> list[Path]:
    """CSV series for `dvc plots` (top-level `plots:` in dvc.yaml): `losses/<exp>.csv` (epoch, loss_d, loss_g) and
    `sweeps/<key>/<experiment>-<method>.csv` (the swept key, then the metrics' means; key: threshold, psi, sigma, ...)."""
    written = []
    for exp, rows in curves.items():
        written.append(write_csv(Path(plots_dir) / "losses" / f"{exp}.csv",
                                 [{"epoch": r["epoch"], "loss_d": r["loss_d"], "loss_g": r["loss_g"]} for r in rows]))
    for (exp, method, key), points in results.sweeps.items():
        rows = [{key: p.x, **{m: p.metrics[m].mean for m in METRICS if m in p.metrics}} for p in points]
        written.append(write_csv(Path(plots_dir) / "sweeps" / key / f"{exp}-{method}.csv", rows))
    return written


LOSS_CURVES = "Loss curves (loss_d, loss_g per epoch)"  # the title of `<figures>/loss_curves.png`
# Learning-curve figures: title -> (x key of the curve rows, x label, file)
LEARNING_CURVES = {
    "Learning curves against epochs (FID, log scale, and recall; dashed: the collapse line)":
        ("epoch", "epoch", "learning_curves_epoch.png"),
    "Learning curves against training seconds (FID, log scale, and recall; dashed: the collapse line)":
        ("train_seconds", "training seconds", "learning_curves_seconds.png"),
}


def sweep_series(results: Results, method: str, key: str) -> dict[str, list[SweepPoint]]:
    """Label ("<experiment>" or "<experiment>+<method>") -> points, for every sweep with this method and swept key."""
    return {f"{e}+{m}" if m != "none" else e: list(pts) for (e, m, k), pts in results.sweeps.items() if m == method and k == key}


def make_figures(results: Results, curves: Mapping[str, Sequence[Mapping[str, float]]], figures_dir: Path,
                 learning: Mapping[str, Sequence[Mapping[str, float]]] | None = None) -> dict[str, Path | None]:
    """Title -> PNG (None: nothing to draw): the loss curves, the learning curves, then every
    `catalogue.SWEEP_FIGURES` in order."""
    from ganlab import plots

    figures_dir = Path(figures_dir)
    figures = {LOSS_CURVES: plots.loss_curves(curves, figures_dir / "loss_curves.png")}
    for title, (x, x_label, file) in LEARNING_CURVES.items():
        figures[title] = plots.learning_curves(learning or {}, x=x, x_label=x_label, out=figures_dir / file,
                                               collapse_recall=cat.COLLAPSE["recall"])
    for fig in cat.SWEEP_FIGURES:
        figures[fig.title] = plots.sweep(sweep_series(results, fig.method, fig.key), x_label=fig.x_label,
                                         metrics=fig.metrics, out=figures_dir / fig.file, reported=fig.reported)
    return figures


def write_report(
    *,
    metrics_dir: Path,
    train_dir: Path,
    probe_dir: Path,
    grids_dir: Path,
    out_md: Path,
    out_html: Path,
    figures_dir: Path,
    plots_dir: Path,
    features_dir: Path | None = None,
) -> Report:
    """Load everything, judge every claim, draw the figures, write the Markdown, the HTML and the DVC plot data."""
    batteries = load_batteries(features_dir) if features_dir is not None else {}
    results, loaded, curves = load_results(metrics_dir, train_dir, probe_dir, batteries)
    learning = load_learning_curves(train_dir)
    figures = make_figures(results, curves, figures_dir, learning)
    write_plot_data(results, curves, plots_dir)
    pngs = sorted(Path(grids_dir).glob("*.png")) if Path(grids_dir).is_dir() else []
    extra_images = {g.title: [p for p in pngs if g.marker in p.name] for g in cat.GRID_FIGURES}
    grids = [p for p in pngs if not any(g.marker in p.name for g in cat.GRID_FIGURES)]
    blocks = document(results, loaded, figures=figures, grids=grids, extra_images=extra_images, learning_curves=learning,
                      batteries=batteries)
    write_text_atomic(out_md, render_markdown(blocks, out_path=out_md))
    write_text_atomic(out_html, render_html(blocks))
    verdicts = tuple((c, cat.judge(c, results)) for c in cat.CLAIMS)
    return Report(results, verdicts, figures, Path(out_md), Path(out_html))

"""The results report: verdict logic on synthetic metric files (every status, both directions), mean ± std
aggregation against numpy, sweeps, probes, a self-contained HTML, every catalogue claim present, and the
offline DVC plots template."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganlab import catalogue as cat
from ganlab.catalogue import Results, Stat, SweepPoint
from ganlab.probe import probe_codes
from ganlab.report import aggregate, load_evaluations, normalise_probe, write_report

ROOT = Path(__file__).resolve().parents[1]


def evaluation(exp: str, method: str = "none", *, fid: float, precision: float = 0.5, recall: float = 0.5,
               seed: int = 0, ckpt: str = "c0", **extra) -> dict:
    return {"experiment": exp, "method": method, "fid": fid, "precision": precision, "recall": recall,
            "density": 1.0, "coverage": 0.5,
            "protocol": {"feature_space": "mnist-lenet128", "feature_weights_sha256": "ab" * 32, "n_real": 1000,
                         "n_fake": 1000, "nearest_k": 5, "seed": seed, "first_sample_seed": seed,
                         "checkpoint_sha256": ckpt, "scale": "quick"}, **extra}


def write(folder: Path, name: str, data: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data))


def results_from(tmp_path: Path, files: dict[str, dict]) -> Results:
    for name, data in files.items():
        write(tmp_path / "ev", name, data)
    from ganlab.report import load_results

    return load_results(tmp_path / "ev", tmp_path / "train", tmp_path / "probe")[0]


def claim(cid: str) -> cat.Claim:
    return next(c for c in cat.CLAIMS if c.id == cid)


# --- Verdicts -------------------------------------------------------------------------------------------


def seeds3(value: float, spread: float = 1e-3) -> Stat:
    """Three seeds around `value`: enough for Welch's test, tight enough that real differences are significant."""
    return Stat.of([value - spread, value, value + spread])


def status(cid: str, results: Results) -> tuple[str, bool | None]:
    v = cat.judge(claim(cid), results)
    return v.status, v.holds


def test_bn_claim_confirmed_refuted_indicative_and_not_run(tmp_path):
    def fids(vanilla, vanilla_bn):
        return Results(evaluations={("vanilla", "none"): {"fid": vanilla}, ("vanilla_bn", "none"): {"fid": vanilla_bn}})

    assert status("A1", fids(seeds3(50), seeds3(40))) == (cat.CONFIRMED, True)
    assert status("A1", fids(seeds3(40), seeds3(50))) == (cat.REFUTED, False)
    # One seed (files on disk, aggregated by the report's loader): the sign only, labelled indicative
    one = results_from(tmp_path / "a", {"v.json": evaluation("vanilla", fid=50), "b.json": evaluation("vanilla_bn", fid=40)})
    verdict = cat.judge(claim("A1"), one)
    assert (verdict.status, verdict.holds, verdict.n) == (cat.INDICATIVE, True, 1)
    assert verdict.label == "indicative (n = 1): holds" and ("fid(vanilla_bn)", "40") in verdict.used
    against = results_from(tmp_path / "b", {"v.json": evaluation("vanilla", fid=40), "b.json": evaluation("vanilla_bn", fid=50)})
    assert cat.judge(claim("A1"), against).label == "indicative (n = 1): does not hold"
    missing = results_from(tmp_path / "c", {"v.json": evaluation("vanilla", fid=40)})
    verdict = cat.judge(claim("A1"), missing)
    assert verdict.status == cat.NOT_RUN and "vanilla_bn" in verdict.detail


def test_welch_test_decides_with_three_seeds_and_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [40.0, 50.0, 60.0], [30.0, 40.0, 50.0]  # Δ = 10 with sd 10: p ≈ 0.29 -> inconclusive
    verdict = cat.compare("a", Stat.of(b), "b", Stat.of(a), a_greater=False)
    assert verdict.status == cat.INCONCLUSIVE and "Welch" in verdict.detail
    assert cat.welch_p(Stat.of(a), Stat.of(b)) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    a, b = [49.0, 50.0, 51.0], [39.0, 40.0, 41.5]  # sd ~1: p < 0.01 -> decided by the sign
    assert cat.welch_p(Stat.of(a), Stat.of(b)) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert cat.compare("a", Stat.of(b), "b", Stat.of(a), a_greater=False).status == cat.CONFIRMED
    assert cat.compare("a", Stat.of(b), "b", Stat.of(a), a_greater=True).status == cat.REFUTED
    # n = 2 on one side: no test, indicative with that n
    two = cat.compare("a", Stat.of([39.0, 41.0]), "b", Stat.of(a), a_greater=False)
    assert (two.status, two.n, two.holds) == (cat.INDICATIVE, 2, True)
    # no spread on either side: a difference is certain, equal means a tie
    assert cat.welch_p(Stat.of([1.0] * 3), Stat.of([0.9] * 3)) == 0.0


def test_a_tie_is_inconclusive_never_refuted():
    # precision saturated at 1.0 on both sides (what collapsed generators give), with one seed and with three
    for n in (1, 3):
        tie = cat.compare("precision(wgan+dgflow)", Stat.of([1.0] * n), "precision(wgan)", Stat.of([1.0] * n), a_greater=True)
        assert tie.status == cat.INCONCLUSIVE and "tie" in tie.detail


def test_a_collapsed_side_is_not_judged_and_named():
    def run(fid, recall, coverage):
        return {"fid": seeds3(fid), "recall": seeds3(recall, 1e-4), "coverage": seeds3(coverage, 1e-4)}

    collapsed = Results(evaluations={("vanilla", "none"): run(3000, 0.0004, 0.2), ("vanilla_bn", "none"): run(40, 0.3, 0.3)})
    verdict = cat.judge(claim("A1"), collapsed)
    assert verdict.status == cat.NOT_JUDGED and "vanilla (recall 0.0004 < 0.05)" in verdict.detail
    assert "vanilla_bn (" not in verdict.detail
    low_coverage = Results(evaluations={("vanilla", "none"): run(50, 0.3, 0.3), ("vanilla_bn", "none"): run(40, 0.3, 0.049)})
    assert "vanilla_bn (coverage 0.049 < 0.05)" in cat.judge(claim("A1"), low_coverage).detail
    healthy = Results(evaluations={("vanilla", "none"): run(50, 0.06, 0.06), ("vanilla_bn", "none"): run(40, 0.3, 0.3)})
    assert cat.judge(claim("A1"), healthy).status == cat.CONFIRMED


def test_conjunction_order():
    v = lambda s, holds=None: cat.Verdict(s, s, holds=holds, n=1 if s == cat.INDICATIVE else None)  # noqa: E731
    for_, against = v(cat.INDICATIVE, True), v(cat.INDICATIVE, False)
    assert cat.all_of([v(cat.CONFIRMED), v(cat.CONFIRMED)]).status == cat.CONFIRMED
    assert cat.all_of([v(cat.CONFIRMED), for_]).label == "indicative (n = 1): holds"
    assert cat.all_of([v(cat.INCONCLUSIVE), for_]).status == cat.INCONCLUSIVE
    assert cat.all_of([v(cat.INCONCLUSIVE), against]).label == "indicative (n = 1): does not hold"
    assert cat.all_of([against, v(cat.NOT_JUDGED)]).status == cat.NOT_JUDGED
    assert cat.all_of([v(cat.NOT_JUDGED), v(cat.REFUTED)]).status == cat.REFUTED
    assert cat.all_of([v(cat.REFUTED), v(cat.NOT_RUN)]).status == cat.NOT_RUN


def section_a(**fid_p_r) -> Results:
    return Results(evaluations={(e, "none"): {"fid": seeds3(f), "precision": seeds3(p), "recall": seeds3(r)}
                                for e, (f, p, r) in fid_p_r.items()})


REPORTED_A = {r.experiment: (r.fid, r.precision, r.recall) for r in cat.REPORTED if r.section == "A" and r.source == "000"}


def test_section_a_claims_on_the_reported_numbers():
    # Report 000's own table as input (three tight seeds around each number): an independent check of the
    # predicates. Its claims hold on its table, except "SAGAN is best on precision": its own GM-GAN static row
    # has precision 0.85 > SAGAN's 0.77 (and A5 says so), so A4 is refuted by the source's own numbers.
    results = section_a(**REPORTED_A)
    for cid in ("A1", "A2", "A3", "A5"):
        assert cat.judge(claim(cid), results).status == cat.CONFIRMED, cid
    a4 = cat.judge(claim("A4"), results)
    assert a4.status == cat.REFUTED and "precision(gmgan_static)" in a4.detail
    without_gm = {k: v for k, v in REPORTED_A.items() if k != "gmgan_static"}
    assert cat.judge(claim("A4"), section_a(**without_gm, gmgan_static=(41.01, 0.70, 0.48))).status == cat.CONFIRMED


def test_sagan_best_refuted_when_another_is_better_on_one_metric_and_not_run_when_one_is_missing():
    numbers = dict(REPORTED_A)
    numbers["gmgan_static"] = (41.01, 0.70, 0.48)  # below sagan's precision, so only recall decides
    numbers["hinge_bn"] = (20.98, 0.51, 0.60)  # better recall than sagan's 0.58
    assert cat.judge(claim("A4"), section_a(**numbers)).status == cat.REFUTED
    del numbers["wgan"]
    verdict = cat.judge(claim("A4"), section_a(**numbers))
    assert verdict.status == cat.NOT_RUN and "wgan" in verdict.detail


def section_b(rows: dict[tuple[str, str], tuple[float, float, float]]) -> Results:
    return Results(evaluations={k: {"fid": seeds3(f), "precision": seeds3(p), "recall": seeds3(r)}
                                for k, (f, p, r) in rows.items()})


REPORTED_B = {(r.experiment, r.method): (r.fid, r.precision, r.recall) for r in cat.REPORTED
              if r.section == "B" and r.experiment != "?"}


def test_section_b_claims_on_the_reported_table():
    results = section_b(REPORTED_B)
    assert cat.judge(claim("B1"), results).status == cat.CONFIRMED  # 38.49 < 63.99
    assert cat.judge(claim("B2"), results).status == cat.CONFIRMED  # 27.65 best FID, 0.16 worst recall
    assert cat.judge(claim("B4"), results).status == cat.CONFIRMED  # 0.47 > 0.34
    worse = dict(REPORTED_B)
    worse[("wgan", "drs")] = (20.0, 0.51, 0.25)  # a non-truncation row now has the best FID
    assert cat.judge(claim("B2"), section_b(worse)).status == cat.REFUTED


def sweep(xs, precisions, recalls=None, n: int = 3) -> list[SweepPoint]:
    recalls = recalls or [0.3] * len(xs)
    stat = seeds3 if n == 3 else (lambda v: Stat.of([v]))
    return [SweepPoint(x, {"precision": stat(p), "recall": stat(r)}) for x, p, r in zip(xs, precisions, recalls)]


def test_drs_threshold_trend_both_directions_and_too_few_points():
    up = Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.6, 0.7, 0.8, 0.9], [0.3, 0.32, 0.31, 0.4, 0.45])})
    down = Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.7, 0.9], [0.5, 0.4, 0.3])})
    short = Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.9], [0.3, 0.5])})
    assert cat.judge(claim("B3"), up).status == cat.CONFIRMED
    assert cat.judge(claim("B3"), down).status == cat.REFUTED
    assert cat.judge(claim("B3"), short).status == cat.NOT_RUN
    assert cat.judge(claim("B3"), Results()).status == cat.NOT_RUN
    one_seed = Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.7, 0.9], [0.3, 0.4, 0.5], n=1)})
    assert cat.judge(claim("B3"), one_seed).label == "indicative (n = 1): holds"
    # precision saturated at 1.0 at every threshold: no direction, so neither confirmed nor refuted
    flat = cat.judge(claim("B3"), Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.7, 0.9], [1.0] * 3)}))
    assert flat.status == cat.INCONCLUSIVE and "the same at every point" in flat.detail
    # every DRS threshold series must show it: a wgan series that falls refutes the claim
    both = Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.7, 0.9], [0.3, 0.4, 0.5]),
                           ("wgan", "drs", "threshold"): sweep([0.5, 0.7, 0.9], [0.5, 0.4, 0.3])})
    verdict = cat.judge(claim("B3"), both)
    assert verdict.status == cat.REFUTED and "wgan+drs" in verdict.detail


def test_a_collapsed_sweep_point_is_not_judged():
    points = sweep([1.1, 1.4, 1.7], [0.6, 0.56, 0.53], [0.2, 0.23, 0.31])
    points[0] = SweepPoint(1.1, {**points[0].metrics, "coverage": seeds3(0.01, 1e-4)})
    verdict = cat.judge(claim("C1"), Results(sweeps={("gmgan", "none", "sigma"): points}))
    assert verdict.status == cat.NOT_JUDGED and "@ 1.1 (coverage 0.01 < 0.05)" in verdict.detail


def test_sigma_tradeoff_from_sweep_points():
    key = ("gmgan", "none", "sigma")
    good = Results(sweeps={key: sweep([1.1, 1.4, 1.7], [0.6, 0.56, 0.53], [0.2, 0.23, 0.31])})
    bad = Results(sweeps={key: sweep([1.1, 1.4, 1.7], [0.5, 0.56, 0.6], [0.2, 0.23, 0.31])})
    assert cat.judge(claim("C1"), good).status == cat.CONFIRMED
    assert cat.judge(claim("C1"), bad).status == cat.REFUTED
    noisy = Results(sweeps={key: [SweepPoint(1.1, {"precision": Stat.of([0.5, 0.7, 0.6]), "recall": Stat.of([0.2, 0.4, 0.3])}),
                                  SweepPoint(1.7, {"precision": Stat.of([0.45, 0.65, 0.55]), "recall": Stat.of([0.25, 0.45, 0.35])})]})
    assert cat.judge(claim("C1"), noisy).status == cat.INCONCLUSIVE


def test_gm_lr_claim_guards_only_the_tiny_lr_side_and_states_the_mixture_drift():
    def point(x, coverage):
        return SweepPoint(x, {"coverage": seeds3(coverage, 1e-4), "recall": seeds3(0.3, 1e-4)})

    drift = {"gmgan": {"prior_changed.mu": Stat.of([0.013]), "prior_changed.sigma": Stat.of([0.0])}}
    # the large GM lr collapses (coverage 0.02): that is the claim, not a reason to withhold the verdict
    ok = Results(sweeps={("gmgan", "none", "gm_lr"): [point(1e-9, 0.3), point(8e-5, 0.02)]}, training=drift)
    verdict = cat.judge(claim("C2"), ok)
    assert verdict.status == cat.CONFIRMED
    assert "1.3 % of mu entries changed" in verdict.detail and "0 % of sigma entries changed" in verdict.detail
    tiny_collapsed = Results(sweeps={("gmgan", "none", "gm_lr"): [point(1e-9, 0.03), point(8e-5, 0.02)]})
    verdict = cat.judge(claim("C2"), tiny_collapsed)
    assert verdict.status == cat.NOT_JUDGED and "gm_lr=1e-09" in verdict.detail and "not recorded" in verdict.detail


def test_spearman_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, y = rng.normal(size=7), rng.integers(0, 3, size=7).astype(float)  # ties in y
        assert cat.spearman(list(x), list(y)) == pytest.approx(scipy_stats.spearmanr(x, y).statistic)


def test_discriminator_dominates_in_both_imbalance_ablations_and_probe_claims():
    training = {"dcgan_mnist": {"final_loss_d": seeds3(1.0), "final_loss_g": seeds3(1.0)},
                "dcgan_mnist_imbalance_g": {"final_loss_d": seeds3(0.3), "final_loss_g": seeds3(4.0)},
                "dcgan_mnist_imbalance_d": {"final_loss_d": seeds3(0.2), "final_loss_g": seeds3(3.0)}}
    assert cat.judge(claim("D2"), Results(training=training)).status == cat.CONFIRMED
    # the wide generator wins (D's loss rises, G's falls): report 001 says D wins either way, so refuted
    training["dcgan_mnist_imbalance_g"] = {"final_loss_d": seeds3(1.4), "final_loss_g": seeds3(0.7)}
    verdict = cat.judge(claim("D2"), Results(training=training))
    assert verdict.status == cat.REFUTED and "loss_d(dcgan_mnist_imbalance_g)" in verdict.detail
    probes = {"bigan_afhq": {"svm": seeds3(0.7285), "linear": seeds3(0.5613)},
              "bigan_mnist": {"svm": seeds3(0.5), "linear": seeds3(0.6)}}
    assert cat.judge(claim("D4"), Results(probes=probes)).status == cat.CONFIRMED
    assert cat.judge(claim("D5"), Results(probes=probes)).status == cat.REFUTED


def test_conditioning_claim_reads_label_accuracy():
    def run(fid, label_accuracy=None):
        metrics = {"fid": seeds3(fid), "recall": seeds3(0.3), "coverage": seeds3(0.3)}
        return metrics | ({"label_accuracy": seeds3(label_accuracy)} if label_accuracy is not None else {})

    good = Results(evaluations={("cdcgan_mnist", "none"): run(30, 0.95), ("dcgan_mnist", "none"): run(40),
                                ("cdcgan_mnist_noyd", "none"): run(25, 0.4)})
    assert cat.judge(claim("D1"), good).status == cat.CONFIRMED  # FID of noyd no longer matters
    labels_lost = Results(evaluations={**good.evaluations, ("cdcgan_mnist_noyd", "none"): run(25, 0.97)})
    verdict = cat.judge(claim("D1"), labels_lost)
    assert verdict.status == cat.REFUTED and "label_accuracy(cdcgan_mnist)" in verdict.detail


def test_probe_files_are_normalised_whatever_their_shape():
    assert normalise_probe({"svm": 72.85, "linear": 56.13}) == pytest.approx({"svm": 0.7285, "linear": 0.5613})
    assert normalise_probe({"accuracy": {"svm": 0.7, "1nn": 0.9}}) == pytest.approx({"svm": 0.7, "knn1": 0.9})
    assert normalise_probe({"svm_accuracy": 0.7, "experiment": "x", "n_test": 500}) == pytest.approx({"svm": 0.7})


def test_the_probe_stage_keys_are_read():
    # what ganlab.probe writes (the report once missed `svm_rbf_accuracy` and judged D5 "not run")
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    codes = rng.normal(size=(40, 2)) + 4.0 * labels[:, None]  # two well-separated clusters
    written = probe_codes(codes, labels, codes, labels)
    assert normalise_probe({"experiment": "bigan_mnist", "n_test": 40, **written}) == pytest.approx(
        {"svm": 1.0, "linear": 1.0, "knn1": 1.0})


# --- Aggregation and loading -------------------------------------------------------------------------------


def test_mean_std_over_seeds_against_numpy_and_duplicates_counted_once(tmp_path):
    fids = [30.0, 34.0, 41.0]
    for i, f in enumerate(fids):
        write(tmp_path, f"wgan-s{i}.json", evaluation("wgan", fid=f, ckpt=f"ckpt{i}"))
    write(tmp_path, "wgan-copy.json", evaluation("wgan", fid=30.0, ckpt="ckpt0"))  # the same run, written twice
    write(tmp_path, "wgan-evalseed.json", evaluation("wgan", fid=36.0, ckpt="ckpt0", seed=7))  # another eval seed
    write(tmp_path, "notes.json", {"hello": 1})
    loaded = load_evaluations(tmp_path)
    stat = aggregate(loaded.records)[("wgan", "none")]["fid"]
    expected = fids + [36.0]
    assert stat.n == 4
    assert stat.mean == pytest.approx(np.mean(expected))
    assert stat.std == pytest.approx(np.std(expected, ddof=1))
    assert loaded.skipped == [str(tmp_path / "notes.json")]
    single = aggregate([evaluation("vanilla", fid=10.0)])[("vanilla", "none")]["fid"]
    assert (single.mean, single.std, single.n) == (10.0, None, 1)


def test_sweeps_from_series_files_and_from_plain_records(tmp_path):
    write(tmp_path, "vanilla-drs-sweep.json", {
        "experiment": "vanilla", "method": "drs", "sweep": "threshold",
        "points": [{"threshold": t, "fid": 40 - t, "precision": t / 2, "recall": 0.3} for t in (0.9, 0.5, 0.7)]})
    write(tmp_path, "gmgan.json", evaluation("gmgan", fid=20, precision=0.6, params={"sigma": 1.4}))
    from ganlab.report import collect_sweeps

    loaded = load_evaluations(tmp_path)
    sweeps = collect_sweeps(loaded)
    assert [p.x for p in sweeps[("vanilla", "drs", "threshold")]] == [0.5, 0.7, 0.9]
    assert sweeps[("vanilla", "drs", "threshold")][0].metrics["precision"].mean == pytest.approx(0.25)
    assert [p.x for p in sweeps[("gmgan", "none", "sigma")]] == [1.4]
    # Series points stay out of the main table; the plain gmgan record is in it.
    assert set(aggregate(loaded.records)) == {("gmgan", "none")}


# --- The written report ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    ev, train, grids = tmp / "evaluate", tmp / "train", tmp / "grids"
    for i, f in enumerate([50.0, 54.0]):
        write(ev, f"vanilla-s{i}.json", evaluation("vanilla", fid=f, ckpt=f"v{i}"))
    write(ev, "vanilla_bn.json", evaluation("vanilla_bn", fid=20.0))
    write(ev, "vanilla-drs-sweep.json", {"experiment": "vanilla", "method": "drs", "sweep": "threshold",
                                         "points": [{"threshold": t, "fid": 40, "precision": t, "recall": 0.3} for t in (0.5, 0.7, 0.9)]})
    train.mkdir()
    (train / "vanilla_losses.csv").write_text("epoch,loss_d,loss_g,seconds\n1,1.0,2.0,3.0\n2,0.8,2.4,3.1\n")
    (train / "vanilla.json").write_text(json.dumps({"experiment": "vanilla", "final_loss_d": 0.8, "final_loss_g": 2.4}))
    grids.mkdir()
    from PIL import Image

    Image.new("L", (8, 8), 128).save(grids / "vanilla-none.png")
    report = write_report(metrics_dir=ev, train_dir=train, probe_dir=tmp / "probe", grids_dir=grids,
                          out_md=tmp / "out" / "results.md", out_html=tmp / "out" / "results.html",
                          figures_dir=tmp / "out" / "figures", plots_dir=tmp / "out" / "plots")
    return tmp, report


def test_every_claim_appears_with_its_computed_verdict(written):
    tmp, report = written
    md = (tmp / "out" / "results.md").read_text()
    page = (tmp / "out" / "results.html").read_text()
    for c, v in report.verdicts:
        row = next(line for line in md.splitlines() if line.startswith(f"| {c.id} |"))
        assert c.text in row and f"**{v.label}**" in row
        assert f"<td>{c.id}</td>" in page
    labels = dict((c.id, v.label) for c, v in report.verdicts)
    assert labels["A1"] == "indicative (n = 1): holds" and labels["B3"] == "indicative (n = 1): holds"
    assert labels["A2"] == cat.NOT_RUN
    # the first line after the title counts them
    first = md.split("\n\n")[1]
    counts = {s: sum(v.status == s for _, v in report.verdicts) for s in cat.STATUSES}
    assert first.startswith(f"Claims ({len(report.verdicts)}): {sum(counts[s] for s in cat.JUDGED)} judged")
    assert f"{counts[cat.INDICATIVE]} indicative" in first and f"{counts[cat.NOT_RUN]} not run" in first


def test_report_tables_show_mean_std_protocol_and_reported_numbers(written):
    tmp, _ = written
    md = (tmp / "out" / "results.md").read_text()
    assert f"52.00 ± {np.std([50, 54], ddof=1):.2f} (n=2)" in md
    assert "| quick | 1000 | 1000 | mnist-lenet128 |" in md
    assert "29.28" in md and "0.7285" in md and "26.06" in md  # §A, BiGAN, σ table
    assert "| wgan_gp | none | ours | not run |" in md


def test_html_is_self_contained(written):
    tmp, report = written
    page = (tmp / "out" / "results.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page, re.I)  # every resource is a data URI
    assert not re.search(r"@import|url\(", page)
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) >= 3  # loss curves, DRS sweep, the sample grid
    import base64

    assert all(base64.b64decode(e).startswith(b"\x89PNG") for e in embedded)
    assert report.figures["Loss curves (loss_d, loss_g per epoch)"].is_file()
    assert "not run" in page  # σ sweep, truncation, interpolation, reconstructions
    assert (tmp / "out" / "plots" / "sweeps" / "threshold" / "vanilla-drs.csv").read_text().startswith("threshold,")
    assert (tmp / "out" / "plots" / "losses" / "vanilla.csv").read_text().startswith("epoch,loss_d,loss_g")


# --- DVC plots, offline -------------------------------------------------------------------------------


def test_dvc_plots_template_loads_only_local_scripts(tmp_path):
    """`dvc plots show --html-template reports/vendor/dvc-plots.html` writes HTML whose scripts are the
    vendored Vega files (no CDN); run in a scratch DVC repo with the project's top-level plots."""
    dvc = Path(sys.executable).with_name("dvc")
    if not dvc.exists() or shutil.which("git") is None:
        pytest.skip("dvc or git not available")
    import yaml

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(dvc), "init", "-q"], cwd=tmp_path, check=True)
    shutil.copytree(ROOT / "reports" / "vendor", tmp_path / "reports" / "vendor")
    top_plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"plots": top_plots}))
    (tmp_path / "reports/plots/losses").mkdir(parents=True)
    (tmp_path / "reports/plots/losses/vanilla.csv").write_text("epoch,loss_d,loss_g\n1,1.0,2.0\n2,0.8,2.4\n")
    out = subprocess.run([str(dvc), "plots", "show", "--html-template", "reports/vendor/dvc-plots.html"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "dvc_plots" / "index.html").read_text()
    scripts = re.findall(r"""<script[^>]*\bsrc\s*=\s*["']([^"']+)""", page)
    assert scripts and not any(re.match(r"(https?:)?//", s) for s in scripts)
    for s in scripts:
        assert (tmp_path / "dvc_plots" / s).resolve().is_file(), s
    assert "vegaEmbed" in page and "loss_d" in page


def test_a_generator_worse_than_noise_is_not_judged():
    def run(fid):
        return {"fid": seeds3(fid), "recall": seeds3(0.3), "coverage": seeds3(0.3)}

    evaluations = {("vanilla", "none"): run(900.0), ("vanilla_bn", "none"): run(40.0)}
    noise = {run: ("salt_and_pepper", 800.0) for run in evaluations}
    verdict = cat.judge(claim("A1"), Results(evaluations=evaluations, noise_fid=noise))
    assert verdict.status == cat.NOT_JUDGED and "vanilla (FID 900 > 800 of salt_and_pepper: worse than noise)" in verdict.detail
    better_than_noise = {run: ("salt_and_pepper", 1000.0) for run in evaluations}
    assert cat.judge(claim("A1"), Results(evaluations=evaluations, noise_fid=better_than_noise)).status == cat.CONFIRMED


def test_the_battery_is_a_report_card_and_baseline_rows_under_every_results_table(tmp_path):
    ev, features = tmp_path / "evaluate", tmp_path / "features"
    write(ev, "vanilla.json", evaluation("vanilla", fid=900.0))
    write(ev, "vanilla_bn.json", evaluation("vanilla_bn", fid=40.0))
    sets = {"real_train": ("real", 4.0), "half_classes": ("subset", 60.0), "one_image": ("collapse", 2000.0),
            "uniform_noise": ("noise", 5000.0), "salt_and_pepper": ("noise", 800.0), "blurred": ("corruption", 300.0)}
    write(features, "mnist.json", {
        "dataset": "mnist", "feature_space": "mnist-lenet128",
        "battery": {name: {"fid": fid, "precision": 0.1, "recall": 0.2, "density": 0.3, "coverage": 0.4}
                    for name, (_, fid) in sets.items()},
        "battery_protocol": {"n": 2000, "kinds": {name: kind for name, (kind, _) in sets.items()}},
        "battery_checks": {"noise_precision_at_most_0.2": True, "half_classes_coverage_0.4_to_0.65_of_real_train": False},
    })
    report = write_report(metrics_dir=ev, train_dir=tmp_path / "train", probe_dir=tmp_path / "probe",
                          grids_dir=tmp_path / "grids", out_md=tmp_path / "out.md", out_html=tmp_path / "out.html",
                          figures_dir=tmp_path / "fig", plots_dir=tmp_path / "plots", features_dir=features)
    md = (tmp_path / "out.md").read_text()
    assert "## Feature-space report card (sanity battery)" in md
    assert "| blurred | corruption | 300.00 | 0.100 |" in md
    assert "half_classes_coverage_0.4_to_0.65_of_real_train: **no**" in md
    # under each section's table: real, half the classes, one image, and the best noise set (lowest FID)
    for section in cat.SECTIONS:
        table = md.split(section.title)[1].split("\n\n")[1]
        assert "| baseline: real_train |  | battery (mnist-lenet128, N = 2000) | 4.00 |" in table
        assert "baseline: salt_and_pepper" in table and "worse than this: not judged" in table
        assert "baseline: uniform_noise" not in table and "baseline: blurred" not in table
    a1 = dict((c.id, v) for c, v in report.verdicts)["A1"]
    assert a1.status == cat.NOT_JUDGED and "worse than noise" in a1.detail

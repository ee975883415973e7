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


def test_bn_claim_confirmed_refuted_and_not_run(tmp_path):
    confirmed = results_from(tmp_path / "a", {"v.json": evaluation("vanilla", fid=50), "b.json": evaluation("vanilla_bn", fid=40)})
    refuted = results_from(tmp_path / "b", {"v.json": evaluation("vanilla", fid=40), "b.json": evaluation("vanilla_bn", fid=50)})
    missing = results_from(tmp_path / "c", {"v.json": evaluation("vanilla", fid=40)})
    assert cat.judge(claim("A1"), confirmed).status == cat.CONFIRMED
    assert cat.judge(claim("A1"), refuted).status == cat.REFUTED
    verdict = cat.judge(claim("A1"), missing)
    assert verdict.status == cat.NOT_RUN and "vanilla_bn" in verdict.detail
    # The numbers the verdict rests on are reported with it.
    assert ("fid(vanilla_bn)", "40") in cat.judge(claim("A1"), confirmed).used


def test_noise_rule_inconclusive_within_two_pooled_std_and_decisive_beyond():
    # vanilla_bn: 40 ± 10 over 3 seeds vs vanilla 50 ± 10: |Δ| = 10 < 2 × 10 -> inconclusive.
    noisy = Results(evaluations={("vanilla", "none"): {"fid": Stat.of([40, 50, 60])},
                                 ("vanilla_bn", "none"): {"fid": Stat.of([30, 40, 50])}})
    assert cat.judge(claim("A1"), noisy).status == cat.INCONCLUSIVE
    # Same means, std 1: |Δ| = 10 ≥ 2 -> confirmed; and the reverse ordering -> refuted.
    tight = Results(evaluations={("vanilla", "none"): {"fid": Stat.of([49, 50, 51])},
                                 ("vanilla_bn", "none"): {"fid": Stat.of([39, 40, 41])}})
    assert cat.judge(claim("A1"), tight).status == cat.CONFIRMED
    reverse = Results(evaluations={("vanilla", "none"): {"fid": Stat.of([39, 40, 41])},
                                   ("vanilla_bn", "none"): {"fid": Stat.of([49, 50, 51])}})
    assert cat.judge(claim("A1"), reverse).status == cat.REFUTED


def test_compare_pools_only_sides_with_several_seeds():
    # One side has n = 3 (std 5), the other a single run: pooled std = 5, threshold 10.
    a, b = Stat.of([45, 50, 55]), Stat.of([41.0])
    assert cat.compare("a", a, "b", b, a_greater=True).status == cat.INCONCLUSIVE  # Δ = 9 < 10
    assert cat.compare("a", a, "b", Stat.of([39.0]), a_greater=True).status == cat.CONFIRMED  # Δ = 11
    assert cat.compare("a", a, "b", Stat.of([61.0]), a_greater=True).status == cat.REFUTED  # Δ = -11
    single = cat.compare("a", Stat.of([1.0]), "b", Stat.of([1.001]), a_greater=False)
    assert single.status == cat.CONFIRMED and "no noise estimate" in single.detail


def test_conjunction_order():
    v = lambda s: cat.Verdict(s, s)  # noqa: E731
    assert cat.all_of([v(cat.CONFIRMED), v(cat.CONFIRMED)]).status == cat.CONFIRMED
    assert cat.all_of([v(cat.CONFIRMED), v(cat.INCONCLUSIVE)]).status == cat.INCONCLUSIVE
    assert cat.all_of([v(cat.INCONCLUSIVE), v(cat.REFUTED)]).status == cat.REFUTED
    assert cat.all_of([v(cat.REFUTED), v(cat.NOT_RUN)]).status == cat.NOT_RUN


def section_a(**fid_p_r) -> Results:
    return Results(evaluations={(e, "none"): {"fid": Stat.of([f]), "precision": Stat.of([p]), "recall": Stat.of([r])}
                                for e, (f, p, r) in fid_p_r.items()})


REPORTED_A = {r.experiment: (r.fid, r.precision, r.recall) for r in cat.REPORTED if r.section == "A" and r.source == "000"}


def test_section_a_claims_on_the_reported_numbers():
    # Report 000's own table as input: an independent check of the predicates. Its claims hold on its table,
    # except "SAGAN is best on precision": its own GM-GAN static row has precision 0.85 > SAGAN's 0.77 (and A5
    # says so), so A4 is refuted by the source's own numbers.
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
    return Results(evaluations={k: {"fid": Stat.of([f]), "precision": Stat.of([p]), "recall": Stat.of([r])}
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


def sweep(xs, precisions, recalls=None) -> list[SweepPoint]:
    recalls = recalls or [0.3] * len(xs)
    return [SweepPoint(x, {"precision": Stat.of([p]), "recall": Stat.of([r])}) for x, p, r in zip(xs, precisions, recalls)]


def test_drs_threshold_trend_both_directions_and_too_few_points():
    up = Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.6, 0.7, 0.8, 0.9], [0.3, 0.32, 0.31, 0.4, 0.45])})
    down = Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.7, 0.9], [0.5, 0.4, 0.3])})
    short = Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.9], [0.3, 0.5])})
    assert cat.judge(claim("B3"), up).status == cat.CONFIRMED
    assert cat.judge(claim("B3"), down).status == cat.REFUTED
    assert cat.judge(claim("B3"), short).status == cat.NOT_RUN
    assert cat.judge(claim("B3"), Results()).status == cat.NOT_RUN
    # precision saturated at 1.0 at every threshold (what a collapsed quick-scale G gives): no direction, so
    # neither confirmed nor refuted
    flat = cat.judge(claim("B3"), Results(sweeps={("vanilla", "drs", "threshold"): sweep([0.5, 0.7, 0.9], [1.0] * 3)}))
    assert flat.status == cat.INCONCLUSIVE and "the same at every point" in flat.detail


def test_sigma_tradeoff_from_sweep_points():
    key = ("gmgan", "none", "sigma")
    good = Results(sweeps={key: sweep([1.1, 1.4, 1.7], [0.6, 0.56, 0.53], [0.2, 0.23, 0.31])})
    bad = Results(sweeps={key: sweep([1.1, 1.4, 1.7], [0.5, 0.56, 0.6], [0.2, 0.23, 0.31])})
    assert cat.judge(claim("C1"), good).status == cat.CONFIRMED
    assert cat.judge(claim("C1"), bad).status == cat.REFUTED
    noisy = Results(sweeps={key: [SweepPoint(1.1, {"precision": Stat.of([0.5, 0.7]), "recall": Stat.of([0.2, 0.4])}),
                                  SweepPoint(1.7, {"precision": Stat.of([0.45, 0.65]), "recall": Stat.of([0.25, 0.45])})]})
    assert cat.judge(claim("C1"), noisy).status == cat.INCONCLUSIVE


def test_spearman_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, y = rng.normal(size=7), rng.integers(0, 3, size=7).astype(float)  # ties in y
        assert cat.spearman(list(x), list(y)) == pytest.approx(scipy_stats.spearmanr(x, y).statistic)


def test_imbalance_and_probe_claims():
    s = lambda v: Stat.of([v])  # noqa: E731
    training = {"dcgan_mnist": {"final_loss_d": s(1.0), "final_loss_g": s(1.0)},
                "dcgan_mnist_imbalance_g": {"final_loss_d": s(1.5), "final_loss_g": s(0.5)},
                "dcgan_mnist_imbalance_d": {"final_loss_d": s(0.2), "final_loss_g": s(3.0)}}
    assert cat.judge(claim("D2"), Results(training=training)).status == cat.CONFIRMED
    training["dcgan_mnist_imbalance_d"] = {"final_loss_d": s(1.2), "final_loss_g": s(3.0)}  # D did not win
    assert cat.judge(claim("D2"), Results(training=training)).status == cat.REFUTED
    probes = {"bigan_afhq": {"svm": s(0.7285), "linear": s(0.5613)}, "bigan_mnist": {"svm": s(0.5), "linear": s(0.6)}}
    assert cat.judge(claim("D4"), Results(probes=probes)).status == cat.CONFIRMED
    assert cat.judge(claim("D5"), Results(probes=probes)).status == cat.REFUTED


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
        assert c.text in row and f"**{v.status}**" in row
        assert f"<td>{c.id}</td>" in page
    statuses = dict((c.id, v.status) for c, v in report.verdicts)
    assert statuses["A1"] == cat.CONFIRMED and statuses["B3"] == cat.CONFIRMED and statuses["A2"] == cat.NOT_RUN


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

"""`ganlab`: score any generator or folder of samples with exactly the pipeline's evaluation protocol, and draw
sample grids from the pipeline's trained experiments.

    ganlab score --samples samples/ --dataset mnist                  # folder of PNG/JPEG, .npz or .npy
    ganlab score --generator G.pt --arch mlp --dataset mnist         # the course's G state dict, or ours
    ganlab score --generator data/train/vanilla/seed-0/checkpoint.pt --dataset mnist --json out.json
    ganlab sample --experiment vanilla --method truncation --set psi=2.0 --n 64 --out grid.png

The protocol is the pipeline's, not a copy of it: the domain feature network `data/features/<dataset>/network.pt`
and the cached real statistics `data/features/<dataset>/reference.npz` written by `dvc repro features@<dataset>`
(the reference is refused unless its content key matches `data/prepared/<dataset>.npz` and the network),
`ganlab.scoring.score` for FID / precision / recall / density / coverage, `evaluate.nearest_k` from the
repository's params.yaml, generator samples from integer seeds (`ganlab.sampling`). N real is the reference's N
(the first N test images); N fake defaults to it.

Exit codes: 0 success; 2 bad input or missing pipeline outputs (one line on stderr, nothing scored).
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from pydantic import ValidationError
from torch import nn

from ganlab import checkpoint as ckpt_io
from ganlab.config import EvaluateConfig, NetConfig, load_pipeline, parse, read_params
from ganlab.data.arrays import load_prepared
from ganlab.data.registry import DATASETS
from ganlab.evaluation import evaluation_protocol
from ganlab.scoring import METRICS, score
from ganlab.features import load_feature_net, load_reference
from ganlab.inception import InceptionUnavailable, load_inception_space
from ganlab.io import read_json, write_json
from ganlab.paths import CHECKPOINT, repo_root, seed_path
from ganlab.runtime import BadInputError, resolve_device, stage_entry
from ganlab.sample_io import PIXEL_RANGES, read_samples
from ganlab.sampling import evaluation_seeds, generate

FEATURE_SPACES = ("domain", "inception")
# Our MLP generator's Linear layers are net.0, net.2, ... (net.0, net.3, ... with BatchNorm); the course's G
# names them fc1..fc4 (catalogue "Shared building blocks": 100 -> 256 -> 512 -> 1024 -> 784).
COURSE_KEY = re.compile(r"^fc(\d+)\.(weight|bias)$")


# ---------------------------------------------------------------------------------------------------
# The pipeline's protocol, read from its outputs


def pipeline_paths(root: Path, dataset: str) -> dict[str, Path]:
    features = root / "data" / "features" / dataset
    return {
        "net": features / "network.pt",
        "reference": features / "reference.npz",
        "prepared": root / "data" / "prepared" / f"{dataset}.npz",
        "inception": root / "data" / "inception" / "weights.json",
        "inception_reference": features / "inception_reference.npz",
    }


def evaluate_settings(root: Path) -> dict[str, Any]:
    """`evaluate.nearest_k` / `batch_size` from `<root>/params.yaml`, or the schema's defaults without one."""
    params_path = root / "params.yaml"
    fields = EvaluateConfig.model_fields
    if not params_path.exists():
        return {"nearest_k": fields["nearest_k"].default, "batch_size": fields["batch_size"].default,
                "source": "defaults (no params.yaml)"}  # fmt: skip
    cfg = parse(EvaluateConfig, read_params(params_path).get("evaluate"), section="evaluate")
    return {"nearest_k": cfg.nearest_k, "batch_size": cfg.batch_size, "source": str(params_path)}


def load_protocol(root: Path, dataset: str, features: str, device: torch.device):
    """(feature space, reference dict, reference file) of the pipeline's outputs under `root`: what
    `evaluation_protocol` records."""
    paths = pipeline_paths(root, dataset)
    missing = [str(p) for k, p in paths.items() if k in ("net", "reference", "prepared") and not p.exists()]
    if missing:
        raise BadInputError(
            f"the pipeline's evaluation outputs are missing ({', '.join(missing)}): run `dvc repro features@{dataset}` "
            f"first (in {root}, or pass --root <repository>)"
        )
    try:
        net = load_feature_net(paths["net"], device)
    except (RuntimeError, KeyError, ValueError) as e:  # made by another version of the code, or edited
        raise BadInputError(f"{paths['net']}: not loadable by this version of ganlab ({_one_line(e)}); rerun "
                            f"`dvc repro features@{dataset}`") from None  # fmt: skip
    with np.load(paths["reference"], allow_pickle=False) as f:
        n_real = int(f["n"])
    real = load_prepared(paths["prepared"], keys=("x_test",))["x_test"][:n_real]
    try:
        reference = load_reference(paths["reference"], net, real)
    except ValueError as e:
        raise BadInputError(f"{e}; rerun `dvc repro features@{dataset}`") from None
    if features == "domain":
        return net, reference, paths["reference"]
    space, inception_reference = load_inception_protocol(paths, dataset, real, device)
    return space, inception_reference, paths["inception_reference"]  # N real: the same first n_real test images


def load_inception_protocol(paths: dict[str, Path], dataset: str, real: np.ndarray, device: torch.device):
    """Inception pool3 with the weights `fetch_inception` verified and the reference `features@` cached."""
    if not paths["inception"].exists() or not paths["inception_reference"].exists():
        raise BadInputError(
            f"--features inception: {paths['inception']} or {paths['inception_reference']} is missing: run "
            f"`dvc repro fetch_inception features@{dataset}` first"
        )
    with np.load(paths["inception_reference"], allow_pickle=False) as f:
        reason = str(f["unavailable"]) if "unavailable" in f.files else None
    try:
        if reason is not None:
            raise InceptionUnavailable(reason)
        space = load_inception_space(read_json(paths["inception"]), device=device)
        reference = load_reference(paths["inception_reference"], space, real)
    except InceptionUnavailable as e:
        raise BadInputError(f"--features inception: the Inception weights are unavailable: {e.reason}") from None
    except ValueError as e:
        raise BadInputError(f"{e}; rerun `dvc repro features@{dataset}`") from None
    return space, reference


# ---------------------------------------------------------------------------------------------------
# Generators from state dicts


def load_generator(path: Path, *, arch: str | None, options: dict[str, Any], image_shape: tuple[int, int, int],
                   device: torch.device) -> tuple[nn.Module, dict[str, Any]]:  # fmt: skip
    """A generator (eval mode) from a `train_gan` checkpoint ("generator" + "config") or a bare state dict of
    `arch` (our key layout or, for `mlp`, the course's fc1..fc4). `image_shape` is (H, W, C).
    Returns (generator with `.nz`, provenance). BadInputError when the file does not fit."""
    from ganlab.modules import load_sampler  # heavy (priors, nets): only for --generator

    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, torn files, non-torch files: all the same to the user
        raise BadInputError(f"{path}: not loadable with torch.load(weights_only=True) ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise BadInputError(f"{path}: expected a state dict or a checkpoint dict, got {type(state).__name__}")
    chw = (image_shape[2], image_shape[0], image_shape[1])
    info = {"generator_file": str(path), "generator_sha256": ckpt_io.file_sha256(path)}
    if "generator" in state and "config" in state:
        saved_arch = state["config"].get("generator", {}).get("arch")
        if arch is not None and arch != saved_arch:
            raise BadInputError(f"{path}: a checkpoint of a {saved_arch!r} generator, but --arch {arch} was given")
        if tuple(state.get("image_shape", ())) != chw:
            raise BadInputError(f"{path}: the checkpoint makes (C, H, W) {tuple(state['image_shape'])} images, "
                                f"the dataset needs {chw}")  # fmt: skip
        try:
            generator = load_sampler(state, device)
        except (ValidationError, ValueError, KeyError, RuntimeError) as e:
            raise BadInputError(f"{path}: cannot rebuild the checkpoint's generator: {_one_line(e)}") from None
        return generator, info | {"format": "ganlab checkpoint", "arch": saved_arch, "epoch": state.get("epoch")}
    if arch is None:
        raise BadInputError(f"{path}: a bare state dict needs --arch; allowed: {sorted(generator_archs())}")
    return build_from_state_dict(state, arch=arch, options=options, chw=chw, source=str(path), device=device), info


def generator_archs() -> list[str]:
    from ganlab.nets.registry import architectures

    return sorted(architectures("generator"))


def build_from_state_dict(state: dict[str, Any], *, arch: str, options: dict[str, Any], chw: tuple[int, int, int],
                          source: str, device: torch.device) -> nn.Module:  # fmt: skip
    from ganlab.nets.registry import build_net

    if arch not in generator_archs():
        raise BadInputError(f"--arch: unknown generator architecture {arch!r}; allowed: {generator_archs()}")
    try:
        model = build_net("generator", NetConfig(arch=arch, **options), image_shape=chw)
    except (ValueError, ValidationError) as e:
        raise BadInputError(f"--arch {arch}: {_one_line(e)}") from None
    state = {k.removeprefix("module."): v for k, v in state.items()}  # nn.DataParallel saves
    state, layout, rename = map_course_keys(state, model)
    mismatch = state_dict_mismatch(state, model.state_dict(), rename)
    if mismatch:
        described = ", ".join(f"{k}={v}" for k, v in options.items()) or "default options"
        raise BadInputError(f"{source}: the state dict ({layout} layout) does not fit generator {arch!r} "
                            f"({described}): {mismatch}")  # fmt: skip
    model.load_state_dict(state)
    return model.to(device).eval()


def map_course_keys(state: dict[str, Any], model: nn.Module) -> tuple[dict[str, Any], str, dict[str, str]]:
    """The course's `fc<i>.weight/bias` -> our `net.<j>.weight/bias`, j = the i-th Linear of `model.net`.

    Returns (state dict in our layout, "course" or "ganlab", our key -> the user's key for messages).
    A state dict without fc keys is returned unchanged."""
    if not any(COURSE_KEY.match(k) for k in state):
        return state, "ganlab", {}
    body = getattr(model, "net", None)
    linear = [name for name, m in body.named_children() if isinstance(m, nn.Linear)] if body is not None else []
    rename = {f"net.{j}.{p}": f"fc{i}.{p}" for i, j in enumerate(linear, start=1) for p in ("weight", "bias")}
    ours = {course: key for key, course in rename.items()}
    mapped = {ours.get(key, key): value for key, value in state.items()}
    return mapped, "course fc1..fc4", rename


def state_dict_mismatch(state: dict[str, Any], expected: dict[str, torch.Tensor], rename: dict[str, str]) -> str:
    """'' if `state` has exactly `expected`'s keys and shapes, else a listing of missing / unexpected /
    mis-shaped keys (named as in the user's file, our name in brackets where they differ)."""

    def name(key: str) -> str:
        return f"{rename[key]} [{key}]" if rename.get(key, key) != key else key

    missing = [name(k) for k in expected if k not in state]
    unexpected = [name(k) for k in state if k not in expected]
    misshaped = [f"{name(k)} {tuple(getattr(v, 'shape', ()))} != {tuple(expected[k].shape)}"
                 for k, v in state.items() if k in expected and tuple(getattr(v, "shape", ())) != tuple(expected[k].shape)]  # fmt: skip
    parts = [f"{label}: {', '.join(keys)}" for label, keys in
             (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped (got != expected)", misshaped))
             if keys]  # fmt: skip
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------------
# ganlab score


def cmd_score(args: argparse.Namespace) -> dict[str, Any]:
    if args.dataset not in DATASETS:
        raise BadInputError(f"--dataset: unknown dataset {args.dataset!r}; allowed: {sorted(DATASETS)}")
    if args.n is not None and args.n < 1:
        raise BadInputError(f"--n: must be >= 1, got {args.n}")
    if args.samples is not None and (args.arch or args.nz is not None or args.set):
        raise BadInputError("--arch, --nz and --set describe a --generator state dict, not --samples")
    if args.generator is not None and args.pixel_range is not None:
        raise BadInputError("--pixel-range describes float sample arrays, not a --generator")
    root = (args.root or repo_root()).resolve()
    device = resolve_device(args.device)
    image_shape = DATASETS[args.dataset].image_shape  # (H, W, C)
    settings = evaluate_settings(root)
    space, reference, reference_file = load_protocol(root, args.dataset, args.features, device)
    n_real = int(reference["n"])
    n = n_real if args.n is None else args.n
    feature_dim = int(reference["features"].shape[1])
    if n <= feature_dim:
        raise BadInputError(f"--n {n}: the protocol needs more fake samples than the feature dimension "
                            f"({feature_dim}) for a non-singular covariance; N real is {n_real}")  # fmt: skip

    if args.samples is not None:
        images = read_samples(args.samples, image_shape, pixel_range=args.pixel_range)
        if len(images) < n:
            raise BadInputError(f"{args.samples}: {len(images)} samples, but the protocol needs N fake = {n} "
                                f"(N real = {n_real}; pass --n to score fewer)")  # fmt: skip
        source = {"samples": str(args.samples), "samples_found": len(images), "used": f"the first {n}"}
        images = images[:n]
    else:
        options = parse_options(args.set) | ({"nz": args.nz} if args.nz is not None else {})
        generator, source = load_generator(args.generator, arch=args.arch, options=options,
                                           image_shape=image_shape, device=device)  # fmt: skip
        tensors = [*generator.parameters(), *generator.buffers()]
        if not all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point()):
            raise BadInputError(f"{args.generator}: the generator's weights hold NaN/Inf (a diverged run?)")
        seeds = evaluation_seeds(n, args.seed)
        images = generate(generator, seeds, device=device)
        source |= {"seed": args.seed, "first_sample_seed": int(seeds[0]), "sample_seeds": f"{seeds[0]}..{seeds[-1]}"}
    if n != n_real:
        print(f"warning: N fake = {n} != N real = {n_real}: FID is biased by N; numbers are comparable only at "
              "equal N (the pipeline uses N fake = N real)", file=sys.stderr)  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="N fake = ")  # singular covariance: ruled out above
        metrics = score(images, space, reference, nearest_k=settings["nearest_k"], device=device)
    protocol = evaluation_protocol(space, reference, n_fake=len(images), nearest_k=settings["nearest_k"],
                                   dataset=args.dataset, reference_file=reference_file,
                                   provenance={"protocol_params": settings["source"]})  # fmt: skip
    result = {**metrics, "protocol": protocol, "source": {k: v for k, v in source.items() if v is not None}}
    print_result(result)
    if args.json is not None:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return result


def print_result(result: dict[str, Any]) -> None:
    width = max(len(k) for k in [*METRICS, *result["protocol"], *result["source"]])
    for key in METRICS:
        print(f"{key:<{width}}  {result[key]:.4f}")
    print("protocol:")
    for key, value in result["protocol"].items():
        print(f"  {key:<{width}}  {value}")
    print("source:")
    for key, value in result["source"].items():
        print(f"  {key:<{width}}  {value}")


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """["hidden=[256, 512]", "batch_norm=true"] -> {"hidden": [256, 512], "batch_norm": True} (YAML values)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInputError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise BadInputError(f"--set {pair!r}: the value is not valid YAML") from None
    return options


# ---------------------------------------------------------------------------------------------------
# ganlab sample


def cmd_sample(args: argparse.Namespace) -> dict[str, Any]:
    from ganlab import postprocess as pp
    from ganlab.images import save_grid
    from ganlab.io import save_npz_atomic

    if args.n < 1:
        raise BadInputError(f"--n: must be >= 1, got {args.n}")
    root = (args.root or repo_root()).resolve()
    pipeline = load_pipeline(read_params(root / "params.yaml"))
    if args.experiment not in pipeline.experiments:
        raise BadInputError(f"--experiment: unknown experiment {args.experiment!r}; allowed: {sorted(pipeline.experiments)}")
    seeds = pipeline.seeds_of(args.experiment)
    training_seed = seeds[0] if args.training_seed is None else args.training_seed
    if training_seed not in seeds:
        raise BadInputError(f"--training-seed: {training_seed} is not one of {args.experiment}'s training seeds {seeds}")
    checkpoint = seed_path(root / "data" / "train" / args.experiment, training_seed) / CHECKPOINT
    if not checkpoint.exists():
        raise BadInputError(f"{checkpoint} is missing: run `dvc repro train@{args.experiment}` first")
    dataset, nets = pipeline.experiments[args.experiment].place()
    device = resolve_device(args.device)

    # the method's options: the pipeline's postprocess.yaml entry for this experiment + method, then --set
    base: dict[str, Any] = {}
    if (root / "postprocess.yaml").exists():
        for run in (pp.read_postprocess(root / "postprocess.yaml").get("runs") or {}).values():
            if isinstance(run, dict) and run.get("experiment") == args.experiment and run.get("method") == args.method:
                base = dict(run)
                break
    overrides = parse_options(args.set)
    method = pp.METHODS.get(args.method)
    if method is not None:  # a plain number for a {quick, paper} option means both scales
        overrides = {key: pp.at_both_scales(method.config, key, value) for key, value in overrides.items()}
    data = base | overrides | {"experiment": args.experiment, "dataset": dataset, "nets": nets, "method": args.method}
    cfg = pp.parse_run(data, f"--method {args.method}")

    gan = pp.load_gan(ckpt_io.load(checkpoint, map_location=device), device)
    real = None
    if args.method == "drs":
        real = load_prepared(root / "data" / "prepared" / f"{dataset}.npz")["x_train"]
    ctx = pp.Context(scale=pipeline.scale, device=device, batch_size=pipeline.evaluate.batch_size, real_images=real)
    images, seeds, info = pp.run_method(cfg, gan, evaluation_seeds(args.n, args.seed), ctx)
    save_grid(images, args.out)
    print(f"sample@{args.experiment} ({args.method}, {pp.method_params(cfg, pipeline.scale)}): {len(images)} images, "
          f"seeds {seeds[0]}..{seeds[-1]} -> {args.out}")  # fmt: skip
    if "drs" in info:
        print(f"DRS: acceptance rate {info['drs']['acceptance_rate']:.4f} over {info['drs']['n_candidates']} candidates")
    if args.npz is not None:
        save_npz_atomic(args.npz, images=images, seeds=seeds, checkpoint_sha256=ckpt_io.file_sha256(checkpoint),
                        method=args.method)  # fmt: skip
        print(f"wrote {args.npz} (score it with: ganlab score --samples {args.npz} --dataset {dataset})")
    return info


# ---------------------------------------------------------------------------------------------------
# Command line


SCORE_EXAMPLES = """\
examples:
  ganlab score --samples my_samples/ --dataset mnist               # folder of PNG/JPEG (sorted by name)
  ganlab score --samples samples.npz --dataset mnist --json fid.json
  ganlab score --samples x.npy --dataset mnist --pixel-range unit  # float array in [0, 1]
  ganlab score --generator course_G.pth --arch mlp --dataset mnist # the course's fc1..fc4 state dict
  ganlab score --generator data/train/vanilla/seed-0/checkpoint.pt --dataset mnist --seed 0
  ganlab score --samples samples.npz --dataset mnist --features inception

Accepted samples (details: python -c "import ganlab.sample_io; help(ganlab.sample_io)"):
  folder  only .png/.jpg/.jpeg files, 8-bit grey or RGB, all the dataset's size
  .npz    key 'images' or the only array; .npy: (N, H, W) or (N, H, W, C), channels last
  dtype   integers in [0, 255]; floats finite in [-1, 1] (auto when some value < 0) or, with
          --pixel-range, [0, 1] (unit) / [-1, 1] (symmetric): all-nonnegative floats are ambiguous
Needs the pipeline's outputs under --root: data/features/<dataset>/{network.pt,reference.npz} and
data/prepared/<dataset>.npz (`dvc repro features@<dataset>`). Exit 2 on bad input.
"""

SAMPLE_EXAMPLES = """\
examples:
  ganlab sample --experiment vanilla --n 64 --out grid.png
  ganlab sample --experiment vanilla --method truncation --set psi=2.0 --out trunc.png
  ganlab sample --experiment vanilla --method dgflow --set steps=25 --out dgflow.png --npz dgflow.npz
  ganlab sample --experiment vanilla --method drs --set threshold=0.8 --out drs.png

Method options default to the pipeline's postprocess.yaml entry for the experiment and method (if any), then
--set KEY=VALUE overrides them; each method's options are validated (ganlab.postprocess: none, truncation
{psi}, dgflow {f_div, eta, gamma, steps}, ddls {step_size, steps, noise_std, decay, decay_every},
drs {mode, threshold, burn_in, calibration_n, ...}). Scaled options take {quick: x, paper: y} or a number.
Reads data/train/<experiment>/seed-<s>/checkpoint.pt (`dvc repro train@<experiment>`), s = --training-seed
(default: the first of params.yaml `seeds`).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganlab", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SCORE_EXAMPLES)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="FID / precision / recall / density / coverage with the pipeline's protocol",
                       description="Score samples or a generator against the real test set with the pipeline's "
                       "feature network and cached reference statistics.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SCORE_EXAMPLES)  # fmt: skip
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--samples", type=Path, help="folder of PNG/JPEG images, .npz or .npy")
    what.add_argument("--generator", type=Path, help="generator state dict or train_gan checkpoint (.pt)")
    s.add_argument("--dataset", required=True, help=f"one of {sorted(DATASETS)}")
    s.add_argument("--features", choices=FEATURE_SPACES, default="domain",
                   help="feature space: the dataset's domain network (default) or Inception-v3 pool3")  # fmt: skip
    s.add_argument("--n", type=int, help="N fake: the first n samples (default: N real, the reference's N)")
    s.add_argument("--pixel-range", choices=PIXEL_RANGES, help="float arrays: unit = [0, 1], symmetric = [-1, 1]")
    s.add_argument("--arch", help="generator architecture of a bare state dict (e.g. mlp)")
    s.add_argument("--nz", type=int, help="latent size of a bare state dict's generator (architecture default: 100)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="further architecture options of a bare state dict, e.g. batch_norm=true (repeatable)")  # fmt: skip
    s.add_argument("--seed", type=int, default=0, help="evaluation seed k: sample i uses latent seed k*1e6 + i")
    s.add_argument("--json", type=Path, help="also write the metrics and protocol as JSON")
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    s.add_argument("--root", type=Path, help="repository holding the pipeline's outputs (default: this repository)")
    s.set_defaults(run=cmd_score)

    p = sub.add_parser("sample", help="PNG grid from a trained experiment, optionally post-processed",
                       description="Draw samples from data/train/<experiment>/seed-<s>/checkpoint.pt and save a PNG grid.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SAMPLE_EXAMPLES)  # fmt: skip
    p.add_argument("--experiment", required=True, help="an experiment of params.yaml (trained)")
    p.add_argument("--method", default="none", choices=("none", "truncation", "drs", "dgflow", "ddls"))
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option (repeatable), e.g. psi=0.9")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", type=Path, required=True, help="PNG grid")
    p.add_argument("--npz", type=Path, help="also save the images (uint8) and their seeds")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed k: sample i uses latent seed k*1e6 + i")
    p.add_argument("--training-seed", type=int, help="which trained seed of `seeds` (default: the first)")
    p.add_argument("--device", default="auto")
    p.add_argument("--root", type=Path, help="repository holding the pipeline's outputs (default: this repository)")
    p.set_defaults(run=cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `ganlab` console script. Bad input: one line on stderr, exit 2."""
    args = build_parser().parse_args(argv)
    stage_entry(lambda: _run(args))()


def _run(args: argparse.Namespace) -> None:
    try:
        args.run(args)
    except InceptionUnavailable as e:
        raise BadInputError(e.reason) from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


if __name__ == "__main__":
    main()

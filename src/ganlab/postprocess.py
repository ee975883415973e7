"""Post-processing methods as evaluated pipeline entries (catalogue §B, report 003): a trained checkpoint (G and D)
plus a method config -> N uint8 images from integer seeds, plus a record of what the method did.

    postprocess.yaml                         this module                        ganlab.samplers
    runs.<name>: {experiment, dataset,  ->   load_postprocess -> RunConfig ->   truncated_normal / dgflow_refine /
      method, <method options>}              run_method(cfg, gan, seeds)        ddls_refine / drs_sample
    sweeps.<name>: {experiment, dataset, ->  SweepConfig -> sweep_runs (one RunConfig per value);
      method, key, values, <options>}        run_sweep(sweep, gan, seeds) -> sweep_point, sweep_series

The entries live in their own params file, `postprocess.yaml` (loaded by dvc.yaml's `vars:`), because
`params.yaml`'s top level is validated by `ganlab.config.PipelineConfig`, which does not (yet) accept a
`postprocess` key; the scale, device and protocol still come from params.yaml.

Methods (registry `METHODS`, name -> entry model and function; each method's options are one strict config in
its sampler module, `ganlab.samplers`, from which `entry_model` derives the postprocess.yaml entry):

- ``none``        G(z(seed)), the baseline (identical to stage `sample`).
- ``truncation``  hard truncation of z: every |z_i| > psi resampled (unit-std convention, StudioGAN's
                  `truncated_normal`; NOT the TF-Hub `t * truncnorm(-2, 2)` one). Sample i shares its in-range
                  coordinates with baseline sample i.
- ``dgflow``      DGflow (Ansari et al. 2021, official update rule, no prior term), started from the baseline
                  latents z(seed_i); d = D's logit, a WGAN critic's output used directly (official code).
- ``ddls``        DDLS (Che et al. 2020): ULA on E(z) = ||z||^2/2 - d(G(z)) from the baseline latents.
- ``drs``         DRS (Azadi et al. 2019, Alg. 1) on a CALIBRATED logit: a logistic head a*d(x) + b fitted on
                  real (train split) vs generated samples with G and D frozen (`calibrate_discriminator`), for
                  every loss (for the NS-loss D the raw logit is already a log-ratio estimate, but an
                  over-confident one; calibrating it too is the honest choice and is recorded). KeepTraining
                  (continued D training with G frozen) is not done. Candidates are the seed stream
                  `seed * 2**32 + i` of `drs_sample` (with `evaluate.seed` 0: the baseline seeds 0, 1, 2, ...).

DRS "threshold 0.7" (report 003: "samples are retained based on a rejection threshold that aligns with
discriminator confidence"). Four readings exist (see `ganlab.samplers.drs`); the catalogue entries use
``mode: quantile`` -- keep the candidates whose calibrated logit reaches the `threshold`-quantile of the burn-in
logits (acceptance ~ 1 - threshold), because the literal ``confidence`` reading (sigmoid(d) >= 0.7) accepted
2e-4 of candidates on our quick-scale vanilla D (it separates real from fake almost perfectly: mean logit +4.9
vs -4.8), i.e. 10k samples would need ~50M candidates. ``confidence``, ``threshold`` and the paper's
probabilistic ``percentile`` mode stay available per entry.

Latents of a Gaussian-mixture prior (GM-GAN): all methods act on the standard-normal z before the mixture's
affine map (see `ganlab.samplers.latent`); the zoo's generators do not expose that map here, so mixture and
conditional generators are refused (ConfigError) rather than silently treated as N(0, I) generators.

A sweep varies one numeric option `key` of one method over `values` (DRS threshold 0.5 ... 0.9, truncation psi,
DGflow/DDLS steps, ...), every other option fixed; point x is exactly what a `runs` entry with the same options
and `<key>: x` gives (same config, same seeds, same samples). A per-checkpoint preparation (DRS: the calibration
head) is done once per sweep, unless the swept key is one it depends on (`Method.prepared_by`).

Every method's samples are identical at any batch size (per-seed latents and per-seed noise streams).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Literal

import numpy as np
import torch
import yaml
from pydantic import BeforeValidator, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo
from torch import Tensor, nn

from ganlab.config import ConfigError, ExperimentConfig, PipelineConfig, Scaled, parse
from ganlab.data.arrays import to_model, to_uint8
from ganlab.modules import load_modules
from ganlab.nets.registry import validate_net
from ganlab.progress import Progress
from ganlab.samplers.ddls import DDLSConfig, ddls_refine
from ganlab.samplers.dgflow import DGflowConfig, dgflow_refine
from ganlab.samplers.drs import DRSConfig, calibrate_discriminator, drs_sample
from ganlab.samplers.latent import NoneConfig, seeded_normal
from ganlab.samplers.truncation import TruncationConfig, truncated_normal
from ganlab.schema import Strict

# Fake samples for the DRS calibration head come from their own seed range, disjoint from evaluation
# (evaluation seed k uses k * 1e6 + i) and from DRS candidate / burn-in streams (seed * 2**32 + i, i < 2**32).
CALIBRATION_SEED_BASE = 2**62

TRUNCATION_CONVENTION = (
    "unit-std hard truncation: each z_i ~ N(0, 1) with |z_i| > psi is resampled until inside "
    "(StudioGAN truncated_normal; not TF-Hub's t * truncnorm(-2, 2))"
)

# ---------------------------------------------------------------------------------------------------
# Method entries: `{experiment, dataset, method}` + the method's options. Each method's options are one strict
# config in its sampler module (`ganlab.samplers`); `METHODS` below derives the entry model from it.

class _Entry(Strict):
    experiment: str
    # both must equal the experiment's `experiments` entry; dvc.yaml reads them: the data paths, and the network
    # module the stage depends on (src/ganlab/nets/<nets>.py)
    dataset: str
    nets: str


ENTRY_KEYS = tuple(_Entry.model_fields)  # where an entry runs, not how: never one of the method's options


class RunConfig(_Entry):
    """Base of every method's entry model (`METHODS[method].config`, made by `entry_model`)."""

    method: str


def entry_model(
    method: str, options: type[Strict], per_scale: tuple[str, ...] = (), quick: dict[str, Any] | None = None
) -> type[RunConfig]:
    """The postprocess.yaml entry of `method`: `{experiment, dataset, method}` + the fields of `options` (same
    types, bounds and defaults), those named in `per_scale` written `{quick, paper}`: default the option's own
    default at both scales, or `quick[key]` at the quick scale."""
    fields: dict[str, Any] = {"method": (Literal[method], ...)}
    for key, field in options.model_fields.items():
        if key in per_scale:
            kind = Scaled[Annotated[(field.annotation, *field.metadata)]]  # the option's type and bounds, per scale
            fields[key] = (kind, kind(quick=(quick or {}).get(key, field.default), paper=field.default))
        else:
            fields[key] = (field.annotation, field)
    return create_model(f"{options.__name__}Entry", __base__=RunConfig, __module__=__name__, **fields)


# ---------------------------------------------------------------------------------------------------
# Sweeps: one numeric option of one method over a list of values


def _is_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    return value


SweepValue = Annotated[int | float, BeforeValidator(_is_number)]  # ints stay ints (integer options)


def _scalar_field(field: FieldInfo) -> FieldInfo:
    """The field itself, or for a `Scaled` option the field of its per-scale value."""
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, Scaled):
        return annotation.model_fields["quick"]
    return field


def _allowed(field: FieldInfo) -> str:
    """`numbers in (0, 1)`, `integers > 0`, ... from the field's bounds."""
    scalar = _scalar_field(field)
    kind = "integers" if scalar.annotation is int else "numbers"
    low = high = None
    for m in scalar.metadata:
        if getattr(m, "gt", None) is not None:
            low = ("(", ">", m.gt)
        elif getattr(m, "ge", None) is not None:
            low = ("[", ">=", m.ge)
        elif getattr(m, "lt", None) is not None:
            high = (")", "<", m.lt)
        elif getattr(m, "le", None) is not None:
            high = ("]", "<=", m.le)
    if low and high:
        return f"{kind} in {low[0]}{low[2]}, {high[2]}{high[0]}"
    if low or high:
        _, op, bound = low or high
        return f"{kind} {op} {bound}"
    return kind


def at_both_scales(config: type[Strict], key: str, value: Any) -> Any:
    """`value` given for option `key` of the entry model `config`: a plain value for a `{quick, paper}` option
    stands for both scales (`{"quick": value, "paper": value}`); anything else is returned as given."""
    field = config.model_fields.get(key)
    if field is not None and _scalar_field(field) is not field and not isinstance(value, dict):
        return {"quick": value, "paper": value}
    return value


def numeric_options(method: str) -> dict[str, FieldInfo]:
    """The options of `method` a sweep may vary: numbers and integers, scale-dependent ones included."""
    fields = METHODS[method].config.model_fields
    return {name: f for name, f in fields.items() if _scalar_field(f).annotation in (int, float)}


class SweepConfig(_Entry):
    """`sweeps.<name>`: `{experiment, dataset, method, key, values, <the method's other options>}` -- run `method`
    once per value of its numeric option `key` (strictly increasing `values`), the other options fixed as given
    (defaults otherwise). A scale-dependent option (`steps`, `calibration_n`) takes each value at both scales.
    The method's options are validated by the method's own config, as for `runs`; they are kept in `options`."""

    method: str
    key: str
    values: list[SweepValue]
    options: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _collect_options(cls, data: Any) -> Any:
        # the YAML entry is flat: everything that is not a sweep field is one of the method's options
        if not isinstance(data, dict):
            return data
        own = {*ENTRY_KEYS, "method", "key", "values"}
        options = {k: v for k, v in data.items() if k not in own}
        return {**{k: v for k, v in data.items() if k in own}, "options": options}

    @model_validator(mode="after")
    def _valid_for_the_method(self) -> "SweepConfig":
        if self.method not in METHODS:
            raise ValueError(f"method: unknown method {self.method!r}; allowed: {', '.join(METHODS)}")
        numeric = numeric_options(self.method)
        if self.key not in numeric:
            allowed = ", ".join(numeric) or f"none (method {self.method} has no numeric option)"
            raise ValueError(f"key: {self.key!r} is not a numeric option of method {self.method}; allowed: {allowed}")
        if self.key in self.options:
            raise ValueError(f"{self.key}: it is the swept key; give its values in `values` only")
        if not self.values:
            raise ValueError(f"values: need one or more {_allowed(numeric[self.key])}")
        config = METHODS[self.method].config
        for value in self.values:
            try:
                config.model_validate(self._run_data(value))
            except ValidationError as e:
                errors = e.errors()
                other = [err for err in errors if err["loc"][:1] != (self.key,)]
                if other:  # an option's error, the same for every value
                    err = other[0]
                    msg = err["msg"].removeprefix("Value error, ")
                    if err["type"] == "extra_forbidden":
                        fixed = (*ENTRY_KEYS, "method", self.key)
                        options = [k for k in config.model_fields if k not in fixed]
                        allowed = ", ".join(options) or f"none (the sweep's {self.key} is the method's only option)"
                        msg = f"unknown option of method {self.method} (misspelled?); allowed: {allowed}"
                    elif err["type"] == "missing":
                        msg = "required key is missing"
                    raise ValueError(f"{'.'.join(str(p) for p in err['loc'])}: {msg}") from None
                msg = errors[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"values: {self.key} = {value!r} is not valid for method {self.method} ({msg}); "
                                 f"allowed: {_allowed(numeric[self.key])}") from None
        if any(b <= a for a, b in zip(self.values, self.values[1:])):
            raise ValueError(f"values: must be strictly increasing (sorted, no repeats), got {self.values}")
        return self

    def _run_data(self, value: int | float) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in ENTRY_KEYS}, "method": self.method, **self.options,
                self.key: at_both_scales(METHODS[self.method].config, self.key, value)}

    def run(self, value: int | float) -> RunConfig:
        """The single-run config of the point `value` (as `runs` would parse it)."""
        return METHODS[self.method].config.model_validate(self._run_data(value))

    @property
    def prepares_per_value(self) -> bool:
        """Whether the method's per-checkpoint preparation depends on the swept key (DRS: calibration_n)."""
        return self.key in METHODS[self.method].prepared_by


def sweep_runs(sweep: SweepConfig) -> Iterator[tuple[int | float, RunConfig]]:
    """(x, the single-run config with `key: x`) for every value of the sweep, in increasing order; x as the config
    holds it (psi: 1 -> 1.0; a scale-dependent option's value at either scale)."""
    for value in sweep.values:
        cfg = sweep.run(value)
        x = getattr(cfg, sweep.key)
        yield (x.quick if isinstance(x, Scaled) else x), cfg


# ---------------------------------------------------------------------------------------------------
# Loading and validating postprocess.yaml


class PostprocessSection(Strict):
    """postprocess.yaml -- `runs` (name -> one method on one experiment) and `sweeps` (name -> one option of one
    method over a list of values). Names are DVC stage keys and params paths: letters, digits, `-` and `_` only."""

    runs: dict[str, dict[str, Any]] = {}
    sweeps: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class Postprocess:
    runs: dict[str, RunConfig]
    sweeps: dict[str, SweepConfig]


def _check_name(section: str, name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(f"{section}.{name}: entry names may hold only letters, digits, '-' and '_'")


def _check_experiment(section: str, cfg: _Entry, pipeline: PipelineConfig) -> None:
    if cfg.experiment not in pipeline.experiments:
        raise ConfigError(
            f"{section}.experiment: no experiment {cfg.experiment!r}; allowed: {sorted(pipeline.experiments)}"
        )
    entry = pipeline.experiments[cfg.experiment]
    for key in ("dataset", "nets"):
        if getattr(cfg, key) != getattr(entry, key):
            raise ConfigError(f"{section}.{key}: {getattr(cfg, key)!r}, but experiments.{cfg.experiment} is "
                              f"{getattr(entry, key)!r}")


def parse_run(data: Any, section: str) -> RunConfig:
    """One run entry -> its method's config; an unknown method is a ConfigError listing the allowed ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{section}: expected a mapping, got {type(data).__name__}")
    method = data.get("method")
    if method not in METHODS:
        raise ConfigError(f"{section}.method: unknown method {method!r}; allowed: {', '.join(METHODS)}")
    return parse(METHODS[method].config, data, section)


def read_postprocess(path: str | Path) -> dict[str, Any]:
    """The raw content of postprocess.yaml (empty file = {}); ConfigError if missing or not YAML."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data or {}


def load_postprocess(data: dict[str, Any] | None, pipeline: PipelineConfig) -> Postprocess:
    """Validate every entry of postprocess.yaml's content `data` (None = nothing to do) against `pipeline`."""
    section = parse(PostprocessSection, data or {}, "postprocess.yaml")
    runs: dict[str, RunConfig] = {}
    for name, data in section.runs.items():
        where = f"postprocess.yaml:runs.{name}"
        _check_name("postprocess.yaml:runs", name)
        runs[name] = parse_run(data, where)
        _check_experiment(where, runs[name], pipeline)
    sweeps: dict[str, SweepConfig] = {}
    for name, data in section.sweeps.items():
        where = f"postprocess.yaml:sweeps.{name}"
        _check_name("postprocess.yaml:sweeps", name)
        sweeps[name] = parse(SweepConfig, data, where)
        _check_experiment(where, sweeps[name], pipeline)
    return Postprocess(runs, sweeps)


def load_entry(path: str | Path, pipeline: PipelineConfig, section: str, name: str) -> RunConfig | SweepConfig:
    """The validated entry `name` of postprocess.yaml's `section` ("runs" or "sweeps"), the whole file checked;
    ConfigError naming the entries there are when `name` is not one of them."""
    entries = getattr(load_postprocess(read_postprocess(path), pipeline), section)
    if name not in entries:
        raise ConfigError(f"postprocess.yaml:{section}: no entry {name!r}; allowed: {sorted(entries)}")
    return entries[name]


# ---------------------------------------------------------------------------------------------------
# The trained GAN, frozen


@dataclass(frozen=True)
class FrozenGAN:
    """G and D of a checkpoint in eval mode (D's dropout off) with requires_grad off.

    `generator(z)`: (B, nz) -> (B, C, H, W) in [-1, 1]; `logit(x)`: (B, C, H, W) -> (B,) raw D output."""

    generator: nn.Module
    discriminator: nn.Module
    nz: int
    loss: str  # the training loss: "ns" (a BCE logit), "hinge", "wasserstein", ...


def load_gan(state: dict[str, Any], device: torch.device) -> FrozenGAN:
    """Rebuild G and D of a `train_gan` checkpoint. Conditional / mixture-prior generators are refused:
    the samplers need z -> G(z) with a standard-normal z (module docstring)."""
    cfg = ExperimentConfig.model_validate(state["config"])
    prior = getattr(cfg, "prior", "normal")
    if prior != "normal":
        raise ConfigError(
            f"postprocess: the generator's latent prior is {prior!r}; the samplers need z ~ N(0, I) and the mixture "
            "map is not exposed here (see ganlab.samplers.latent for what each method would do to it)"
        )
    conditional = [role for role, net in (("generator", cfg.generator), ("discriminator", cfg.discriminator))
                   if getattr(validate_net(role, net, cfg.nets), "conditional", False)]
    if getattr(cfg, "encoder", None) is not None:
        conditional.append("encoder (BiGAN: D scores (x, z) pairs)")
    if conditional:
        raise ConfigError(
            f"postprocess: the checkpoint's {' and '.join(conditional)} does not fit the samplers' contract "
            "(an unconditional N(0, I) generator and a D scoring x alone)"
        )
    parts = load_modules(state, device)  # eval mode
    for net in (parts.generator, parts.discriminator):
        net.requires_grad_(False)
    return FrozenGAN(parts.generator, parts.discriminator, int(parts.generator.nz), cfg.loss)


# ---------------------------------------------------------------------------------------------------
# Methods: (cfg, gan, seeds, context, prepared) -> (uint8 images (N, H, W, C), int64 seeds (N,), info);
# `prepared` is the method's per-checkpoint preparation (DRS: the calibration head), None = do it here.


@dataclass(frozen=True)
class Context:
    """What a method may use besides the GAN: the scale, the device, the compute batch size (speed only)
    and real training images (uint8 (N, H, W, C)) for the DRS calibration head; `progress`: a label to show the
    images made under (`ganlab.progress`), None for none."""

    scale: str
    device: torch.device
    batch_size: int
    real_images: np.ndarray | None = None
    progress: str | None = None


def _in_batches(seeds: np.ndarray, ctx: Context, make: Callable[[np.ndarray], Tensor]) -> np.ndarray:
    """uint8 images of make(seed batch) -> (B, C, H, W) in [-1, 1], concatenated in seed order."""
    out = []
    with Progress(ctx.progress or "", len(seeds), unit="image", enabled=ctx.progress is not None) as bar:
        for i in range(0, len(seeds), ctx.batch_size):
            out.append(to_uint8(make(seeds[i : i + ctx.batch_size]).detach()).cpu().numpy())
            bar.update(len(out[-1]))
    return np.concatenate(out)


def run_none(cfg: RunConfig, gan: FrozenGAN, seeds: np.ndarray, ctx: Context, prepared: None = None):
    def make(s: np.ndarray) -> Tensor:
        with torch.no_grad():
            return gan.generator(seeded_normal(s.tolist(), (gan.nz,), ctx.device))

    return _in_batches(seeds, ctx, make), seeds, {}


def run_truncation(cfg: RunConfig, gan: FrozenGAN, seeds: np.ndarray, ctx: Context, prepared: None = None):
    def make(s: np.ndarray) -> Tensor:
        with torch.no_grad():
            return gan.generator(truncated_normal(s.tolist(), (gan.nz,), cfg.psi, ctx.device))

    info = {"truncation": {"psi": cfg.psi, "convention": TRUNCATION_CONVENTION}}
    return _in_batches(seeds, ctx, make), seeds, info


def _critic_note(gan: FrozenGAN) -> str:
    if gan.loss == "ns":
        return "d = D's logit (non-saturating BCE: an estimate of log p_data/p_g)"
    return f"d = the {gan.loss} critic's raw output, used directly as in the official DGflow code (not a log-ratio)"


def run_dgflow(cfg: RunConfig, gan: FrozenGAN, seeds: np.ndarray, ctx: Context, prepared: None = None):
    steps = cfg.steps.at(ctx.scale)

    def make(s: np.ndarray) -> Tensor:
        z = seeded_normal(s.tolist(), (gan.nz,), ctx.device)
        z = dgflow_refine(z, gan.generator, gan.discriminator, seeds=s.tolist(), f_div=cfg.f_div, eta=cfg.eta,
                          gamma=cfg.gamma, steps=steps)
        with torch.no_grad():
            return gan.generator(z)

    info = {"dgflow": {"f_div": cfg.f_div, "eta": cfg.eta, "gamma": cfg.gamma, "steps": steps,
                       "start": "baseline latents z(seed)", "d": _critic_note(gan)}}
    return _in_batches(seeds, ctx, make), seeds, info


def run_ddls(cfg: RunConfig, gan: FrozenGAN, seeds: np.ndarray, ctx: Context, prepared: None = None):
    steps = cfg.steps.at(ctx.scale)

    def make(s: np.ndarray) -> Tensor:
        z = seeded_normal(s.tolist(), (gan.nz,), ctx.device)
        z = ddls_refine(z, gan.generator, gan.discriminator, seeds=s.tolist(), step_size=cfg.step_size, steps=steps,
                        noise_std=cfg.noise_std, decay=cfg.decay, decay_every=cfg.decay_every)
        with torch.no_grad():
            return gan.generator(z)

    info = {"ddls": {"energy": "||z||^2/2 - d(G(z))", "sampler": "ULA", "step_size": cfg.step_size, "steps": steps,
                     "noise_std": cfg.noise_std, "decay": cfg.decay, "decay_every": cfg.decay_every,
                     "start": "baseline latents z(seed)", "d": _critic_note(gan)}}
    return _in_batches(seeds, ctx, make), seeds, info


Calibration = tuple[Callable[[Tensor], Tensor], dict[str, Any]]  # (calibrated logit function, its record)


def calibrate(gan: FrozenGAN, cfg: RunConfig, ctx: Context) -> Calibration:
    """Fit the logistic head a*D(x) + b on n = cfg.calibration_n real training images vs n samples of the frozen G
    (own seed range); returns (calibrated logit function, the `calibration` record). Depends on `calibration_n`
    only, so a DRS sweep over any other option fits it once."""
    if ctx.real_images is None:
        raise ValueError("DRS needs real images for its calibration head (Context.real_images)")
    t0 = time.perf_counter()
    n = min(cfg.calibration_n.at(ctx.scale), len(ctx.real_images))
    real = to_model(torch.as_tensor(ctx.real_images[:n]).to(ctx.device))  # (n, C, H, W) in [-1, 1]
    fake_seeds = CALIBRATION_SEED_BASE + np.arange(n, dtype=np.int64)
    with torch.no_grad():
        fake = torch.cat([gan.generator(seeded_normal(fake_seeds[i : i + ctx.batch_size].tolist(), (gan.nz,), ctx.device))
                          for i in range(0, n, ctx.batch_size)])
    logit_fn, head = calibrate_discriminator(gan.discriminator, real, fake, batch_size=ctx.batch_size)
    record = {"a": head.a, "b": head.b, "n": n, "loss": head.loss, "converged": head.converged,
              "real_split": "train (first n)", "fake_seeds": f"{CALIBRATION_SEED_BASE} + i",
              "logit": "a * D(x) + b, class-balanced BCE, G and D frozen; no KeepTraining",
              "seconds": time.perf_counter() - t0}
    return logit_fn, record


def run_drs(cfg: RunConfig, gan: FrozenGAN, seeds: np.ndarray, ctx: Context, prepared: Calibration | None = None):
    """DRS keeps len(seeds) accepted candidates; the returned seeds are the accepted latent seeds. `prepared`: a
    calibration from `calibrate` with the same `calibration_n` (None = fit it here)."""
    logit_fn, calibration = prepared if prepared is not None else calibrate(gan, cfg, ctx)
    x, drs = drs_sample(
        len(seeds), gan.generator, logit_fn, nz=gan.nz, seed=cfg.stream_seed, burn_in=cfg.burn_in,
        epsilon=cfg.epsilon, mode=cfg.mode, gamma_percentile=cfg.gamma_percentile, gamma=cfg.gamma,
        threshold=cfg.threshold, max_candidates=cfg.max_candidates, device=ctx.device, batch_size=ctx.batch_size,
    )
    record = {k: v for k, v in drs.scalars().items() if not (isinstance(v, float) and math.isnan(v))}
    record |= {"threshold": cfg.threshold, "burn_in": cfg.burn_in, "epsilon": cfg.epsilon, "stream_seed": cfg.stream_seed}
    if cfg.mode == "percentile":
        record["gamma_percentile"] = cfg.gamma_percentile
    images = to_uint8(x).cpu().numpy()
    return images, drs.accepted_seeds.numpy().astype(np.int64), {"drs": record, "calibration": calibration}


@dataclass(frozen=True)
class Method:
    config: type[RunConfig]  # the postprocess.yaml entry (`entry_model` of the method's options)
    run: Callable[..., tuple[np.ndarray, np.ndarray, dict[str, Any]]]
    # per-checkpoint work shared by the points of a sweep: (gan, cfg, ctx) -> `prepared`, and the options it reads
    prepare: Callable[[FrozenGAN, Any, Context], Any] | None = None
    prepared_by: tuple[str, ...] = ()


def _method(
    name: str,
    options: type[Strict],
    run: Callable[..., Any],
    *,
    per_scale: tuple[str, ...] = (),
    quick: dict[str, Any] | None = None,
    prepare: Callable[[FrozenGAN, Any, Context], Any] | None = None,
    prepared_by: tuple[str, ...] = (),
) -> Method:
    """Register method `name` with its options (the sampler's config) and run function; `per_scale`, `quick`: the
    options written `{quick, paper}` and their quick-scale defaults where they differ (`entry_model`)."""
    return Method(entry_model(name, options, per_scale, quick), run, prepare, prepared_by)


METHODS: dict[str, Method] = {
    "none": _method("none", NoneConfig, run_none),
    "truncation": _method("truncation", TruncationConfig, run_truncation),
    "dgflow": _method("dgflow", DGflowConfig, run_dgflow, per_scale=("steps",)),
    # quick scale: the paper setting's step size and 20 of its 1000 steps (CPU budget)
    "ddls": _method("ddls", DDLSConfig, run_ddls, per_scale=("steps",), quick={"steps": 20}),
    "drs": _method("drs", DRSConfig, run_drs, per_scale=("calibration_n",), prepare=calibrate,
                   prepared_by=("calibration_n",)),
}


def method_params(cfg: Strict, scale: str) -> dict[str, Any]:
    """The method's options at `scale` (Scaled values resolved), without experiment/dataset/nets."""
    out = {}
    for key, value in cfg:
        if key in ENTRY_KEYS:
            continue
        out[key] = value.at(scale) if isinstance(value, Scaled) else value
    return out


def run_method(
    cfg: RunConfig, gan: FrozenGAN, seeds: np.ndarray, ctx: Context, prepared: Any = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Run `cfg`'s method for the integer `seeds` (N,): uint8 images (N, H, W, C), the latent seed of each image
    (N,) int64 (== seeds except for DRS: the accepted candidates), and an info dict
    `{method, method_params, seconds, <method>: {...}, [calibration: {...}]}`. `prepared`: the method's
    preparation done beforehand (`Method.prepare`; None = done here and counted in `seconds`)."""
    seeds = np.asarray(seeds, dtype=np.int64)
    t0 = time.perf_counter()
    images, out_seeds, info = METHODS[cfg.method].run(cfg, gan, seeds, ctx, prepared)
    return images, out_seeds, {"method": cfg.method, "method_params": method_params(cfg, ctx.scale),
                               "seconds": time.perf_counter() - t0, **info}


# ---------------------------------------------------------------------------------------------------
# Running a sweep

# Per method: numbers of its record that each sweep point keeps besides the metrics, and those of them that are
# also drawn and written to the sweep's CSV.
POINT_RECORDS = {"drs": ("acceptance_rate", "n_candidates")}
SWEEP_CURVES = {"drs": ("acceptance_rate",)}


@dataclass(frozen=True)
class SweepStep:
    """One point of a sweep: the swept value x, its single-run config and what `run_method` returned for it."""

    x: int | float
    config: RunConfig
    images: np.ndarray  # uint8 (N, H, W, C)
    seeds: np.ndarray  # int64 (N,), the latent seed of each image
    info: dict[str, Any]


def run_sweep(sweep: SweepConfig, gan: FrozenGAN, seeds: np.ndarray, ctx: Context) -> Iterator[SweepStep]:
    """`run_method` for every value of `sweep` in increasing order, on the same `seeds`; each step's samples equal
    the single run `sweep.run(x)`'s. The method's preparation (DRS calibration) is done once, before the first
    value, unless the swept key changes it (then once per value); its time is in its own record, not in the
    steps' `seconds`. A generator: one step's images are held at a time."""
    method = METHODS[sweep.method]
    prepared = None
    for i, (x, cfg) in enumerate(sweep_runs(sweep)):
        if method.prepare is not None and (i == 0 or sweep.prepares_per_value):
            prepared = method.prepare(gan, cfg, ctx)
        yield SweepStep(x, cfg, *run_method(cfg, gan, seeds, ctx, prepared))


def sweep_point(sweep: SweepConfig, step: SweepStep, metrics: dict[str, float]) -> dict[str, Any]:
    """A point of the series: `{key: x, **metrics, <POINT_RECORDS of the method>, first_sample_seed, seconds}`,
    plus the step's `calibration` when it was fitted for this value alone."""
    record = step.info.get(sweep.method, {})
    point = {sweep.key: step.x, **metrics, **{k: record[k] for k in POINT_RECORDS.get(sweep.method, ()) if k in record},
             "first_sample_seed": int(step.seeds[0]), "seconds": step.info["seconds"]}
    if sweep.prepares_per_value and "calibration" in step.info:
        point["calibration"] = step.info["calibration"]
    return point


def sweep_shared(sweep: SweepConfig, step: SweepStep) -> dict[str, Any]:
    """What a step shares with every other step of its sweep, for the series' top level: the DRS `calibration`
    fitted once for the whole sweep ({} otherwise)."""
    if "calibration" in step.info and not sweep.prepares_per_value:
        return {"calibration": step.info["calibration"]}
    return {}


def sweep_series(
    sweep: SweepConfig, points: list[dict[str, Any]], protocol: dict[str, Any], *, scale: str, **extra: Any
) -> dict[str, Any]:
    """A sweep series in the report's format (`ganlab.report.load_evaluations`):
    `{experiment, method, sweep: key, points: [{key: x, fid, precision, ...}, ...], protocol, method_params, **extra}`,
    points sorted by x, `method_params` = the options every point shares (at `scale`); a repeated x is a
    ValueError."""
    pts = sorted(points, key=lambda p: p[sweep.key])
    xs = [p[sweep.key] for p in pts]
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"sweep {sweep.key}: repeated values {xs}")
    shared = {k: v for k, v in method_params(sweep.run(sweep.values[0]), scale).items() if k != sweep.key}
    return {"experiment": sweep.experiment, "method": sweep.method, "sweep": sweep.key, "points": pts,
            "protocol": protocol, "method_params": shared, **extra}

"""Strict, typed configuration read from `params.yaml`.

Every stage loads the sections it uses through `load_params` + one of the models below, before any work
starts. A misspelled key, a wrong type or an out-of-range value raises `ConfigError` naming the key
(`vanilla.optimizer.lr_g`) and what is allowed; stages turn it into one line on stderr and exit code 2.

YAML note: PyYAML (YAML 1.1) reads `2e-4` as the *string* "2e-4" while DVC reads it as a float. A string
where a number belongs is rejected with a hint to write `2.0e-4`, so the two readers never disagree.

Layering: this module sits at the bottom and imports no network, loss or prior, so that the data stages do not
depend on them. It checks shapes and types; the names a recipe picks from those registries (loss, architectures
and their options, prior) are checked by `ganlab.recipe`, which the `validate` stage runs for every experiment.

Scale: values that differ between the quick CPU run and the source reports' setting are written
`{quick: 3, paper: 100}`; the top-level `scale` key picks one for the whole DAG.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ganlab.schema import (
    ConfigError,
    NonNegativeInt,
    Number,
    PositiveFloat,
    PositiveInt,
    Strict,
)

PARAMS_FILE = "params.yaml"
SCALES = ("quick", "paper")


T = TypeVar("T")


class Scaled(Strict, Generic[T]):
    """A value that depends on the run's scale: `{quick: ..., paper: ...}`."""

    quick: T
    paper: T

    def at(self, scale: str) -> T:
        return getattr(self, scale)


# ---------------------------------------------------------------------------------------------------
# Sections


class DataConfig(Strict):
    """`data:` — acquisition settings shared by every dataset."""

    timeout_s: PositiveFloat = 30.0


class BatteryConfig(Strict):
    """`features.<dataset>.battery:` — the feature space's sanity battery (`ganlab.battery`): `n` images per set,
    scored against the first `n` test images (at most half the test split); `seed` draws every set."""

    n: PositiveInt = 2000
    seed: NonNegativeInt = 0


class RejectClassConfig(Strict):
    """`features.<dataset>.reject_class:` — one more class for the domain classifier, "none of these", trained on
    synthetic `negatives` (`ganlab.features.NEGATIVES`), `fraction` of them per real image in every batch (outlier
    exposure, Hendrycks et al. 2019). It gives images that are no digit a region of the feature space of their own,
    away from every real image's k-NN ball (see `ganlab.battery`)."""

    negatives: Literal["smooth_fields"] = "smooth_fields"
    fraction: Annotated[PositiveFloat, Field(le=1)] = 0.1


class FeatureNetConfig(Strict):
    """`features.<dataset>:` — the domain feature network (`ganlab.nets.classifier.FEATURE_ARCHS`): a
    classifier (lenet, cnn) whose penultimate layer is the feature space for FID and PRDC, or an
    autoencoder whose bottleneck is (for datasets without labels)."""

    arch: Literal["lenet", "cnn", "autoencoder"] = "lenet"
    feature_dim: PositiveInt = 128
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 1.0e-3
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # per step, cosine from lr down to 0 over the run
    num_epochs: Scaled[PositiveInt]
    seed: NonNegativeInt = 0
    reject_class: RejectClassConfig | None = None  # None: the dataset's classes only
    battery: BatteryConfig = BatteryConfig()

    @model_validator(mode="after")
    def _reject_class_needs_a_classifier(self) -> "FeatureNetConfig":
        if self.reject_class is not None and self.arch == "autoencoder":
            raise ValueError("reject_class: needs a classifier arch (lenet, cnn); the autoencoder has no classes")
        return self


class EvaluateConfig(Strict):
    """`evaluate:` — the evaluation protocol (catalogue §E)."""

    n_samples: Scaled[PositiveInt]
    nearest_k: PositiveInt = 5
    seed: NonNegativeInt = 0
    batch_size: PositiveInt = 500
    # pytorch-fid's pt_inception-2015-12-05-6726825d.pth; null = the torch hub cache
    # ($TORCH_HOME/hub/checkpoints/), downloaded there when online (stages/fetch_inception.py)
    inception_weights: str | None = None


class CurvesConfig(Strict):
    """`curves:` — learning curves. Every `eval_every` epochs, and at the last one, the train stage scores the
    generator on `n_samples` fixed evaluation seeds (the block of `seed`, apart from `evaluate.seed`'s) against the
    first `n_samples` test images in the domain feature space: FID, precision, recall, density, coverage (no KID:
    its subsets would cost more than the rest)."""

    eval_every: Scaled[PositiveInt]
    n_samples: PositiveInt = 2000
    seed: NonNegativeInt = 1


class NetConfig(Strict):
    """A network: `arch` picks a registered architecture; the other keys are that architecture's options,
    validated by the architecture's own model (see `ganlab.nets.registry`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    arch: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OptimizerConfig(Strict):
    name: Literal["adam", "rmsprop"] = "adam"
    lr_g: PositiveFloat
    lr_d: PositiveFloat
    betas: tuple[Annotated[Number, Field(ge=0, lt=1)], Annotated[Number, Field(ge=0, lt=1)]] = (0.9, 0.999)


class ProbeConfig(Strict):
    """`<experiment>.probe:` — linear-probe evaluation of a BiGAN encoder (stage `probe@<experiment>`): an RBF SVM,
    a logistic-regression classifier and (optionally) 1-NN fitted on E(x) of a seeded subset of the train split,
    scored on the whole test split. It lives in the experiment's section, so editing it reruns train as well."""

    train_size: Scaled[PositiveInt]  # train images used to fit the classifiers (capped at the split size)
    svm_c: PositiveFloat = 1.0
    nearest_neighbour: bool = True  # 1-NN accuracy (the BiGAN paper's MNIST metric)
    seed: NonNegativeInt = 0


class ExperimentConfig(Strict):
    """`<experiment>:` — one GAN recipe (catalogue §A/C/D). The dataset comes from `experiments:`.

    Latent prior (`ganlab.nets.priors`): `prior` names it; `num_components` (K), `sigma` (σ, a standard deviation:
    the fixed σ of the static mixture, the initial σ₀ of the supervised one), `c` (means ~ U[-c, c]) and
    `lr_prior` (the supervised mixture's own Adam learning rate, report 004's "GM lr") are its knobs, at the
    top level of the section so that `dvc exp run -S gmgan.sigma=1.4` names exactly the knob.
    """

    generator: NetConfig
    discriminator: NetConfig
    encoder: NetConfig | None = None  # BiGAN: E(x) -> z, trained with G; D scores (x, z) pairs
    loss: str = "ns"
    optimizer: OptimizerConfig
    batch_size: PositiveInt = 64
    num_epochs: Scaled[PositiveInt]
    # Cut each epoch to its first N batches (of a fresh permutation); null = the full epoch. Used at quick
    # scale for the convolutional recipes, whose full MNIST epoch does not fit the CPU budget.
    batches_per_epoch: Scaled[PositiveInt | None] | None = None
    n_critic: PositiveInt = 1  # D steps per G step
    n_gen: PositiveInt = 1  # G steps per G turn
    clip_value: PositiveFloat | None = None  # WGAN weight clipping (Arjovsky et al. 2017)
    gp_weight: Annotated[Number, Field(ge=0)] = 0.0  # WGAN-GP λ (Gulrajani et al. 2017)
    prior: str = "normal"
    num_components: PositiveInt | None = None
    sigma: PositiveFloat | None = None
    c: PositiveFloat | None = None
    lr_prior: PositiveFloat | None = None
    class_loss_weight: Annotated[Number, Field(ge=0)] | None = None  # gmgan_sep: weight of the class CE (1.5)
    probe: ProbeConfig | None = None  # BiGAN encoders only
    # A point of another experiment's sweep: the section is `{sweep_of: <base>, <knob>: <value>}`, the base's
    # recipe with one top-level numeric knob changed (`resolve_section`), e.g. gmgan_sigma1p1 = gmgan with
    # sigma 1.1; the report draws it on the base's curve.
    sweep_of: str | None = None
    # Set by `load_experiment`, never in a section: the training seed from the top-level `seeds` list, and the
    # architecture family from `experiments.<name>.nets`. `precision`: the resolved top-level `precision` (bf16
    # autocast or fp32), set by the train stage once it knows the device; None = fp32.
    seed: NonNegativeInt = 0
    nets: str | None = None
    precision: Literal["bf16", "fp32"] | None = None
    grid_size: PositiveInt = 64  # images in the per-epoch sample grid

    @model_validator(mode="after")
    def _probe_needs_an_encoder(self) -> "ExperimentConfig":
        if self.probe is not None and self.encoder is None:
            raise ValueError("probe: only an experiment with an encoder (BiGAN) can be probed")
        return self

    def epoch_batches(self, scale: str) -> int | None:
        """The per-epoch batch cap at `scale` (None: full epochs)."""
        return None if self.batches_per_epoch is None else self.batches_per_epoch.at(scale)


class ExperimentEntry(Strict):
    """`experiments.<name>:` (and `probes.<name>`, `interpolations.<name>`) — where an experiment runs:
    `dataset`, and `nets`, the architecture family its networks come from (`ganlab.nets.registry.FAMILIES`:
    mlp or dcgan, the module src/ganlab/nets/<nets>.py). DVC reads `nets` to make the experiment's stages
    depend on that module alone; `ganlab.recipe` checks that the recipe's architectures belong to it."""

    dataset: str
    nets: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    # This experiment's training seeds, when they are not the top-level `seeds` (e.g. more seeds where a claim needs
    # them); they must start with seeds[0], the seed post-processing sweeps, probes and interpolations use.
    seeds: list[NonNegativeInt] | None = None

    def place(self) -> tuple[str, str]:
        """(dataset, nets): what `probes` and `interpolations` entries repeat."""
        return self.dataset, self.nets


class PipelineConfig(Strict):
    """The top level of `params.yaml` without the per-experiment sections."""

    model_config = ConfigDict(extra="allow", frozen=True)

    scale: Literal["quick", "paper"] = "quick"
    device: str = "auto"
    # Training's matrix products: auto = bfloat16 autocast where the device runs bf16 natively (AVX512_BF16 / AMX
    # CPUs, CUDA with bf16), else float32; bf16 / fp32 force one. Weights, optimiser states and losses stay float32.
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    max_batches_per_epoch: PositiveInt | None = None  # debug/smoke knob: cut every epoch short
    datasets: list[str]
    experiments: dict[str, ExperimentEntry]  # experiment name -> {dataset, nets}
    # Every experiment is trained and evaluated once per seed (data/train/<exp>/seed-<s>/, metrics per seed);
    # the report shows mean ± std over them. Post-processing, sweeps and probes use the first seed's generator.
    seeds: list[NonNegativeInt] = [0]
    # BiGAN experiments whose encoder is probed, conditional experiments drawn by interpolate@<name>: each a copy of
    # the experiment's `experiments` entry (DVC's stage loops read their dataset and nets from it).
    probes: dict[str, ExperimentEntry] = {}
    interpolations: dict[str, ExperimentEntry] = {}
    data: DataConfig = DataConfig()
    features: dict[str, FeatureNetConfig]
    evaluate: EvaluateConfig
    curves: CurvesConfig | None = None  # None: no learning curves

    def seeds_of(self, experiment: str) -> list[int]:
        """The training seeds of `experiment`: its own `experiments.<name>.seeds`, else the top-level `seeds`."""
        own = self.experiments[experiment].seeds if experiment in self.experiments else None
        return list(own) if own is not None else list(self.seeds)

    @model_validator(mode="before")
    @classmethod
    def _entries_are_mappings(cls, data: Any) -> Any:
        for key in ("experiments", "probes", "interpolations"):
            for exp, entry in ((data or {}).get(key) or {}).items() if isinstance(data, dict) else ():
                if isinstance(entry, str):
                    raise ValueError(f"{key}.{exp}: write {{dataset: {entry}, nets: mlp}} (or nets: dcgan), the dataset "
                                     "and the architecture family of the experiment's networks")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "PipelineConfig":
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: a non-empty list of distinct integers >= 0, got {self.seeds}")
        for name in self.datasets:
            if name not in self.features:
                raise ValueError(f"features: missing section features.{name} for dataset {name!r}")
        for exp, entry in self.experiments.items():
            dataset = entry.dataset
            if not re.fullmatch(r"[A-Za-z0-9_-]+", exp):  # DVC reads `experiments.a.b` as nested keys
                raise ValueError(f"experiments.{exp}: an experiment name may hold letters, digits, _ and - only "
                                 "(it is a params key and a path; e.g. gmgan_sigma1p4 for σ₀ 1.4)")
            if dataset not in self.datasets:
                raise ValueError(
                    f"experiments.{exp}: dataset {dataset!r} is not in datasets {self.datasets}; "
                    "add it to `datasets` (and its features section) first"
                )
            if exp not in (self.model_extra or {}):
                raise ValueError(f"experiments.{exp}: no section `{exp}:` in params.yaml")
        for exp, entry in self.experiments.items():
            if entry.seeds is not None and (len(set(entry.seeds)) != len(entry.seeds) or entry.seeds[:1] != self.seeds[:1]):
                raise ValueError(f"experiments.{exp}.seeds: distinct integers >= 0 starting with seeds[0] = "
                                 f"{self.seeds[0]} (the seed of sweeps, probes and interpolations), got {entry.seeds}")
        for key, entries in (("probes", self.probes), ("interpolations", self.interpolations)):
            for exp, entry in entries.items():
                if exp not in self.experiments or self.experiments[exp].place() != entry.place():
                    found = self.experiments[exp].model_dump(exclude={"seeds"}) if exp in self.experiments else "<not in experiments>"
                    raise ValueError(f"{key}.{exp}: must name an experiment of `experiments` with its entry "
                                     f"({exp}: {found})")
        for exp in self.interpolations:
            section = (self.model_extra or {}).get(exp) or {}
            if not (section.get("generator") or {}).get("conditional") or section.get("prior") != "class_normal":
                raise ValueError(f"interpolations.{exp}: needs generator.conditional: true and prior: class_normal")
        # Extra top-level keys are experiment sections (run or not: recipes for datasets not enabled
        # by default live there too). Anything else is a typo, e.g. `-S gmgn.sigma=1.4`.
        for key, value in (self.model_extra or {}).items():
            if not (isinstance(value, dict) and ("generator" in value or "sweep_of" in value)):
                raise ValueError(
                    f"{key}: unknown top-level key; allowed: {sorted(type(self).model_fields)} "
                    f"or an experiment section ({sorted(self.experiments)}, ...)"
                )
            if "seed" in value:
                raise ValueError(f"{key}.seed: the training seed comes from the top-level `seeds` list "
                                 f"(now {self.seeds}); remove it from the section")
            if "precision" in value:
                raise ValueError(f"{key}.precision: the precision is the top-level `precision` (now "
                                 f"{self.precision!r}); remove it from the section")
            if value.get("sweep_of") is not None:
                _check_sweep_point(key, value, self.model_extra)
        return self


def _check_sweep_point(name: str, section: dict[str, Any], sections: dict[str, Any]) -> None:
    """`name: {sweep_of: base, knob: value}`: base is another experiment section, itself no sweep point, and the
    section sets exactly one other key, a numeric top-level knob of the base's recipe (the merged recipe is then
    validated as a whole by `load_experiment`)."""
    base = section["sweep_of"]
    if not isinstance(sections.get(base), dict) or base == name:
        others = sorted(k for k, v in sections.items() if isinstance(v, dict) and k != name and not v.get("sweep_of"))
        raise ValueError(f"{name}.sweep_of: {base!r} is not another experiment section; allowed: {others}")
    if sections[base].get("sweep_of") is not None:
        raise ValueError(f"{name}.sweep_of: {base!r} is itself a sweep point of {sections[base]['sweep_of']!r}")
    knobs = sorted(section.keys() - {"sweep_of"})
    numeric = sorted(k for k, v in sections[base].items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    if len(knobs) != 1 or knobs[0] not in numeric:
        raise ValueError(f"{name}: a sweep point sets `sweep_of` and exactly one numeric top-level knob of "
                         f"{base!r}; got {knobs or 'none'}; allowed: one of {numeric}")


def resolve_section(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    """Experiment `name`'s recipe as a plain dict: its section, or for a sweep point its base's section with the
    point's knob (and `sweep_of`) set. None when there is no such section."""
    section = params.get(name)
    if not isinstance(section, dict) or section.get("sweep_of") is None:
        return section
    return {**(params.get(section["sweep_of"]) or {}), **section}


def swept_key(name: str, params: dict[str, Any]) -> str | None:
    """The knob a sweep point sets (None for a plain experiment). Call on validated params."""
    section = params[name]
    if section.get("sweep_of") is None:
        return None
    return next(iter(section.keys() - {"sweep_of"}))


# ---------------------------------------------------------------------------------------------------
# Loading


def _format_errors(section: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (section, *e["loc"]) if p != "")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (misspelled?)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        if not e["loc"] and e["type"] == "value_error":
            # model-level checks already start their message with the key inside the section
            lines.append(f"{section}.{msg}" if section else msg)
            continue
        lines.append(f"{loc}: {msg}")
    return "; ".join(lines)


def read_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open() as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def parse(model: type[BaseModel], data: Any, section: str) -> Any:
    """Validate `data` against `model`, turning pydantic's report into one `ConfigError` line."""
    if data is None:
        raise ConfigError(f"{section}: required section is missing")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(section, e)) from None


def load_pipeline(params: dict[str, Any]) -> PipelineConfig:
    return parse(PipelineConfig, params, section="")


def load_experiment(params: dict[str, Any], name: str, seed: int | None = None) -> tuple[PipelineConfig, ExperimentConfig]:
    """The pipeline config and experiment `name`'s recipe with `seed` (default: the first of its seeds), which
    must be one of its seeds (`PipelineConfig.seeds_of`)."""
    pipeline = load_pipeline(params)
    if name not in pipeline.experiments:
        raise ConfigError(f"experiments: no experiment {name!r}; allowed: {sorted(pipeline.experiments)}")
    seeds = pipeline.seeds_of(name)
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise ConfigError(f"seeds: seed {seed} is not among {name}'s training seeds {seeds}")
    section = resolve_section(params, name)
    if isinstance(section, dict) and "nets" in section:
        raise ConfigError(f"{name}.nets: the family comes from `experiments.{name}.nets`; remove it from the section")
    cfg = parse(ExperimentConfig, section, section=name)
    return pipeline, cfg.model_copy(update={"seed": seed, "nets": pipeline.experiments[name].nets})


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr_g': 1e-4}} -> {'optimizer.lr_g': 1e-4} (lists kept whole), for MLflow params."""
    if isinstance(tree, BaseModel):
        tree = tree.model_dump(mode="json")
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat

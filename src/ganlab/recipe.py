"""A recipe's names checked against the registries that own them: loss, networks, prior.

`ganlab.config` validates the shape and types of `params.yaml` and imports no network, loss or prior (so that
the data stages do not depend on them). The checks that need those registries live here, beside the leaves
they read: the `validate` stage runs them for every experiment before any stage with outputs, and the
training code runs them again when it builds the networks. Each error names the key inside the experiment's
section and the allowed values, like every `ConfigError`.
"""

from __future__ import annotations

from typing import Any

from ganlab.config import ExperimentConfig, PipelineConfig, load_experiment
from ganlab.losses import LOSSES
from ganlab.nets.priors import PRIOR_FIELDS, PRIORS, check_prior_fields
from ganlab.nets.registry import check_family, validate_net
from ganlab.schema import ConfigError


def check_recipe(cfg: ExperimentConfig, section: str) -> None:
    """Raise `ConfigError` ("<section>.<key>: ...") unless `cfg`'s names fit together (see `_check`)."""
    try:
        _check(cfg)
    except ValueError as e:
        raise ConfigError(f"{section}.{e}") from None


def load_recipe(params: dict[str, Any], name: str, seed: int | None = None) -> tuple[PipelineConfig, ExperimentConfig]:
    """`load_experiment` plus `check_recipe`: the experiment's recipe, fully checked."""
    pipeline, cfg = load_experiment(params, name, seed)
    check_recipe(cfg, name)
    return pipeline, cfg


def _check(cfg: ExperimentConfig) -> None:
    if cfg.loss not in LOSSES:
        raise ValueError(f"loss: unknown loss {cfg.loss!r}; allowed: {sorted(LOSSES)}")
    if cfg.nets is not None:  # None: a config built outside params.yaml (tests, old checkpoints): any family
        try:
            check_family(cfg.nets)
        except ValueError as e:
            raise ValueError(f"nets: {e} (experiments.<name>.nets in params.yaml)") from None
    g_opts = validate_net("generator", cfg.generator, cfg.nets)
    d_opts = validate_net("discriminator", cfg.discriminator, cfg.nets)
    e_opts = validate_net("encoder", cfg.encoder, cfg.nets) if cfg.encoder is not None else None
    check_prior_fields(cfg.prior, cfg.model_dump(include=set(PRIOR_FIELDS)))
    _check_roles(cfg, g_opts, d_opts, e_opts)


def _check_roles(cfg: ExperimentConfig, g_opts: Any, d_opts: Any, e_opts: Any) -> None:
    """The loss, the prior and the networks agree: heads, labels, encoders, latent sizes."""
    loss, labelled = LOSSES[cfg.loss], PRIORS[cfg.prior][0].labelled
    head = getattr(d_opts, "head", "real_fake")
    if loss.multi_logit != (head == "classes_and_fake"):
        want = "classes_and_fake" if loss.multi_logit else "real_fake"
        raise ValueError(f"discriminator.head: loss {cfg.loss!r} needs head {want!r}, got {head!r}")
    if loss.uses_labels and not labelled:
        raise ValueError(f"prior: loss {cfg.loss!r} needs labelled samples; use prior class_normal or "
                         f"supervised_mixture, not {cfg.prior!r}")
    for role, opts in (("generator", g_opts), ("discriminator", d_opts)):
        if getattr(opts, "conditional", False) and not labelled:
            raise ValueError(f"{role}.conditional: a conditional network needs a labelled prior "
                             f"(class_normal or supervised_mixture), not {cfg.prior!r}")
    if loss.g_uses_real != (e_opts is not None):
        raise ValueError(f"encoder: loss {cfg.loss!r} " + ("needs an encoder" if loss.g_uses_real
                         else "does not use an encoder; remove it or use loss 'bigan'"))
    for role, opts in (("encoder", e_opts), ("discriminator", d_opts)):
        if opts is not None and hasattr(opts, "nz") and opts.nz != g_opts.nz:
            raise ValueError(f"{role}.nz: {opts.nz} must equal generator.nz {g_opts.nz}")
    if cfg.class_loss_weight is not None and cfg.loss != "gmgan_sep":
        raise ValueError(f"class_loss_weight: only used by loss 'gmgan_sep', not {cfg.loss!r}")

"""The GAN zoo: every experiment section builds and trains, the new losses match hand computations, and the
building blocks (spectral norm, self-attention, priors, conditioning, DCGAN canvas) do what their papers say."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganlab.config import ExperimentConfig, NetConfig, load_pipeline
from ganlab.losses import LOSSES
from ganlab.nets.dcgan import crop_from_canvas, pad_to_canvas
from ganlab.nets.layers import SelfAttention2d, sn
from ganlab.nets.priors import StaticMixturePrior, SupervisedMixturePrior, build_prior
from ganlab.nets.registry import build_net
from ganlab.samplers.latent import seeded_normal
from ganlab.sampling import evaluation_seeds, generate
from ganlab.modules import build_modules, load_sampler
from ganlab.recipe import check_recipe
from ganlab.train import train_gan

CPU = torch.device("cpu")
# (image shape (H, W, C), number of classes) of each dataset, for tiny synthetic stand-ins
DATASETS = {"mnist": ((28, 28, 1), 10), "sheep": ((28, 28, 1), 1), "cifar10": ((32, 32, 3), 10),
            "afhq": ((64, 64, 3), 3)}


def _dataset_of(name: str, params: dict) -> str:
    if name in params["experiments"]:
        return params["experiments"][name]["dataset"]
    return next(d for d in ("cifar10", "sheep", "afhq") if d in name)


def _sections(params: dict) -> list[str]:
    return [k for k, v in params.items() if isinstance(v, dict) and "generator" in v]


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_every_section_is_listed_or_documented_off(params):
    load_pipeline(params)  # the whole file validates, including sections outside `experiments`
    sections = set(_sections(params))
    points = {k for k, v in params.items() if isinstance(v, dict) and "sweep_of" in v}
    assert points == {"gmgan_sigma1p4", "gmgan_sigma1p1", "gmgan_lr_prior8e-5"}  # gmgan's recipe, one knob changed
    assert set(params["experiments"]) <= sections | points
    off = sections - set(params["experiments"])
    assert off == {"dcgan_cifar10", "dcgan_sheep", "dcgan_afhq", "dcgan_afhq_ngen2", "dcgan_afhq_ngen10",
                   "dcgan_afhq_ngen15", "cwgan_afhq", "bigan_afhq"}
    assert all(entry["dataset"] == "mnist" for entry in params["experiments"].values())
    assert params["gmgan"]["sigma"] == 1.7 and params["gmgan"]["prior"] == "supervised_mixture"


@pytest.mark.parametrize("name", _sections(__import__("yaml").safe_load(open(
    __import__("pathlib").Path(__file__).resolve().parents[1] / "params.yaml"))))
def test_each_section_builds_and_one_training_step_changes_every_network(name, params, tmp_path):
    section = dict(params[name])
    # The recipe otherwise; for speed: small batches, at most 2 G steps per turn, and the non-MNIST recipes'
    # conv widths and cifar10's nz 10,000 shrunk (the code path and the image shapes are the recipe's).
    section["batch_size"] = 4
    section["n_gen"] = min(section.get("n_gen", 1), 2)
    if name not in params["experiments"]:
        for role, key in (("generator", "ngf"), ("discriminator", "ndf"), ("encoder", "nef")):
            if role in section and key in section[role]:
                section[role] = {**section[role], key: 8}
        if section["generator"].get("nz", 0) > 1000:
            section["generator"] = {**section["generator"], "nz": 64}
    cfg = ExperimentConfig.model_validate(section)
    (h, w, c), num_classes = DATASETS[_dataset_of(name, params)]
    steps = cfg.n_critic  # so that G takes exactly one turn
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4 * steps, h, w, c), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=4 * steps)
    torch.manual_seed(0)
    before = build_modules(cfg, (c, h, w), num_classes, CPU)
    torch.manual_seed(0)
    state = train_gan(cfg, images, labels, num_epochs=1, device=CPU, checkpoint_path=tmp_path / "c.pt",
                      num_classes=num_classes, max_batches_per_epoch=steps)
    pairs = [("generator", before.generator), ("discriminator", before.discriminator)]
    if before.encoder is not None:
        pairs.append(("encoder", before.encoder))
    for part, module in pairs:
        old, new = _state(module), state[part]
        weights = [k for k in old if k.endswith("weight") or k.endswith("original") or k.endswith("gamma")]
        changed = [k for k in weights if not torch.equal(old[k], new[k])]
        assert changed, f"{name}: no {part} weight changed after one step"
    # the sampler rebuilt from the checkpoint produces images of the dataset's shape
    sampler = load_sampler(state, CPU)
    out = generate(sampler, evaluation_seeds(3, 0), device=CPU)
    assert out.shape == (3, h, w, c) and out.dtype == np.uint8


# --- losses: hand computations ---------------------------------------------------------------------------


def _log_softmax(row: list[float], i: int) -> float:
    return row[i] - math.log(sum(math.exp(v) for v in row))


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


REAL = [[2.0, 0.0, -1.0, 0.5], [0.0, 1.0, 0.0, -2.0]]  # (B=2, C+1=4): 3 classes + fake
FAKE = [[0.0, 0.0, 1.0, 3.0], [1.0, -1.0, 0.0, 0.0]]
Y_REAL, Y_FAKE = [0, 1], [2, 0]


def test_gmgan_cross_entropy_losses_match_hand_computation():
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    y_real, y_fake = torch.tensor(Y_REAL), torch.tensor(Y_FAKE)
    # D: real -> its class, fake -> the last ("fake") class; the two means are summed
    d = -(_log_softmax(REAL[0], 0) + _log_softmax(REAL[1], 1)) / 2 - (_log_softmax(FAKE[0], 3) + _log_softmax(FAKE[1], 3)) / 2
    g = -(_log_softmax(FAKE[0], 2) + _log_softmax(FAKE[1], 0)) / 2  # G: fake -> the class it was sampled from
    loss = LOSSES["gmgan_ce"]
    assert loss.d(real, fake, y_real, y_fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.g(fake, y_fake).item() == pytest.approx(g, rel=1e-6)
    # the real-vs-fake logit of the 11-logit head: log sum_c exp(l_c) - l_fake
    expected = [math.log(sum(math.exp(v) for v in row[:3])) - row[3] for row in REAL]
    torch.testing.assert_close(loss.realness(real), torch.tensor(expected))


def test_gmgan_separate_objective_losses_match_hand_computation():
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    y_real, y_fake = torch.tensor(Y_REAL), torch.tensor(Y_FAKE)
    cls = lambda row, i: -_log_softmax(row[:3], i)  # noqa: E731  10-way softmax over the class logits only
    adv_d = (_softplus(-REAL[0][3]) + _softplus(-REAL[1][3])) / 2 + (_softplus(FAKE[0][3]) + _softplus(FAKE[1][3])) / 2
    d = adv_d + 1.5 * (cls(REAL[0], 0) + cls(REAL[1], 1)) / 2  # class loss on REAL data only
    g = (_softplus(-FAKE[0][3]) + _softplus(-FAKE[1][3])) / 2 + 1.5 * (cls(FAKE[0], 2) + cls(FAKE[1], 0)) / 2
    loss = LOSSES["gmgan_sep"]
    assert loss.d(real, fake, y_real, y_fake, class_weight=1.5).item() == pytest.approx(d, rel=1e-6)
    assert loss.g(fake, y_fake, class_weight=1.5).item() == pytest.approx(g, rel=1e-6)
    # the class term on fake data must not enter D's loss: changing the fake class logits leaves it unchanged
    fake2 = fake.clone()
    fake2[:, :3] += torch.tensor([5.0, -3.0, 1.0])
    assert loss.d(real, fake2, y_real, y_fake, class_weight=1.5).item() == pytest.approx(d, rel=1e-6)


def test_bigan_generator_encoder_loss_is_the_inverted_label_objective():
    real, fake = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0])
    # -E[log D(G(z), z)] - E[log(1 - D(x, E(x)))]
    expected = (_softplus(-2.0) + _softplus(0.0)) / 2 + (_softplus(0.5) + _softplus(-1.0)) / 2
    assert LOSSES["bigan"].g(fake, real).item() == pytest.approx(expected, rel=1e-6)
    assert LOSSES["bigan"].d(real, fake).item() == pytest.approx(LOSSES["ns"].d(real, fake).item(), rel=1e-7)


# --- spectral norm and self-attention ---------------------------------------------------------------------


def test_spectral_norm_gives_unit_top_singular_value():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    with torch.no_grad():
        linear.weight.mul_(5.0)  # top singular value well above 1
    layer = sn(linear)
    raw = layer.parametrizations.weight.original.detach().clone()
    assert torch.linalg.svdvals(raw)[0].item() > 1.5  # the constraint is not vacuous
    x = torch.randn(8, 64)
    for _ in range(30):  # one power iteration per training-mode forward
        layer(x)
    top = torch.linalg.svdvals(layer.weight.detach())[0].item()
    assert top == pytest.approx(1.0, abs=1e-3)
    # and the normalised weight is the raw weight divided by its exact top singular value
    torch.testing.assert_close(layer.weight.detach(), raw / torch.linalg.svdvals(raw)[0], rtol=1e-3, atol=1e-5)


def test_self_attention_with_zero_gamma_is_the_identity_and_not_otherwise():
    torch.manual_seed(0)
    block = SelfAttention2d(16)
    x = torch.randn(3, 16, 4, 4)
    assert block.gamma.item() == 0.0
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    block.eval()
    out = block(x)
    assert not torch.allclose(out, x)
    # independent reference: the paper's formula written out per position
    q, k, v = block.query(x).flatten(2), block.key(x).flatten(2), block.value(x).flatten(2)  # (B, C', N)
    ref = torch.empty_like(v)
    for b in range(3):
        for j in range(16):
            weights = torch.softmax(torch.stack([q[b, :, j] @ k[b, :, i] for i in range(16)]), 0)
            ref[b, :, j] = sum(weights[i] * v[b, :, i] for i in range(16))
    torch.testing.assert_close(out, x + 0.5 * ref.view_as(x), rtol=1e-5, atol=1e-5)


def test_sagan_discriminator_has_spectral_norm_on_every_layer():
    d = build_net("discriminator", NetConfig(arch="sagan_mlp"), image_shape=(1, 28, 28))
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert len(layers) == 4 + 3  # 4 linear + query/key/value
    assert all(hasattr(m, "parametrizations") for m in layers)
    assert d(torch.zeros(5, 1, 28, 28)).shape == (5,)


# --- priors ---------------------------------------------------------------------------------------------


def test_static_mixture_samples_have_the_configured_means_and_sigma():
    prior = StaticMixturePrior(nz=20, num_components=5, sigma=0.3, c=2.0, seed=0)
    assert prior.mu.shape == (5, 20) and prior.mu.abs().max() <= 2.0 and prior.mu.abs().max() > 1.5
    gen = torch.Generator().manual_seed(1)
    n = 50_000
    k = prior.sample_components(n, gen, CPU)
    z = prior(torch.randn(n, 20, generator=gen), k)
    counts = torch.bincount(k, minlength=5).double() / n
    torch.testing.assert_close(counts, torch.full((5,), 0.2, dtype=torch.float64), atol=0.01, rtol=0)
    for j in range(5):
        zj = z[k == j]
        torch.testing.assert_close(zj.mean(0), prior.mu[j], atol=0.02, rtol=0)  # ~5 standard errors
        torch.testing.assert_close(zj.std(0), torch.full((20,), 0.3), atol=0.01, rtol=0)


def test_supervised_mixture_starts_at_its_initial_values_and_learns():
    prior = SupervisedMixturePrior(nz=8, num_classes=10, sigma=1.4, c=3.0, seed=0)
    assert torch.equal(prior.sigma.weight, torch.full((8, 10), 1.4))
    assert prior.mu.weight.abs().max() <= 3.0 and prior.mu.weight.min() < -2.0 and prior.mu.weight.max() > 2.0
    eps = torch.randn(4, 8)
    k = torch.tensor([0, 3, 3, 9])
    torch.testing.assert_close(prior(eps, k), prior.mu.weight.T[k] + 1.4 * eps)
    assert torch.equal(prior.labels(k), k)  # supervised: the component is the class
    assert sum(p.numel() for p in prior.parameters()) == 2 * 8 * 10  # learnable μ and σ, no bias


def test_uniform_prior_is_uniform_on_the_cube():
    prior = build_prior("uniform", nz=4, num_classes=0, seed=0)
    z = prior(torch.randn(200_000, 4, generator=torch.Generator().manual_seed(0)))
    assert z.min() > -1 and z.max() < 1
    torch.testing.assert_close(z.mean(0), torch.zeros(4), atol=0.01, rtol=0)
    torch.testing.assert_close(z.var(0), torch.full((4,), 1 / 3), atol=0.005, rtol=0)  # Var U[-1, 1] = 1/3


def test_mixture_samples_are_batch_size_invariant_and_components_come_from_seeds(tmp_path):
    cfg = ExperimentConfig.model_validate({
        "generator": {"arch": "mlp", "nz": 8, "hidden": [16]},
        "discriminator": {"arch": "mlp", "hidden": [16], "head": "classes_and_fake"},
        "loss": "gmgan_ce", "prior": "supervised_mixture", "sigma": 1.7, "c": 3.0, "lr_prior": 1.0e-3,
        "optimizer": {"lr_g": 1.0e-3, "lr_d": 1.0e-3}, "batch_size": 8, "num_epochs": {"quick": 1, "paper": 1},
        "grid_size": 4,
    })
    rng = np.random.default_rng(0)
    state = train_gan(cfg, rng.integers(0, 256, (32, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 32),
                      num_epochs=1, device=CPU, checkpoint_path=tmp_path / "c.pt", num_classes=10)
    sampler = load_sampler(state, CPU)
    torch.testing.assert_close(sampler.prior.mu.weight, state["prior"]["mu.weight"])  # the learned mixture
    seeds = evaluation_seeds(40, 2)
    # the generator's input (component from the seed, latent from the seed, mixture map) is bit-identical at
    # any batch size ...
    latent = lambda s: sampler.prior(seeded_normal(s, (8,), CPU), sampler.components_for(s, CPU))  # noqa: E731
    one_by_one = torch.cat([latent(seeds[i : i + 1].tolist()) for i in range(40)])
    assert torch.equal(one_by_one, latent(seeds.tolist()))
    # ... and so are the images: `generate` runs fixed-size blocks, so a seed's image does not depend on the
    # other seeds requested with it
    many = generate(sampler, seeds, device=CPU)
    one_by_one = np.concatenate([generate(sampler, seeds[i : i + 1], device=CPU) for i in range(40)])
    np.testing.assert_array_equal(one_by_one, many)
    k = sampler.components_for(seeds, CPU)
    assert torch.equal(k, sampler.components_for(seeds[::-1].copy(), CPU).flip(0))  # per seed, not per position
    assert len(torch.unique(k)) > 5  # spread over the classes
    with pytest.raises(ValueError, match="component index"):
        sampler(torch.zeros(2, 8))


# --- conditioning and the DCGAN canvas --------------------------------------------------------------------


@pytest.mark.parametrize("embedding", [None, 3])
def test_conditional_generator_output_depends_on_its_label(embedding):
    torch.manual_seed(0)
    g = build_net("generator", NetConfig(arch="dcgan", nz=16, ngf=8, init="default", conditional=True, label_embedding=embedding),
                  image_shape=(1, 28, 28), num_classes=10).eval()
    z = torch.randn(1, 16).expand(10, 16)
    out = g(z, torch.arange(10))
    assert out.shape == (10, 1, 28, 28)
    diffs = (out[1:] - out[:1]).abs().flatten(1).max(1).values
    assert (diffs > 0.01 * out.abs().max()).all()  # every label changes the image
    torch.testing.assert_close(g(z[:2], torch.tensor([4, 4])), out[[4, 4]])  # same label, same z: same image


def test_unconditioned_discriminator_ignores_the_label_and_conditioned_one_does_not():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 28, 28)
    d_no = build_net("discriminator", NetConfig(arch="dcgan", ndf=8), image_shape=(1, 28, 28), num_classes=10).eval()
    d_y = build_net("discriminator", NetConfig(arch="dcgan", ndf=8, conditional=True), image_shape=(1, 28, 28),
                    num_classes=10).eval()
    assert torch.equal(d_no(x, torch.zeros(4, dtype=torch.long)), d_no(x, torch.full((4,), 7)))
    assert not torch.allclose(d_y(x, torch.zeros(4, dtype=torch.long)), d_y(x, torch.full((4,), 7)))


def test_canvas_padding_is_background_and_cropping_inverts_it():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    padded = pad_to_canvas(x, 32)
    assert padded.shape == (2, 1, 32, 32)
    assert torch.equal(crop_from_canvas(padded, 28, 28), x)
    border = padded.clone()
    border[..., 2:30, 2:30] = -1.0
    assert torch.equal(border, torch.full_like(padded, -1.0))  # everything outside the image is black


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_dcgan_shapes_and_init(shape):
    torch.manual_seed(0)
    g = build_net("generator", NetConfig(arch="dcgan", nz=10, ngf=8), image_shape=shape)
    d = build_net("discriminator", NetConfig(arch="dcgan", ndf=8), image_shape=shape)
    e = build_net("encoder", NetConfig(arch="dcgan", nz=10, nef=8), image_shape=shape)
    x = g(torch.randn(3, 10))
    assert x.shape == (3, *shape) and x.abs().max() <= 1
    assert d(x).shape == (3,) and e(x).shape == (3, 10)
    n_convT = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert n_convT == {28: 4, 32: 4, 64: 5}[shape[1]]  # report 002: 5 transposed convolutions at 64×64
    conv_w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    bn_w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert conv_w.mean().item() == pytest.approx(0.0, abs=2e-3) and conv_w.std().item() == pytest.approx(0.02, rel=0.05)
    assert bn_w.mean().item() == pytest.approx(1.0, abs=0.01) and bn_w.std().item() == pytest.approx(0.02, rel=0.3)


def test_recipe_mismatches_are_config_errors():
    base = {"generator": {"arch": "mlp"}, "discriminator": {"arch": "mlp"}, "optimizer": {"lr_g": 1.0e-4, "lr_d": 1.0e-4},
            "num_epochs": {"quick": 1, "paper": 1}}
    cases = [
        ({"loss": "gmgan_ce", "prior": "supervised_mixture", "sigma": 1.0, "c": 1.0, "lr_prior": 1.0e-9},
         "discriminator.head: loss 'gmgan_ce' needs head 'classes_and_fake'"),
        ({"prior": "static_mixture", "sigma": 1.0, "c": 1.0}, "num_components: required by prior 'static_mixture'"),
        ({"sigma": 1.4}, "sigma: not used by prior 'normal'"),
        ({"prior": "gauss"}, "prior: unknown prior 'gauss'"),
        ({"loss": "bigan"}, "encoder: loss 'bigan' needs an encoder"),
        ({"class_loss_weight": 1.5}, "class_loss_weight: only used by loss 'gmgan_sep'"),
    ]
    for extra, message in cases:
        # ganlab.recipe checks the names against the registries (ConfigError is a ValueError)
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            check_recipe(ExperimentConfig.model_validate({**base, **extra}), "x")

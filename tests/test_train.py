"""The training loop and the losses: hand-computed values, constraints, resume, divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganlab import checkpoint as ckpt_io
from ganlab.config import ConfigError, ExperimentConfig
from ganlab.losses import LOSSES, Loss, gradient_penalty
from ganlab.runtime import DivergedError
from ganlab.modules import build_modules
from ganlab.train import channels_last_, train_gan




def build_gan(cfg, image_shape, num_classes, device):
    parts = build_modules(cfg, image_shape, num_classes, device)
    return parts.generator, parts.discriminator

CPU = torch.device("cpu")


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def small_config(**overrides) -> ExperimentConfig:
    cfg = {
        "generator": {"arch": "mlp", "nz": 8, "hidden": [16, 32]},
        "discriminator": {"arch": "mlp", "hidden": [32, 16], "dropout": 0.3},
        "loss": "ns",
        "optimizer": {"name": "adam", "lr_g": 1.0e-3, "lr_d": 1.0e-3},
        "batch_size": 8,
        "num_epochs": {"quick": 2, "paper": 2},
        "grid_size": 4,
    }
    cfg.update(overrides)
    return ExperimentConfig.model_validate(cfg)


@pytest.fixture
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(64, 28, 28, 1), dtype=np.uint8)


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_losses_on_a_fixed_batch_match_hand_computation():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 1.0])
    ns_d = (_softplus(-0.0) + _softplus(-2.0)) / 2 + (_softplus(-1.0) + _softplus(1.0)) / 2
    assert LOSSES["ns"].d(real, fake).item() == pytest.approx(ns_d, rel=1e-6)
    assert LOSSES["ns"].g(fake).item() == pytest.approx((_softplus(1.0) + _softplus(-1.0)) / 2, rel=1e-6)
    # hinge: mean(relu(1 - [0, 2])) + mean(relu(1 + [-1, 1])) = 0.5 + 1.0
    assert LOSSES["hinge"].d(real, fake).item() == pytest.approx(1.5, rel=1e-6)
    assert LOSSES["hinge"].g(fake).item() == pytest.approx(0.0, abs=1e-7)
    # wasserstein critic: E[D(fake)] - E[D(real)] = 0 - 1
    assert LOSSES["wasserstein"].d(real, fake).item() == pytest.approx(-1.0, rel=1e-6)


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    # D(x) = <w, x>: the gradient is w everywhere, so the penalty is (||w|| - 1)^2 exactly.
    w = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 1, 2, 2)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    penalty = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx((5.0 - 1.0) ** 2, rel=1e-6)


def test_gradient_penalty_matches_independent_autograd():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    critic = lambda x: net(x).squeeze(1)  # noqa: E731
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    penalty = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(3))
    alpha = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(3))
    expected = []
    for i in range(5):  # one sample at a time, gradient by torch.autograd.functional
        x_hat = real[i : i + 1] + alpha[i] * (fake[i : i + 1] - real[i : i + 1])
        grad = torch.autograd.functional.jacobian(lambda x: critic(x).sum(), x_hat)
        expected.append((grad.norm() - 1) ** 2)
    assert penalty.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


def test_one_step_changes_both_networks(images, tmp_path):
    cfg = small_config()
    torch.manual_seed(cfg.seed)
    g0, d0 = build_gan(cfg, (1, 28, 28), 0, CPU)
    before_g, before_d = _params(g0), _params(d0)
    torch.manual_seed(cfg.seed)
    state = train_gan(cfg, images, np.zeros(64), num_epochs=1, device=CPU, checkpoint_path=tmp_path / "c.pt",
                      max_batches_per_epoch=1)
    for before, after in ((before_g, state["generator"]), (before_d, state["discriminator"])):
        assert set(before) == set(after)
        assert all(torch.equal(before[k], after[k]) is False for k in before if k.endswith("weight"))


def test_weight_clipping_keeps_every_critic_parameter_in_range(images, tmp_path):
    cfg = small_config(loss="wasserstein", clip_value=0.01, n_critic=5,
                       optimizer={"name": "rmsprop", "lr_g": 5.0e-5, "lr_d": 5.0e-5})
    state = train_gan(cfg, images, np.zeros(64), num_epochs=1, device=CPU, checkpoint_path=tmp_path / "c.pt")
    values = torch.cat([v.flatten() for v in state["discriminator"].values()])
    assert values.abs().max().item() <= 0.01 + 1e-9
    assert values.abs().max().item() == pytest.approx(0.01)  # the constraint is active, not vacuous


DCGAN_SMALL = dict(generator={"arch": "dcgan", "nz": 8, "ngf": 8}, discriminator={"arch": "dcgan", "ndf": 8})


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("overrides", [{}, DCGAN_SMALL], ids=["mlp", "dcgan-channels-last"])
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(images, tmp_path, overrides, precision):
    cfg = small_config(**overrides).model_copy(update={"precision": precision})
    torch.manual_seed(0)
    full = train_gan(cfg, images, np.zeros(64), num_epochs=2, device=CPU, checkpoint_path=tmp_path / "full.pt")
    torch.manual_seed(0)
    train_gan(cfg, images, np.zeros(64), num_epochs=1, device=CPU, checkpoint_path=tmp_path / "part.pt")
    torch.manual_seed(123)  # the resumed process starts with another global RNG state: the checkpoint restores it
    resumed = train_gan(cfg, images, np.zeros(64), num_epochs=2, device=CPU, checkpoint_path=tmp_path / "part.pt")
    assert resumed["epoch"] == full["epoch"] == 2
    for part in ("generator", "discriminator"):
        for k in full[part]:
            assert torch.equal(full[part][k], resumed[part][k]), f"{part}.{k} differs after resume"


def test_resume_in_another_precision_is_refused_by_name(images, tmp_path):
    fp32 = small_config().model_copy(update={"precision": "fp32"})
    train_gan(fp32, images, np.zeros(64), num_epochs=1, device=CPU, checkpoint_path=tmp_path / "c.pt")
    with pytest.raises(ConfigError, match=r"precision: saved 'fp32', now 'bf16'"):
        train_gan(fp32.model_copy(update={"precision": "bf16"}), images, np.zeros(64), num_epochs=2, device=CPU,
                  checkpoint_path=tmp_path / "c.pt")
    train_gan(fp32, images, np.zeros(64), num_epochs=2, device=CPU, checkpoint_path=tmp_path / "c.pt")  # same: resumes


@pytest.mark.parametrize("overrides", [{}, DCGAN_SMALL, {"loss": "wasserstein", "gp_weight": 10.0, "n_critic": 2}],
                         ids=["mlp", "dcgan", "wgan-gp"])
def test_bf16_autocast_trains_other_numbers_on_float32_state(images, tmp_path, overrides):
    runs = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        cfg = small_config(**overrides).model_copy(update={"precision": precision})
        runs[precision] = train_gan(cfg, images, np.zeros(64), num_epochs=1, device=CPU,
                                    checkpoint_path=tmp_path / f"{precision}.pt")
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert bf16["config"]["precision"] == "bf16" and fp32["config"]["precision"] == "fp32"
    # master weights and optimiser states stay float32; the losses are finite float32 numbers
    for state in (bf16["generator"], bf16["discriminator"]):
        assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
    assert all(s["exp_avg"].dtype == torch.float32 for s in bf16["opt_d"]["state"].values())
    assert all(math.isfinite(h["loss_d"]) and math.isfinite(h["loss_g"]) for h in bf16["history"])
    # ... but the arithmetic is not float32's: same seed, other weights, losses within a few percent
    assert any(not torch.equal(fp32["generator"][k], bf16["generator"][k]) for k in fp32["generator"])
    assert bf16["history"][0]["loss_d"] == pytest.approx(fp32["history"][0]["loss_d"], rel=0.1)


def test_channels_last_changes_the_layout_of_conv_gans_only():
    torch.manual_seed(0)
    mlp = build_gan(small_config(), (1, 28, 28), 0, CPU)
    conv = build_gan(small_config(**DCGAN_SMALL), (3, 32, 32), 0, CPU)
    data = torch.randn(4, 3, 32, 32)
    before = [_params(m) for m in conv]
    out = channels_last_(list(conv), data)
    assert torch.equal(out, data) and out.stride() != data.stride()  # same values, NHWC strides
    weights = [p for m in conv for p in m.parameters() if p.ndim == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    assert all(torch.equal(b[k], v) for b, m in zip(before, conv) for k, v in m.state_dict().items())
    assert channels_last_(list(mlp), data) is data  # no convolution: nothing moved
    assert channels_last_(list(conv), data.to(torch.uint8)).is_contiguous()  # uint8: converted per batch


def test_resume_with_a_changed_config_is_refused(images, tmp_path):
    path = tmp_path / "c.pt"
    train_gan(small_config(), images, np.zeros(64), num_epochs=1, device=CPU, checkpoint_path=path)
    changed = small_config(optimizer={"name": "adam", "lr_g": 2.0e-3, "lr_d": 1.0e-3})
    with pytest.raises(ConfigError, match=r"optimizer.lr_g: saved 0.001, now 0.002"):
        train_gan(changed, images, np.zeros(64), num_epochs=2, device=CPU, checkpoint_path=path)
    assert ckpt_io.load(path)["epoch"] == 1  # untouched


def test_divergence_stops_and_keeps_the_last_good_checkpoint(images, tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    train_gan(small_config(), images, np.zeros(64), num_epochs=1, device=CPU, checkpoint_path=path)
    good = path.read_bytes()
    nan_loss = Loss(d=lambda r, f: (r.mean() + f.mean()) * float("nan"), g=LOSSES["ns"].g, logit_is_log_ratio=True)
    monkeypatch.setitem(LOSSES, "ns", nan_loss)
    with pytest.raises(DivergedError, match="discriminator loss is nan at epoch 2, step 1"):
        train_gan(small_config(), images, np.zeros(64), num_epochs=2, device=CPU, checkpoint_path=path)
    assert path.read_bytes() == good


def test_batch_size_larger_than_the_dataset_is_a_config_error(images, tmp_path):
    with pytest.raises(ConfigError, match="batch_size: 128 is larger than the dataset"):
        train_gan(small_config(batch_size=128), images, np.zeros(64), num_epochs=1, device=CPU,
                  checkpoint_path=tmp_path / "c.pt")


def test_checkpoint_loads_with_weights_only_and_describes_itself(images, tmp_path):
    path = tmp_path / "c.pt"
    train_gan(small_config(), images, np.zeros(64), num_epochs=1, device=CPU, checkpoint_path=path)
    state = torch.load(path, weights_only=True)
    assert {"generator", "discriminator", "opt_g", "opt_d", "epoch", "config", "rng", "history"} <= set(state)
    assert ExperimentConfig.model_validate(state["config"]) == small_config()

"""BiGAN reconstructions and class interpolations (ganlab.visuals), against independent computations, and the
stages that draw them (probe --recon, interpolate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab import checkpoint as ckpt_io
from ganlab.config import ExperimentConfig
from ganlab.data.arrays import to_model, to_uint8
from ganlab.nets.dcgan import crop_from_canvas
from ganlab.images import grid
from ganlab.modules import GANModules, build_modules, load_modules
from ganlab.train import train_gan
from ganlab.visuals import check_interpolable, class_interpolation, cyclic_pairs, label_vector_of, reconstructions
from repo_copy import run_stage, stage_env, tiny_params, write_params, write_tiny_dataset

CPU = torch.device("cpu")
MNIST, AFHQ = (1, 28, 28), (3, 64, 64)  # (C, H, W)


def _images(n: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    c, h, w = shape
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _calibrate_batchnorm(net: torch.nn.Module, *inputs) -> None:
    """Running statistics = the statistics of one train-mode batch (not the (0, 1) of a fresh layer), so that
    eval and train mode give different images and the outputs span the tanh range."""
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics exactly
    net.train()
    with torch.no_grad():
        net(*inputs)
    net.eval()


# ---------------------------------------------------------------------------------------------------
# BiGAN reconstructions


def _bigan() -> GANModules:
    cfg = ExperimentConfig.model_validate({
        "generator": {"arch": "mlp", "nz": 8, "hidden": [32], "batch_norm": True},
        "discriminator": {"arch": "bigan_mlp", "nz": 8, "hidden": [32], "dropout": 0.2},
        "encoder": {"arch": "mlp", "nz": 8, "hidden": [32], "batch_norm": True},
        "prior": "uniform", "loss": "bigan",
        "optimizer": {"name": "adam", "lr_g": 2.0e-4, "lr_d": 2.0e-4},
        "num_epochs": {"quick": 1, "paper": 1},
    })
    torch.manual_seed(0)
    parts = build_modules(cfg, MNIST, 10, CPU)
    _calibrate_batchnorm(parts.encoder, to_model(_images(64, MNIST, seed=1)))
    _calibrate_batchnorm(parts.generator, torch.rand(64, 8) * 2 - 1)
    return parts


def _reference_reconstruction(encoder, generator, images: np.ndarray) -> np.ndarray:
    # written out: uint8 -> [-1, 1] NCHW -> E -> G -> round((y + 1) * 127.5) NHWC, both nets in eval mode
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        y = generator(encoder(x))
    return ((y + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_reconstruction_rows_are_the_images_then_g_of_e_of_them():
    parts = _bigan()
    images = _images(16, MNIST, seed=2)
    parts.encoder.train(), parts.generator.train()  # the function must switch to eval itself
    out = reconstructions(parts.encoder, parts.generator, images, CPU, per_row=4)
    assert out.shape == (32, 28, 28, 1) and out.dtype == np.uint8
    assert not parts.encoder.training and not parts.generator.training
    rows = out.reshape(4, 2, 4, 28, 28, 1)  # (grid row pair, real | recon, column, H, W, C)
    np.testing.assert_array_equal(rows[:, 0].reshape(16, 28, 28, 1), images)  # reals unchanged, in order
    expected = _reference_reconstruction(parts.encoder, parts.generator, images)
    np.testing.assert_array_equal(rows[:, 1].reshape(16, 28, 28, 1), expected)
    assert len(np.unique(expected)) > 50  # not a flat image: the comparison means something

    # the other side: train-mode BatchNorm, or the prior's transform applied to E(x), would give other images
    parts.encoder.train(), parts.generator.train()
    with torch.no_grad():
        train_mode = to_uint8(parts.generator(parts.encoder(to_model(images)))).numpy()
    parts.encoder.eval(), parts.generator.eval()
    with torch.no_grad():
        through_prior = to_uint8(parts.sampler()(parts.encoder(to_model(images)))).numpy()  # G(erf(E(x)/√2))
    assert np.abs(train_mode.astype(int) - expected).max() > 10
    assert np.abs(through_prior.astype(int) - expected).max() > 10


def test_reconstructions_are_deterministic_and_a_short_last_row_is_padded_black():
    parts = _bigan()
    images = _images(5, MNIST, seed=3)
    out = reconstructions(parts.encoder, parts.generator, images, CPU, per_row=4)
    assert out.shape == (16, 28, 28, 1)
    np.testing.assert_array_equal(out[:4], images[:4])
    np.testing.assert_array_equal(out[8:9], images[4:])
    assert not out[9:12].any() and not out[13:16].any()  # padding after the 5th real and the 5th recon
    expected = _reference_reconstruction(parts.encoder, parts.generator, images)
    assert np.abs(out[[4, 5, 6, 7, 12]].astype(int) - expected).max() <= 1  # batch 5 vs 5: normally exact
    np.testing.assert_array_equal(out, reconstructions(parts.encoder, parts.generator, images, CPU, per_row=4))
    with pytest.raises(ValueError, match="at least one image"):
        reconstructions(parts.encoder, parts.generator, images[:0], CPU)


# ---------------------------------------------------------------------------------------------------
# Class interpolation


def _conditional(image_shape: tuple[int, int, int], num_classes: int, embedding: int | None, prior="class_normal",
                 conditional: bool = True) -> GANModules:
    """A tiny cDCGAN (one-hot, embedding None) or cWGAN-style (learned `embedding`-d label) generator."""
    extra = {"sigma": 1.0, "c": 1.0, "lr_prior": 1.0e-4} if prior == "supervised_mixture" else {}
    label = {"conditional": conditional, **({"label_embedding": embedding} if embedding else {})}
    cfg = ExperimentConfig.model_validate({
        "generator": {"arch": "dcgan", "nz": 8, "ngf": 4, "init": "default", **label},  # larger outputs than N(0, .02)
        "discriminator": {"arch": "dcgan", "ndf": 4, **label},
        "prior": prior, **extra, "loss": "ns",
        "optimizer": {"name": "adam", "lr_g": 2.0e-4, "lr_d": 2.0e-4},
        "num_epochs": {"quick": 1, "paper": 1},
    })
    torch.manual_seed(0)
    parts = build_modules(cfg, image_shape, num_classes, CPU)
    if conditional:
        with torch.no_grad():  # spread the 3-d embedding (N(0, 1) init) like a trained one; one-hot is fixed
            for m in parts.generator.modules():
                if isinstance(m, torch.nn.Embedding):
                    m.weight.mul_(3.0)
    k = torch.arange(64) % num_classes
    _calibrate_batchnorm(parts.generator, parts.prior(torch.randn(64, 8), k), k)
    return parts


def _latent(seed: int, row: int, nz: int) -> torch.Tensor:
    # the documented convention, written out: evaluation seed `seed` -> sample `row` -> torch.randn of seed·10⁶ + row
    return torch.randn(nz, generator=torch.Generator().manual_seed(seed * 1_000_000 + row))


def _dcgan_forward_with_vector(net, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # DCGANGenerator.forward written out with a conditioning vector in place of label(y): cat, convT stack, crop
    out = net.net(torch.cat([z, v], dim=1)[:, :, None, None])
    return crop_from_canvas(out, *net.image_shape[1:])


CASES = {"cdcgan_one_hot": (MNIST, 10, None), "cwgan_embedding_3d": (AFHQ, 3, 3)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_interpolation_endpoints_are_the_class_samples_and_the_middle_is_neither(case):
    image_shape, num_classes, embedding = CASES[case]
    parts = _conditional(image_shape, num_classes, embedding)
    sampler, net, steps, seed = parts.sampler(), parts.generator, 5, 4
    label = label_vector_of(net)
    assert label is not None and label.dim == (embedding or num_classes)
    out = class_interpolation(sampler, steps=steps, seed=seed, device=CPU)
    c, h, w = image_shape
    pairs = cyclic_pairs(num_classes)
    assert out.shape == (len(pairs) * steps, h, w, c) and out.dtype == np.uint8
    grid = out.reshape(len(pairs), steps, h, w, c).astype(int)

    eps = torch.stack([_latent(seed, r, 8) for r in range(len(pairs))])  # (R, nz)
    k_a, k_b = torch.tensor([a for a, _ in pairs]), torch.tensor([b for _, b in pairs])
    with torch.no_grad():
        at_a, at_b = to_uint8(sampler(eps, k_a)).numpy(), to_uint8(sampler(eps, k_b)).numpy()  # integer labels
        v_a, v_b = label(k_a), label(k_b)
        middle = to_uint8(_dcgan_forward_with_vector(net, eps, 0.5 * v_a + 0.5 * v_b)).numpy()
    # endpoints: G(z, a) and G(z, b) for the integer labels (batch R·S vs R: at most one level of rounding)
    assert np.abs(grid[:, 0] - at_a).max() <= 1 and np.mean(grid[:, 0] == at_a) > 0.99
    assert np.abs(grid[:, -1] - at_b).max() <= 1 and np.mean(grid[:, -1] == at_b) > 0.99
    # the middle column is G(z, (v(a) + v(b)) / 2), computed with the layers called by hand...
    assert np.abs(grid[:, steps // 2] - middle).max() <= 1
    # ...and is neither class's sample, in every row
    for r in range(len(pairs)):
        assert np.abs(grid[r, steps // 2] - at_a[r]).max() > 5
        assert np.abs(grid[r, steps // 2] - at_b[r]).max() > 5
    assert not label._forward_hooks  # the hook is gone: the generator is as it was


def test_interpolation_is_a_function_of_the_seed():
    sampler = _conditional(MNIST, 10, None).sampler()
    one = class_interpolation(sampler, steps=4, seed=0, device=CPU)
    np.testing.assert_array_equal(one, class_interpolation(sampler, steps=4, seed=0, device=CPU))
    assert not np.array_equal(one, class_interpolation(sampler, steps=4, seed=1, device=CPU))
    picked = class_interpolation(sampler, steps=4, seed=0, device=CPU, pairs=[(3, 7)])
    assert picked.shape == (4, 28, 28, 1)


def test_interpolation_refuses_what_it_cannot_interpolate():
    with pytest.raises(ValueError, match="not class-conditional"):
        class_interpolation(_conditional(MNIST, 10, None, conditional=False).sampler(), seed=0, device=CPU)
    with pytest.raises(ValueError, match="depends on the class"):  # z = μ(y) + σ(y)ε: moving the label is not enough
        check_interpolable(_conditional(MNIST, 10, None, prior="supervised_mixture").sampler())
    sampler = _conditional(MNIST, 10, None).sampler()
    with pytest.raises(ValueError, match="at least 2"):
        class_interpolation(sampler, steps=1, seed=0, device=CPU)
    with pytest.raises(ValueError, match=r"\(3, 10\) is outside"):
        class_interpolation(sampler, seed=0, device=CPU, pairs=[(3, 10)])


# ---------------------------------------------------------------------------------------------------
# The stages


def _workspace(tmp_path, **section):
    """params.yaml with one tiny experiment `tiny` (as tests/repo_copy.py) and its 1-batch checkpoint."""
    params = tiny_params(**section)
    # only `tiny`'s experiment section (no other recipe, no sweep point)
    params = {k: v for k, v in params.items()
              if k == "tiny" or not (isinstance(v, dict) and ("generator" in v or "sweep_of" in v))}
    write_params(tmp_path / "params.yaml", params)
    data = write_tiny_dataset(tmp_path / "prepared.npz", n_train=64, n_test=32)
    cfg = ExperimentConfig.model_validate(params["tiny"])
    with np.load(data) as f:
        x, y = f["x_train"], f["y_train"]
    torch.manual_seed(0)
    train_gan(cfg, x, y, num_epochs=1, device=CPU, checkpoint_path=tmp_path / "c.pt", num_classes=10,
              max_batches_per_epoch=1)
    return tmp_path / "params.yaml", data, tmp_path / "c.pt"


def _interpolate_args(params, checkpoint, out):
    return ["--params", str(params), "--experiment", "tiny", "--checkpoint", str(checkpoint), "--out", str(out)]


def test_interpolate_stage_refuses_an_unconditional_checkpoint(tmp_path):
    params, _, checkpoint = _workspace(tmp_path)  # tiny: an MLP GAN, no labels
    out = tmp_path / "grids" / "tiny-interp.png"
    proc = run_stage("interpolate", _interpolate_args(params, checkpoint, out), tmp_path, stage_env(tmp_path))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "interpolate@tiny" in lines[0] and "not class-conditional" in lines[0]
    assert not out.exists()


def test_interpolate_stage_draws_one_row_per_class_pair(tmp_path):
    params, _, checkpoint = _workspace(
        tmp_path, generator={"arch": "dcgan", "nz": 8, "ngf": 4, "conditional": True},
        discriminator={"arch": "dcgan", "ndf": 4, "conditional": True}, prior="class_normal")
    out = tmp_path / "grids" / "tiny-interp.png"
    proc = run_stage("interpolate", _interpolate_args(params, checkpoint, out), tmp_path, stage_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    side = (10 * (28 + 2) + 2) * 2  # 10 class pairs x 10 steps of 28 px, 2 px padding, shown at 2x
    assert Image.open(out).size == (side, side)


def test_probe_stage_writes_the_reconstruction_grid(tmp_path):
    params, data, checkpoint = _workspace(
        tmp_path, generator={"arch": "mlp", "nz": 8, "hidden": [32], "batch_norm": True},
        discriminator={"arch": "bigan_mlp", "nz": 8, "hidden": [32], "dropout": 0.2},
        encoder={"arch": "mlp", "nz": 8, "hidden": [32], "batch_norm": True}, prior="uniform", loss="bigan",
        probe={"train_size": {"quick": 64, "paper": 64}, "nearest_neighbour": True, "seed": 0})
    recon = tmp_path / "grids" / "tiny-recon.png"
    args = ["--params", str(params), "--experiment", "tiny", "--checkpoint", str(checkpoint), "--data", str(data),
            "--out", str(tmp_path / "probe.json"), "--recon", str(recon)]
    proc = run_stage("probe", args, tmp_path, stage_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    png = np.asarray(Image.open(recon))[::2, ::2]  # shown at 2x: every second pixel is the mosaic
    width = 8 * (28 + 2) + 2
    assert png.shape == (8 * (28 + 2) + 2, width)  # 32 test images: 4 rows of reals + 4 of reconstructions
    with np.load(data) as f:
        x_test = f["x_test"]
    np.testing.assert_array_equal(png[2:30, 2:30], x_test[0, :, :, 0])  # top-left: the first test image, exactly
    parts = load_modules(ckpt_io.load(checkpoint), CPU)  # the same grid, computed in this process
    expected = reconstructions(parts.encoder, parts.generator, x_test[:32], CPU, per_row=8)
    np.testing.assert_array_equal(png, grid(expected, nrow=8)[..., 0])

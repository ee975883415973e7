"""The one GAN training loop: every variant of the catalogue runs through `train_gan`.

What varies between recipes is configuration, not code: the loss (by name, `ganlab.losses`), D steps per
G step (`n_critic`), G steps per turn (`n_gen`), WGAN weight clipping (`clip_value`), the WGAN-GP penalty
(`gp_weight`), separate learning rates and the optimiser.

Resume: the checkpoint is written atomically at the end of every epoch with weights, optimiser states and
all RNG states; `train_gan` continues from it when its config matches, so an interrupted run that is
resumed ends with the same weights as an uninterrupted one (bit-identical on the CPU).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ganlab import checkpoint as ckpt_io
from ganlab.config import ConfigError, ExperimentConfig
from ganlab.data.arrays import to_model, to_uint8
from ganlab.losses import LOSSES, gradient_penalty
from ganlab.nets.registry import build_net
from ganlab.runtime import DivergedError

# Keys that may change between an interrupted run and its resumption: they cannot affect the saved state.
RESUMABLE_CHANGES = frozenset({"num_epochs", "grid_size"})


@dataclass
class EpochLog:
    epoch: int
    loss_d: float
    loss_g: float
    seconds: float
    grid_path: Path | None = None
    extra: dict[str, float] = field(default_factory=dict)


def build_gan(cfg: ExperimentConfig, image_shape: tuple[int, int, int], num_classes: int, device: torch.device):
    generator = build_net("generator", cfg.generator, image_shape=image_shape, num_classes=num_classes)
    discriminator = build_net("discriminator", cfg.discriminator, image_shape=image_shape, num_classes=num_classes)
    return generator.to(device), discriminator.to(device)


def build_optimizers(cfg: ExperimentConfig, generator: nn.Module, discriminator: nn.Module):
    opt = cfg.optimizer
    if opt.name == "adam":
        make = lambda params, lr: torch.optim.Adam(params, lr=lr, betas=opt.betas, foreach=True)  # noqa: E731
    else:  # rmsprop: WGAN (Arjovsky et al. 2017, Alg. 1)
        make = lambda params, lr: torch.optim.RMSprop(params, lr=lr, foreach=True)  # noqa: E731
    return make(generator.parameters(), opt.lr_g), make(discriminator.parameters(), opt.lr_d)


def config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys whose values differ between two config dicts, dotted (`optimizer.lr_g`)."""
    diffs = []
    for key in sorted(set(saved) | set(current)):
        name = f"{prefix}{key}"
        a, b = saved.get(key, "<missing>"), current.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, prefix=f"{name}.")
        elif a != b:
            diffs.append(f"{name}: saved {a!r}, now {b!r}")
    return diffs


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    state = {"train": gen.get_state(), "torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(gen: torch.Generator, state: dict[str, Any]) -> None:
    gen.set_state(state["train"])
    torch.set_rng_state(state["torch_cpu"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


def _all_finite(module: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


@torch.no_grad()
def sample_grid(generator: nn.Module, z: torch.Tensor) -> np.ndarray:
    was_training = generator.training
    generator.eval()
    images = to_uint8(generator(z)).cpu().numpy()
    generator.train(was_training)
    return images


def train_gan(
    cfg: ExperimentConfig,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_epochs: int,
    device: torch.device,
    checkpoint_path: Path,
    num_classes: int = 0,
    max_batches_per_epoch: int | None = None,
    on_epoch: Callable[[EpochLog, nn.Module], None] | None = None,
    save_grid: Callable[[np.ndarray, int], Path] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a GAN on uint8 `images` (N, H, W, C); returns the final checkpoint dict.

    The dataset stays uint8 on `device` and is converted per batch (no DataLoader: it fits in memory).
    Raises `ConfigError` if an incomplete checkpoint was made with a different config, `DivergedError` if a
    loss or weight becomes non-finite (the last good checkpoint is left in place)."""
    n = len(images)
    if cfg.batch_size > n:
        raise ConfigError(f"batch_size: {cfg.batch_size} is larger than the dataset ({n} images)")
    image_shape = (images.shape[3], images.shape[1], images.shape[2])
    data = torch.as_tensor(images).to(device)
    loss = LOSSES[cfg.loss]
    generator, discriminator = build_gan(cfg, image_shape, num_classes, device)
    opt_g, opt_d = build_optimizers(cfg, generator, discriminator)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    config = cfg.model_dump(mode="json")
    history: list[dict[str, float]] = []
    start_epoch = 0

    checkpoint_path = Path(checkpoint_path)
    if checkpoint_path.exists():
        saved = ckpt_io.load(checkpoint_path, map_location=device)
        diffs = [
            d for d in config_differences(saved["config"], config) if d.split(":")[0] not in RESUMABLE_CHANGES
        ]
        if saved["epoch"] < num_epochs and diffs:
            raise ConfigError(
                f"{checkpoint_path}: an interrupted run with a different config exists ({'; '.join(diffs)}); "
                f"delete {checkpoint_path} to start the new config from scratch"
            )
        if saved["epoch"] < num_epochs:
            generator.load_state_dict(saved["generator"])
            discriminator.load_state_dict(saved["discriminator"])
            opt_g.load_state_dict(saved["opt_g"])
            opt_d.load_state_dict(saved["opt_d"])
            _set_rng_state(gen, saved["rng"])
            history, start_epoch = list(saved["history"]), saved["epoch"]
            print(f"resuming {checkpoint_path} from epoch {start_epoch}/{num_epochs}")

    # Fixed latents for the per-epoch grid: the same images move across epochs.
    grid_gen = torch.Generator(device="cpu").manual_seed(10_000 + cfg.seed)
    grid_z = torch.randn(cfg.grid_size, generator.nz, generator=grid_gen).to(device)
    steps_per_epoch = n // cfg.batch_size
    if max_batches_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, max_batches_per_epoch)

    state: dict[str, Any] = {}
    for epoch in range(start_epoch, num_epochs):
        t0 = time.perf_counter()
        generator.train()
        discriminator.train()
        perm = torch.randperm(n, generator=gen, device=device)
        sum_d = sum_g = 0.0
        count_g = 0
        for step in range(steps_per_epoch):
            real = to_model(data[perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]])

            # (1) Update D: minimise loss.d(D(x), D(G(z))) [+ λ·GP]; detach: D's step must not backprop into G
            z = torch.randn(cfg.batch_size, generator.nz, generator=gen, device=device)
            with torch.no_grad():
                fake = generator(z)
            loss_d = loss.d(discriminator(real), discriminator(fake))
            if cfg.gp_weight > 0:
                loss_d = loss_d + cfg.gp_weight * gradient_penalty(discriminator, real, fake, gen)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            if cfg.clip_value is not None:
                for p in discriminator.parameters():
                    p.data.clamp_(-cfg.clip_value, cfg.clip_value)
            value_d = loss_d.item()
            if not np.isfinite(value_d):
                raise DivergedError(f"discriminator loss is {value_d} at epoch {epoch + 1}, step {step + 1}")
            sum_d += value_d

            # (2) Update G every n_critic D steps: minimise loss.g(D(G(z))); D's weights need no grads here
            if (step + 1) % cfg.n_critic:
                continue
            discriminator.requires_grad_(False)
            for _ in range(cfg.n_gen):
                z = torch.randn(cfg.batch_size, generator.nz, generator=gen, device=device)
                loss_g = loss.g(discriminator(generator(z)))
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                value_g = loss_g.item()
                if not np.isfinite(value_g):
                    raise DivergedError(f"generator loss is {value_g} at epoch {epoch + 1}, step {step + 1}")
                sum_g += value_g
                count_g += 1
            discriminator.requires_grad_(True)

        if not (_all_finite(generator) and _all_finite(discriminator)):
            raise DivergedError(f"non-finite weights after epoch {epoch + 1}")
        record = {
            "epoch": epoch + 1,
            "loss_d": sum_d / max(steps_per_epoch, 1),
            "loss_g": sum_g / max(count_g, 1),
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        state = {
            "generator": generator.state_dict(),
            "discriminator": discriminator.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "epoch": epoch + 1,
            "config": config,
            "image_shape": list(image_shape),
            "num_classes": num_classes,
            "rng": _rng_state(gen),
            "history": history,
        }
        ckpt_io.save_atomic(state, checkpoint_path)
        grid_path = save_grid(sample_grid(generator, grid_z), epoch + 1) if save_grid else None
        if on_epoch is not None:
            on_epoch(EpochLog(epoch + 1, record["loss_d"], record["loss_g"], record["seconds"], grid_path), generator)
    return state or ckpt_io.load(checkpoint_path, map_location="cpu")


def generator_from_checkpoint(state: dict[str, Any], device: torch.device) -> nn.Module:
    """Rebuild the generator of a checkpoint written by `train_gan`, in eval mode."""
    cfg = ExperimentConfig.model_validate(state["config"])
    generator = build_net(
        "generator", cfg.generator, image_shape=tuple(state["image_shape"]), num_classes=state["num_classes"]
    )
    generator.load_state_dict(state["generator"])
    return generator.to(device).eval()

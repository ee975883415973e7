"""The one GAN training loop: every variant of the catalogue runs through `train_gan`.

What varies between recipes is configuration, not code: the loss (by name, `ganlab.losses`), D steps per
G step (`n_critic`), G steps per turn (`n_gen`), WGAN weight clipping (`clip_value`), the WGAN-GP penalty
(`gp_weight`), separate learning rates and the optimiser, the latent prior (`ganlab.nets.priors`: standard normal,
uniform, class-labelled, static mixture, learnable supervised mixture with its own learning rate), conditional
inputs (real images carry their dataset label, fake ones the label their prior drew) and a BiGAN encoder
(D scores (x, E(x)) against (G(z), z); E is trained with G by `opt_g`).

One step, for every recipe (k: the prior's component per sample, y = prior.labels(k)):

    D: ε ~ N(0, I), k ~ U{0..K-1};  z = prior(ε, k);  x̃ = G(z, y)                 [no grad]
       minimise loss.d(D(x, y_x [, E(x)]), D(x̃, y [, z])) [+ λ·GP];  clip D's weights if `clip_value`
    G (every n_critic D steps, n_gen times): fresh ε, k;  minimise loss.g(D(G(prior(ε, k), y), y [, z]))
       [BiGAN: and the real pair's term through E]; G, E and the prior's parameters are updated

Resume: the checkpoint is written atomically at the end of every epoch with weights, optimiser states and
all RNG states; `train_gan` continues from it when its config matches, so an interrupted run that is
resumed ends with the same weights as an uninterrupted one (bit-identical on the CPU).

Speed (measured by `python -m benchmarks.training` against a loop written the obvious way): the dataset is
converted to float once and indexed in memory (no DataLoader); D scores the real and the fake batch in one
pass when its output for a sample depends on that sample alone (`per_sample`: no batch statistics, no
per-forward state such as spectral norm's power iteration), which doubles the rows of its matrix products;
convolutional networks and their batches are channels-last (NHWC in memory: oneDNN's and cuDNN's faster
layout); D's weights need no gradients during G's step; fused Adam (foreach RMSprop); dropout masks drawn with
`uniform_`, not `bernoulli_` (`ganlab.nets.layers.Dropout`); losses stay on the device in a
per-epoch buffer and are checked for finiteness every `check_every` steps (every step on the CPU, where the
check costs microseconds), reporting the first non-finite step exactly.

Precision (`cfg.precision`, the top-level `precision` resolved by the train stage): "bf16" runs every network
forward pass under `torch.autocast(bfloat16)` (the matrix products in bf16, 2.0-2.4x the float32 rate on a CPU with
AVX512_BF16), with float32 master weights, optimiser states, logits (cast back before the loss), losses, gradient
penalty norm and divergence check; "fp32" (or None) is plain float32, bit-identical to the code before the knob.
Resume is bit-identical within one precision; the precision is part of the checkpoint's config, so resuming in
another is refused by name.

Data parallel (torchrun): see `ganlab.distributed`; a single process runs exactly as without it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn

from ganlab import checkpoint as ckpt_io
from ganlab.config import ExperimentConfig
from ganlab.data.arrays import to_model, to_uint8
from ganlab.distributed import SINGLE, DistContext, rank_batches, rank_seed
from ganlab.losses import LOSSES, gradient_penalty
from ganlab.modules import GANModules, LatentGenerator, build_modules
from ganlab.progress import Progress
from ganlab.recipe import check_recipe
from ganlab.runtime import DivergedError
from ganlab.schema import ConfigError

# Keys that may change between an interrupted run and its resumption: they cannot affect the saved state.
RESUMABLE_CHANGES = frozenset({"num_epochs", "grid_size", "probe"})

# The whole training set is converted to float (N, C, H, W) once when it takes at most this many bytes
# (MNIST: 60k x 784 x 4 B = 188 MB); larger sets are converted per batch. Same values either way.
FLOAT_DATASET_MAX_BYTES = 2**30


@dataclass
class EpochLog:
    epoch: int
    loss_d: float
    loss_g: float
    seconds: float
    grid_path: Path | None = None
    extra: dict[str, float] = field(default_factory=dict)


def build_optimizers(cfg: ExperimentConfig, parts: GANModules):
    """opt_g over G (+ E) (+ the prior's learnable parameters as their own group at `lr_prior`); opt_d over D."""
    opt = cfg.optimizer
    if opt.name == "adam":  # fused: one kernel over all tensors (CPU and CUDA); ~3 ms of a 20 ms MLP step
        make = lambda groups: torch.optim.Adam(groups, betas=opt.betas, fused=True)  # noqa: E731
    else:  # rmsprop: WGAN (Arjovsky et al. 2017, Alg. 1); torch has no fused RMSprop
        make = lambda groups: torch.optim.RMSprop(groups, foreach=True)  # noqa: E731
    g_params = list(parts.generator.parameters())
    if parts.encoder is not None:
        g_params += list(parts.encoder.parameters())
    groups = [{"params": g_params, "lr": opt.lr_g}]
    prior_params = list(parts.prior.parameters())
    if prior_params:
        groups.append({"params": prior_params, "lr": cfg.lr_prior})  # report 004: "GM lr", e.g. 1e-9
    return make(groups), make([{"params": parts.discriminator.parameters(), "lr": opt.lr_d}])


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
def sample_grid(sampler: LatentGenerator, eps: torch.Tensor, k: torch.Tensor | None) -> np.ndarray:
    was_training = sampler.training
    sampler.eval()
    images = to_uint8(sampler(eps, k)).cpu().numpy()
    sampler.train(was_training)
    return images


CONV_LAYERS = (nn.Conv2d, nn.ConvTranspose2d)


def channels_last_(modules: list[nn.Module], data: torch.Tensor) -> torch.Tensor:
    """Put convolutional networks, in place, and a float (N, C, H, W) dataset in NHWC memory order.

    The values are unchanged (only the strides), the optimisers built afterwards keep their states in the
    same order, and a checkpoint's tensors load into either layout. Networks without a convolution and a
    uint8 dataset (converted per batch) are left as they are. Measured by `benchmarks/training.py`: about
    20 % off the DCGAN step on a 2-core AVX-512 CPU (oneDNN's blocked convolutions read NHWC directly).
    """
    if not any(isinstance(layer, CONV_LAYERS) for m in modules for layer in m.modules()):
        return data
    for m in modules:
        m.to(memory_format=torch.channels_last)
    return data if data.dtype == torch.uint8 else data.contiguous(memory_format=torch.channels_last)

# Layers whose output row i depends on input row i alone and that keep no per-forward state.
PER_SAMPLE_LAYERS = (nn.Linear, nn.Conv2d, nn.LeakyReLU, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Flatten,
                     nn.Identity, nn.Embedding)


def per_sample(net: nn.Module) -> bool:
    """True when `net` is built only from `PER_SAMPLE_LAYERS` (containers holding no parameters of their own),
    with no hooks or parametrizations: then net(cat(a, b)) is cat(net(a), net(b)) in distribution (dropout
    draws its masks for both halves in one call). BatchNorm, spectral norm and unknown layers give False."""
    for m in net.modules():
        if m._forward_pre_hooks or m._forward_hooks or torch.nn.utils.parametrize.is_parametrized(m):
            return False
        leaf = next(m.children(), None) is None
        if isinstance(m, PER_SAMPLE_LAYERS):
            continue
        if leaf or any(True for _ in m.parameters(recurse=False)):
            return False
    return True


def _d_logits(discriminator: nn.Module, x: torch.Tensor, y: torch.Tensor | None, code: torch.Tensor | None):
    # BiGAN discriminators score (x, z) pairs; all others take (x, y) and ignore y when unconditional
    return discriminator(x, y) if code is None else discriminator(x, y, code)


class GANStep:
    """One training step of any recipe (the update written in the module docstring), on one batch.

    `step(index, real, y_real)` runs D's update and, when `(index + 1) % n_critic == 0`, G's turn of `n_gen`
    updates; it returns (loss_d: 0-dim tensor, loss_g: (n_gen,) tensor or None), detached, on the device,
    averaged over the ranks in a data-parallel run. Randomness: latents and GP weights from `gen`, dropout
    from the global RNG, in a fixed order (resume is bit-identical on the CPU). It reads no value back to
    the host, so on CUDA consecutive steps queue without waiting.
    """

    def __init__(self, cfg: ExperimentConfig, parts: GANModules, opt_g: torch.optim.Optimizer,
                 opt_d: torch.optim.Optimizer, gen: torch.Generator, device: torch.device, dist: DistContext = SINGLE):
        self.cfg, self.parts, self.opt_g, self.opt_d, self.gen, self.device, self.dist = (
            cfg, parts, opt_g, opt_d, gen, device, dist)
        self.loss = LOSSES[cfg.loss]
        self.loss_kwargs = {} if cfg.class_loss_weight is None else {"class_weight": cfg.class_loss_weight}
        self.g_params = [p for group in opt_g.param_groups for p in group["params"]]
        self.d_params = [p for group in opt_d.param_groups for p in group["params"]]
        self.joint_d = per_sample(parts.discriminator)  # one D pass over (real, fake): see the module docstring
        self.bf16 = cfg.precision == "bf16"

    def mixed(self):
        """bfloat16 autocast around the networks' forward passes when `precision` is bf16 (a no-op in fp32): the
        matrix products run in bf16, while weights, optimiser states, logits (cast back), losses, the gradient
        penalty's norm and the divergence check stay float32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def draw_latents(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        prior, batch = self.parts.prior, self.cfg.batch_size
        eps = torch.randn(batch, self.parts.generator.nz, generator=self.gen, device=self.device)
        k = prior.sample_components(batch, self.gen, self.device)  # None (no RNG used) without components
        return eps, k, prior.labels(k)

    def d_loss(self, real_logits, fake_logits, y_real, y_fake) -> torch.Tensor:
        if self.loss.uses_labels:
            return self.loss.d(real_logits, fake_logits, y_real, y_fake, **self.loss_kwargs)
        return self.loss.d(real_logits, fake_logits)

    def g_loss(self, fake_logits, y_fake, real_logits) -> torch.Tensor:
        if self.loss.g_uses_real:
            return self.loss.g(fake_logits, real_logits)
        if self.loss.uses_labels:
            return self.loss.g(fake_logits, y_fake, **self.loss_kwargs)
        return self.loss.g(fake_logits)

    def _backward_and_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.detach().clone()
        if self.dist.enabled:  # one all-reduce: the gradients and the loss (a NaN on any rank reaches all)
            self.dist.average_([p.grad for p in params if p.grad is not None] + [value])
        opt.step()
        return value

    def d_step(self, real: torch.Tensor, y_real: torch.Tensor) -> torch.Tensor:
        """(1) Update D: minimise loss.d(D(x), D(G(z))) [+ λ·GP]; clip D's weights if `clip_value`."""
        cfg, (generator, discriminator, encoder, prior) = self.cfg, self._modules()
        eps, k, y_fake = self.draw_latents()
        with torch.no_grad(), self.mixed():  # D's step must not backprop into G/E
            z = prior(eps, k)
            fake = generator(z, y_fake).float()
            code_real = encoder(real).float() if encoder is not None else None
        code_fake = z if encoder is not None else None
        with self.mixed():
            if self.joint_d:  # (2B, ...) -> (2B,) logits: rows 0..B-1 real, B..2B-1 fake
                y = None if y_fake is None else torch.cat([y_real, y_fake])  # y_fake None: D ignores labels
                code = None if encoder is None else torch.cat([code_real, code_fake])
                logits = _d_logits(discriminator, torch.cat([real, fake]), y, code).float()
                real_logits, fake_logits = logits[: len(real)], logits[len(real) :]
            else:
                real_logits = _d_logits(discriminator, real, y_real, code_real).float()
                fake_logits = _d_logits(discriminator, fake, y_fake, code_fake).float()
        loss_d = self.d_loss(real_logits, fake_logits, y_real, y_fake)
        if cfg.gp_weight > 0:
            def critic(x: torch.Tensor) -> torch.Tensor:  # x̂ mixes pairs; labels of the real
                with self.mixed():
                    return discriminator(x, y_real).float()

            loss_d = loss_d + cfg.gp_weight * gradient_penalty(critic, real, fake, self.gen)
        value = self._backward_and_step(loss_d, self.opt_d, self.d_params)
        if cfg.clip_value is not None:
            with torch.no_grad():
                torch._foreach_clamp_min_(self.d_params, -cfg.clip_value)
                torch._foreach_clamp_max_(self.d_params, cfg.clip_value)
        return value

    def g_turn(self, real: torch.Tensor, y_real: torch.Tensor) -> torch.Tensor:
        """(2) `n_gen` updates of G (+ E, + prior): minimise loss.g; returns the (n_gen,) losses."""
        generator, discriminator, encoder, prior = self._modules()
        values = []
        discriminator.requires_grad_(False)  # D's weights need no gradients here: saves a third of D's backward
        try:
            for _ in range(self.cfg.n_gen):
                eps, k, y_fake = self.draw_latents()
                with self.mixed():
                    z = prior(eps, k)  # carries the learnable mixture's graph
                    fake_logits = _d_logits(discriminator, generator(z, y_fake), y_fake,
                                            z if encoder is not None else None).float()
                    real_logits = (_d_logits(discriminator, real, y_real, encoder(real)).float()
                                   if encoder is not None else None)
                values.append(self._backward_and_step(self.g_loss(fake_logits, y_fake, real_logits),
                                                      self.opt_g, self.g_params))
        finally:
            discriminator.requires_grad_(True)
        return torch.stack(values)

    def step(self, index: int, real: torch.Tensor, y_real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        loss_d = self.d_step(real, y_real)
        if (index + 1) % self.cfg.n_critic:
            return loss_d, None
        return loss_d, self.g_turn(real, y_real)

    def _modules(self):
        p = self.parts
        return p.generator, p.discriminator, p.encoder, p.prior


def _first_non_finite(loss_d: torch.Tensor, loss_g: torch.Tensor, g_done: torch.Tensor, epoch: int,
                      start: int, stop: int) -> str | None:
    """The divergence message for the first non-finite loss among steps start..stop-1 of the epoch buffers
    (loss_d (S,), loss_g (S, n_gen), g_done (S,) bool), or None. Within a step D's update comes first."""
    d, g = loss_d[start:stop], loss_g[start:stop]
    bad = ~torch.isfinite(d) | (~torch.isfinite(g).all(1) & g_done[start:stop])
    if not bool(bad.any()):
        return None
    i = int(bad.nonzero()[0, 0])
    step = start + i + 1
    if not torch.isfinite(d[i]):
        return f"discriminator loss is {float(d[i])} at epoch {epoch}, step {step}"
    value = float(g[i][~torch.isfinite(g[i])][0])
    return f"generator loss is {value} at epoch {epoch}, step {step}"


class CurvePoints(Protocol):
    """A learning-curve scorer (`ganlab.curves.CurveScorer`): an epoch's scores, or None when it is not a point."""

    def __call__(self, epoch: int, sampler: LatentGenerator) -> dict[str, float] | None: ...

    def comparable(self) -> dict[str, Any]: ...


@dataclass
class TrainingState:
    """Everything a checkpoint holds, and its only writer and reader during training.

    `to_checkpoint` / `from_checkpoint` define the checkpoint's keys: the weights of every part
    (`ganlab.modules.PART_KEYS`), both optimisers, the epoch, the config, the data's image shape and class count,
    the RNG states and the per-epoch history; in a data-parallel run also the world size, every rank's RNG
    states and the permutation generator. `ganlab.modules.load_modules` reads the networks back for evaluation.
    """

    cfg: ExperimentConfig
    parts: GANModules
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    gen: torch.Generator  # latents, GP weights (and, in one process, the permutation)
    data_gen: torch.Generator  # the permutation (shared by the ranks of a data-parallel run)
    image_shape: tuple[int, int, int]
    num_classes: int
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # epoch_record rows [+ "curve" scores]
    curve_protocol: dict[str, Any] | None = None  # what the history's curve points share (`CurvePoints.comparable`)

    @classmethod
    def create(cls, cfg: ExperimentConfig, data: "TrainingData", num_classes: int, device: torch.device,
               dist: DistContext) -> "TrainingState":
        """Fresh networks, optimisers and generators for seed `cfg.seed` (the recipe checked first); puts the
        convolutional networks and `data` in channels-last order."""
        check_recipe(cfg, "experiment")
        parts = build_modules(cfg, data.image_shape, num_classes, device)
        for m in parts.all():  # same initial weights on every rank (they are already when all ranks seeded alike)
            dist.broadcast_module_(m)
        data.images = channels_last_(parts.all(), data.images)
        opt_g, opt_d = build_optimizers(cfg, parts)
        # One process: one generator for the permutation and the latents. Data parallel: the permutation from
        # the shared seed on every rank, latents and dropout from the rank's own seed.
        gen = torch.Generator(device=device).manual_seed(rank_seed(cfg.seed, dist))
        data_gen = gen if not dist.enabled else torch.Generator(device=device).manual_seed(cfg.seed)
        if dist.enabled:
            torch.manual_seed(rank_seed(cfg.seed, dist))
        return cls(cfg, parts, opt_g, opt_d, gen, data_gen, data.image_shape, num_classes)

    def to_checkpoint(self, dist: DistContext) -> dict[str, Any]:
        """The checkpoint dict (a collective in a data-parallel run: every rank must call it)."""
        rng_ranks = dist.gather(_rng_state(self.gen))
        state = {
            **self.parts.state_dicts(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "epoch": self.epoch,
            "config": self.cfg.model_dump(mode="json"),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "rng": rng_ranks[0],
            "history": self.history,
            "curve_protocol": self.curve_protocol,
        }
        if dist.enabled:
            state.update(world_size=dist.world_size, rng_ranks=rng_ranks, rng_data=self.data_gen.get_state())
        return state

    def from_checkpoint(self, saved: dict[str, Any], dist: DistContext) -> None:
        """Continue from `saved` (checked by `resume_point`): weights, optimisers, RNG states, history."""
        self.parts.load_state_dicts(saved)
        self.opt_g.load_state_dict(saved["opt_g"])
        self.opt_d.load_state_dict(saved["opt_d"])
        _set_rng_state(self.gen, saved["rng_ranks"][dist.rank] if dist.enabled else saved["rng"])
        if dist.enabled:
            self.data_gen.set_state(saved["rng_data"])
        self.history, self.epoch = list(saved["history"]), saved["epoch"]
        self.curve_protocol = saved.get("curve_protocol")

    def adopt_curve_protocol(self, protocol: dict[str, Any] | None) -> list[int]:
        """Make `protocol` the curve points' protocol; points made in another one (another feature space, N or
        seeds; or unrecorded, in checkpoints from before) are not comparable with the new ones: they are dropped.
        Returns their epochs."""
        dropped = []
        if protocol != self.curve_protocol:
            dropped = [r["epoch"] for r in self.history if "curve" in r]
            self.history = [{k: v for k, v in r.items() if k != "curve"} for r in self.history]
        self.curve_protocol = protocol
        return dropped


def resume_point(checkpoint_path: Path, config: dict[str, Any], num_epochs: int, dist: DistContext,
                 device: torch.device) -> dict[str, Any] | None:
    """The interrupted run to continue (its checkpoint dict), or None to start afresh (no checkpoint, or a finished
    one). Raises `ConfigError` when an interrupted run was made with another recipe or world size."""
    if not checkpoint_path.exists():
        return None
    saved = ckpt_io.load(checkpoint_path, map_location=device)
    if saved["epoch"] >= num_epochs:
        return None
    diffs = [d for d in config_differences(saved["config"], config)
             if d.split(":")[0].split(".")[0] not in RESUMABLE_CHANGES]  # `num_epochs.quick: ...` -> num_epochs
    if diffs:
        raise ConfigError(
            f"{checkpoint_path}: an interrupted run with a different config exists ({'; '.join(diffs)}); "
            f"delete {checkpoint_path} to start the new config from scratch"
        )
    saved_world = saved.get("world_size", 1)
    if saved_world != dist.world_size:
        raise ConfigError(
            f"{checkpoint_path}: an interrupted run with {saved_world} process(es) exists, now "
            f"{dist.world_size}; resume with the same --nproc_per_node or delete it to start from scratch"
        )
    return saved


@dataclass
class TrainingData:
    """The training set on the device: `batch(idx)` -> float (B, C, H, W) in [-1, 1], `targets` (N,) labels.

    Stored as float (converted once) when it fits `FLOAT_DATASET_MAX_BYTES`, else uint8 converted per batch."""

    images: torch.Tensor
    targets: torch.Tensor
    image_shape: tuple[int, int, int]  # (C, H, W)

    @classmethod
    def place(cls, images: np.ndarray, labels: np.ndarray, device: torch.device) -> "TrainingData":
        data = torch.as_tensor(images).to(device)  # (N, H, W, C) uint8
        if len(images) * math.prod(images.shape[1:]) * 4 <= FLOAT_DATASET_MAX_BYTES:
            data = to_model(data)  # (N, C, H, W) float32 in [-1, 1], once: the same values as per batch
        targets = torch.as_tensor(np.asarray(labels), dtype=torch.long).to(device)
        return cls(data, targets, (images.shape[3], images.shape[1], images.shape[2]))

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        return self.images[idx] if self.images.dtype != torch.uint8 else to_model(self.images[idx])


def plan_batches(n: int, cfg: ExperimentConfig, max_batches_per_epoch: int | None, dist: DistContext) -> list[int]:
    """This rank's batch indices of an epoch (one process: 0, 1, ..., num_batches - 1)."""
    if cfg.batch_size > n:
        raise ConfigError(f"batch_size: {cfg.batch_size} is larger than the dataset ({n} images)")
    num_batches = n // cfg.batch_size
    if max_batches_per_epoch is not None:
        num_batches = min(num_batches, max_batches_per_epoch)
    batches = rank_batches(num_batches, dist)
    if not batches:
        raise ConfigError(f"batch_size: {cfg.batch_size} leaves {num_batches} batch(es) per epoch for "
                          f"{dist.world_size} processes; each needs at least one")
    return batches


def run_epoch(state: TrainingState, trainer: GANStep, data: TrainingData, batches: list[int], check_every: int,
              on_step: Callable[[], None] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One epoch over a fresh permutation; returns the per-step losses, on the device: loss_d (S,),
    loss_g (S, n_gen) and which steps had a G turn (S,) bool. Raises `DivergedError` at the first non-finite
    loss (checked every `check_every` steps and at the end) or non-finite weights."""
    cfg, steps, epoch = state.cfg, len(batches), state.epoch + 1
    for m in state.parts.all():
        m.train()
    perm = torch.randperm(len(data), generator=state.data_gen, device=data.images.device)
    buf_d = torch.zeros(steps, device=perm.device)
    buf_g = torch.zeros(steps, cfg.n_gen, device=perm.device)
    g_done = torch.tensor([(s + 1) % cfg.n_critic == 0 for s in range(steps)], device=perm.device)
    checked = 0
    for step, batch in enumerate(batches):
        idx = perm[batch * cfg.batch_size : (batch + 1) * cfg.batch_size]
        loss_d, loss_g = trainer.step(step, data.batch(idx), data.targets[idx])
        buf_d[step] = loss_d
        if loss_g is not None:
            buf_g[step] = loss_g
        if step + 1 - checked >= check_every or step + 1 == steps:
            message = _first_non_finite(buf_d, buf_g, g_done, epoch, checked, step + 1)
            if message is not None:
                raise DivergedError(message)
            checked = step + 1
        if on_step is not None:
            on_step()
    if not all(_all_finite(m) for m in state.parts.all()):
        raise DivergedError(f"non-finite weights after epoch {epoch}")
    return buf_d, buf_g, g_done


def epoch_record(epoch: int, buf_d: torch.Tensor, buf_g: torch.Tensor, g_done: torch.Tensor,
                 seconds: float) -> dict[str, float]:
    """The history row of an epoch: mean D and G losses (summed in Python, in step order) and its seconds."""
    g_values = buf_g[g_done].flatten().tolist()
    return {
        "epoch": epoch,
        "loss_d": sum(buf_d.tolist()) / max(len(buf_d), 1),
        "loss_g": sum(g_values) / max(len(g_values), 1),
        "seconds": seconds,
    }


class EpochGrid:
    """The per-epoch sample grid: fixed latents (seeded by the training seed) so the same images move across
    epochs; components 0, 1, ..., K-1, ... for priors with components."""

    def __init__(self, state: TrainingState, device: torch.device):
        cfg, prior = state.cfg, state.parts.prior
        grid_gen = torch.Generator(device="cpu").manual_seed(10_000 + cfg.seed)
        self.eps = torch.randn(cfg.grid_size, state.parts.generator.nz, generator=grid_gen).to(device)
        self.k = prior.grid_components(cfg.grid_size, device)
        self.sampler = state.parts.sampler()

    def images(self) -> np.ndarray:
        return sample_grid(self.sampler, self.eps, self.k)


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
    dist: DistContext = SINGLE,
    check_every: int | None = None,
    progress: str | None = None,
    curve: CurvePoints | None = None,
) -> dict[str, Any]:
    """Train (or resume) a GAN on uint8 `images` (N, H, W, C); returns the final checkpoint dict.

    The dataset lives on `device` (`TrainingData`; no DataLoader). Raises `ConfigError` if an incomplete
    checkpoint was made with a different config, `DivergedError` if a loss or weight becomes non-finite, naming
    the epoch and step of the first non-finite loss (the last good checkpoint is left in place). Losses are
    checked every `check_every` steps (default: 1 on the CPU, 50 on CUDA, where each check waits for the device)
    and at the end of every epoch.

    `dist`: this process's place in a torchrun run (`ganlab.distributed`); rank 0 alone writes the checkpoint
    and calls `on_epoch` / `save_grid`; every rank returns the same state. `max_batches_per_epoch` caps the
    global batches of an epoch (shared by the ranks). `progress`: a label to show the run's progress under
    (`ganlab.progress`, rank 0), None for none. `curve(epoch, sampler)`: the learning-curve scores of an epoch
    (`ganlab.curves.CurveScorer`, called on every rank after the epoch, before its checkpoint), or None; they join
    the epoch's history row under "curve"."""
    checkpoint_path = Path(checkpoint_path)
    batches = plan_batches(len(images), cfg, max_batches_per_epoch, dist)
    data = TrainingData.place(images, labels, device)
    state = TrainingState.create(cfg, data, num_classes, device, dist)
    _resume(state, cfg, checkpoint_path, num_epochs, dist, device, curve)
    grid = EpochGrid(state, device)
    trainer = GANStep(cfg, state.parts, state.opt_g, state.opt_d, state.gen, device, dist)
    bar = Progress(progress or "", num_epochs * len(batches), initial=state.epoch * len(batches),
                   enabled=progress is not None and dist.is_main)
    checkpoint: dict[str, Any] = {}
    while state.epoch < num_epochs:
        t0 = time.perf_counter()
        losses = run_epoch(state, trainer, data, batches, check_every or (1 if device.type == "cpu" else 50),
                           bar.update)
        for m in state.parts.all():  # BatchNorm running statistics: each rank saw its own batches
            dist.average_buffers_(m)
        state.epoch += 1
        record = epoch_record(state.epoch, *losses, time.perf_counter() - t0)
        scores = curve(state.epoch, grid.sampler) if curve is not None else None
        state.history.append(record if scores is None else record | {"curve": scores})
        checkpoint = state.to_checkpoint(dist)  # collective: every rank, every epoch
        if dist.is_main:
            _after_epoch(checkpoint, checkpoint_path, grid, save_grid, on_epoch)
    bar.close()
    return checkpoint or ckpt_io.load(checkpoint_path, map_location="cpu")


def _resume(state: TrainingState, cfg: ExperimentConfig, checkpoint_path: Path, num_epochs: int, dist: DistContext,
            device: torch.device, curve: CurvePoints | None) -> None:
    """Continue the interrupted run at `checkpoint_path`, if any (`resume_point`), and keep only the learning-curve
    points made in `curve`'s protocol."""
    saved = resume_point(checkpoint_path, cfg.model_dump(mode="json"), num_epochs, dist, device)
    if saved is not None:
        state.from_checkpoint(saved, dist)
        if dist.is_main:
            print(f"resuming {checkpoint_path} from epoch {state.epoch}/{num_epochs}")
    dropped = state.adopt_curve_protocol(curve.comparable()) if curve is not None else []
    if dropped and dist.is_main:
        print(f"{checkpoint_path}: learning-curve points of epochs {dropped} dropped: made in another protocol")


def _after_epoch(checkpoint: dict[str, Any], path: Path, grid: EpochGrid, save_grid, on_epoch) -> None:
    """Rank 0 at the end of an epoch: write the checkpoint atomically, then the grid, then report."""
    ckpt_io.save_atomic(checkpoint, path)
    record = checkpoint["history"][-1]
    grid_path = save_grid(grid.images(), record["epoch"]) if save_grid else None
    if on_epoch is not None:
        on_epoch(EpochLog(record["epoch"], record["loss_d"], record["loss_g"], record["seconds"], grid_path,
                          record.get("curve", {})), grid.sampler)

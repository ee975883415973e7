"""Training benchmark: ganlab's training (`ganlab.train.train_gan`) against a loop written the obvious way.

    python -m benchmarks.training                  # whole epochs: vanilla and dcgan_mnist, fp32 and bf16
    python -m benchmarks.training --recipes vanilla --rounds 3 --batches 300
    python -m benchmarks.training --mode step --ablate   # the step alone, and ours minus one lever at a time

`--mode epoch` (default) times what the train stage runs: one whole epoch through `train_gan` (building the
networks, placing the dataset, the data permutation, every step, the per-step finiteness checks, the sample grid
and the atomic checkpoint write), in each precision, next to the reference loop over the same epoch (its
DataLoader, the same number of batches) in the same precision. bf16 = `torch.autocast(bfloat16)` around the
forward passes with float32 weights, optimisers and losses (`precision: bf16`); the reference gets the same
autocast. `--mode step` times the step body alone (`GANStep`), as before, with `--ablate`.

Both loops run in this process, on the same networks (built from the recipe by `ganlab.nets`, same seed), the
same MNIST-shaped data (60,000 random uint8 28×28 images: speed does not depend on content) and the same
algorithm: per step one D update on a real batch and a fake batch from fresh latents, then one G update on
fresh latents (the recipes' n_critic = n_gen = 1), batch 64.

- ours: what `train_gan` runs per step: a slice of the in-memory permutation indexes the float dataset
  (converted once; NHWC for convolutional networks, `channels_last_`), `GANStep.step` (D's weights frozen
  during G's step, zero_grad(set_to_none), fused Adam, losses kept on the device; dropout masks from
  `uniform_` instead of `bernoulli_`, `ganlab.nets.layers.Dropout`), the per-step loss buffer and
  finiteness check.
- reference, as pytorch/examples dcgan/main.py: a `DataLoader(TensorDataset(float images), batch_size=64,
  shuffle=True, drop_last=True)`, `zero_grad()`, D's real and fake terms each `.backward()`, D's weights
  accumulating gradients during G's step (no requires_grad toggling), `BCEWithLogitsLoss` against label
  tensors, `torch.optim.Adam` with its defaults (the per-parameter for-loop on the CPU), torch's `nn.Dropout`
  (swapped in for ganlab's, same distribution), `.item()` of both
  losses every step. Unlike main.py, G's step draws fresh latents (main.py reuses D's fake batch), so that
  both loops do the same arithmetic.

Timing: `--rounds` alternating rounds of `--steps` steps each (after `--warmup` steps per loop); the reported
ms/step is the best round's mean (the least disturbed by other processes).

Floor: after each recipe, the fastest its step could be with float32 weights and optimiser states (as the
recipe and the precision rule require): the optimiser updates timed alone plus every FLOP at the matmul peak.
It bounds the % of peak and the speed-up over the reference that any implementation can reach here.

Peak: the best of 10 `torch.mm` of two 2048×2048 matrices, 2·2048³ FLOP each, in GFLOP/s, in float32 and in
bfloat16; each precision's % of peak is against its own dtype's peak.

FLOPs of one step, counted analytically from the layer shapes (Linear: in·out MACs per sample; Conv2d: output
elements · in_channels/groups · kh · kw; ConvTranspose2d: input elements · out_channels/groups · kh · kw), with
the convention forward + backward = 3 × forward (one pass for the activations' gradients, one for the
weights'), 2 FLOP per MAC:
    FLOP/step = 2 · batch · (4 · MACs_G + 9 · MACs_D)
    D update: G forward (1×, no grad) + D on real (3×) + D on fake (3×); G update: G (3×) + D (3×).
The same count serves both loops (% of peak is proportional to 1 / ms). It over-counts what either loop
needs: the first layer's input gradient (the data's) is never computed, and ours skips D's weight gradients
in G's step (about 20 % less arithmetic for the MLP GAN).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganlab.config import load_experiment, read_params
from ganlab.data.arrays import to_model
from ganlab.distributed import SINGLE
from ganlab.nets.layers import Dropout
from ganlab.modules import build_modules
from ganlab.images import save_grid
from ganlab.train import CONV_LAYERS, GANStep, build_optimizers, channels_last_, train_gan

N_IMAGES = 60_000
IMAGE_SHAPE = (1, 28, 28)  # (C, H, W)


def matmul_peak_gflops(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Best `torch.mm` throughput of n×n by n×n in `dtype`, in GFLOP/s."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def forward_macs(net: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of a single sample, from the shapes of Linear/Conv layers."""
    total = 0

    def count(module: nn.Module, args, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            total += args[0][0].numel() * module.out_channels // module.groups * kh * kw

    handles = [m.register_forward_hook(count) for m in net.modules()]
    was_training = net.training
    net.eval()
    with torch.no_grad():
        net(*inputs)
    net.train(was_training)
    for h in handles:
        h.remove()
    return total


def step_flops(generator: nn.Module, discriminator: nn.Module, batch: int) -> float:
    """FLOP of one D + G step under the 3×-forward convention (module docstring)."""
    g = forward_macs(generator, torch.zeros(1, generator.nz))
    d = forward_macs(discriminator, torch.zeros(1, *IMAGE_SHAPE))
    return 2.0 * batch * (4 * g + 9 * d)


def torch_dropout_(net: nn.Module) -> nn.Module:
    """Swap ganlab's `Dropout` layers (faster CPU mask, same distribution) for torch's `nn.Dropout`, in place."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Dropout):
                setattr(module, name, nn.Dropout(child.p))
    return net


def _fresh_parts(cfg):
    torch.manual_seed(cfg.seed)
    parts = build_modules(cfg, IMAGE_SHAPE, 10, torch.device("cpu"))
    for m in (parts.generator, parts.discriminator):
        m.train()
    return parts


class OursLoop:
    """The body of `train_gan`'s step loop, on a float dataset converted once."""

    def __init__(self, cfg, images_uint8: torch.Tensor, joint_d: bool = True, fused: bool = True,
                 channels_last: bool = True, fast_dropout: bool = True):
        self.cfg = cfg
        self.parts = _fresh_parts(cfg)
        if not fast_dropout:
            torch_dropout_(self.parts.discriminator)
        self.data = to_model(images_uint8)  # (N, C, H, W) float32, once
        if channels_last:
            self.data = channels_last_([self.parts.generator, self.parts.discriminator], self.data)
        opt_g, opt_d = build_optimizers(cfg, self.parts)
        if not fused:  # ablation: the same optimiser, per-group foreach kernels instead of one fused kernel
            opt_g, opt_d = (type(o)([{k: v for k, v in g.items() if k not in ("fused", "foreach")}
                                     for g in o.param_groups], foreach=True) for o in (opt_g, opt_d))
            assert not opt_g.param_groups[0]["fused"] and opt_g.param_groups[0]["foreach"]
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.trainer = GANStep(cfg, self.parts, opt_g, opt_d, self.gen, torch.device("cpu"), SINGLE)
        self.trainer.joint_d &= joint_d
        self.targets = torch.zeros(len(images_uint8), dtype=torch.long)
        self.steps = len(images_uint8) // cfg.batch_size
        self.buf_d, self.buf_g = torch.zeros(self.steps), torch.zeros(self.steps, 1)
        self._new_epoch()

    def _new_epoch(self) -> None:
        self.perm, self.step = torch.randperm(len(self.data), generator=self.gen), 0

    def run(self, n: int) -> None:
        b = self.cfg.batch_size
        for _ in range(n):
            if self.step == self.steps:
                self._new_epoch()
            s = self.step
            idx = self.perm[s * b : (s + 1) * b]
            loss_d, loss_g = self.trainer.step(s, self.data[idx], self.targets[idx])
            self.buf_d[s] = loss_d
            if loss_g is not None:
                self.buf_g[s] = loss_g
            if not bool(torch.isfinite(self.buf_d[s]) & torch.isfinite(self.buf_g[s]).all()):
                raise FloatingPointError(f"non-finite loss at step {s}")
            self.step += 1


class ReferenceLoop:
    """pytorch/examples dcgan/main.py's loop (BCE on logits, fresh latents for G's step); `precision` bf16 puts
    the forward passes under bfloat16 autocast (the logits cast back to float32 for the loss), as ours."""

    def __init__(self, cfg, images_uint8: torch.Tensor, precision: str = "fp32"):
        self.bf16 = precision == "bf16"
        self.parts = _fresh_parts(cfg)
        self.net_g, self.net_d = self.parts.generator, torch_dropout_(self.parts.discriminator)
        opt = cfg.optimizer
        self.opt_g = torch.optim.Adam(self.net_g.parameters(), lr=opt.lr_g, betas=opt.betas)
        self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=opt.lr_d, betas=opt.betas)
        self.criterion = nn.BCEWithLogitsLoss()
        images = images_uint8.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        dataset = torch.utils.data.TensorDataset(images, torch.zeros(len(images), dtype=torch.long))
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
        self.nz, self.batch = self.net_g.nz, cfg.batch_size
        self.it = iter(self.loader)

    def _mixed(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        with self._mixed():
            return self.net_d(x).view(-1).float()

    def run(self, n: int) -> None:
        for _ in range(n):
            try:
                real, _ = next(self.it)
            except StopIteration:
                self.it = iter(self.loader)
                real, _ = next(self.it)
            b = real.size(0)
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            self.net_d.zero_grad()
            label = torch.full((b,), 1.0)
            err_d_real = self.criterion(self._d(real), label)
            err_d_real.backward()
            noise = torch.randn(b, self.nz)
            with self._mixed():
                fake = self.net_g(noise)
            label.fill_(0.0)
            err_d_fake = self.criterion(self._d(fake.detach()), label)
            err_d_fake.backward()
            self.opt_d.step()
            # (2) Update G network: maximize log(D(G(z)))
            self.net_g.zero_grad()
            label.fill_(1.0)
            with self._mixed():
                fake = self.net_g(torch.randn(b, self.nz))
            err_g = self.criterion(self._d(fake), label)
            err_g.backward()
            self.opt_g.step()
            _ = (err_d_real.item() + err_d_fake.item(), err_g.item())


def time_loops(loops: dict[str, object], steps: int, rounds: int, warmup: int) -> dict[str, float]:
    """Best round mean, in ms/step, of each loop; rounds alternate between the loops."""
    for loop in loops.values():
        loop.run(warmup)
    best = {name: math.inf for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            t0 = time.perf_counter()
            loop.run(steps)
            best[name] = min(best[name], (time.perf_counter() - t0) / steps * 1e3)
    return best


class TrainGanEpoch:
    """One whole epoch of `train_gan` from scratch (what `stages/train.py` runs per epoch, first-epoch setup
    included), its grid and checkpoint written into a temporary folder."""

    def __init__(self, cfg, images: np.ndarray, labels: np.ndarray, precision: str, batches: int | None, tmp: Path):
        self.cfg, self.images, self.labels, self.batches = cfg.model_copy(update={"precision": precision}), images, labels, batches
        self.path = tmp / f"{cfg.loss}-{precision}" / "checkpoint.pt"
        self.steps = min(len(images) // cfg.batch_size, batches or math.inf)

    def run(self) -> None:
        self.path.unlink(missing_ok=True)
        torch.manual_seed(self.cfg.seed)
        train_gan(self.cfg, self.images, self.labels, num_epochs=1, device=torch.device("cpu"), checkpoint_path=self.path,
                  num_classes=10, max_batches_per_epoch=self.batches,
                  save_grid=lambda grid, epoch: save_grid(grid, self.path.parent / f"epoch_{epoch:04d}.png"))


class ReferenceEpoch:
    """The reference loop over the same number of batches (a fresh DataLoader epoch each time)."""

    def __init__(self, cfg, images_uint8: torch.Tensor, precision: str, steps: int):
        self.loop, self.steps = ReferenceLoop(cfg, images_uint8, precision), steps

    def run(self) -> None:
        self.loop.it = iter(self.loop.loader)
        self.loop.run(self.steps)


def optimiser_ms(loop: OursLoop, repeats: int = 50) -> tuple[float, float]:
    """One step's optimiser updates alone, on the gradients of the loop's last step: (ms, GB/s), best of `repeats`
    (repeated alone, the state may stay partly in cache: a lower bound on what the updates cost inside a step).
    D's update runs every step, G's `n_gen` updates every `n_critic` steps. Weights and Adam's moments stay
    float32 in both precisions, so bf16 cannot speed this part up: fused Adam reads weight, gradient and both
    moments and writes back weight and moments, 28 bytes per parameter (84 MB a step for the MLP GAN's three
    million parameters)."""
    cfg, trainer = loop.cfg, loop.trainer
    per_step = {trainer.opt_d: 1.0, trainer.opt_g: cfg.n_gen / cfg.n_critic}
    best = {}
    for opt in per_step:
        opt.step()  # warm: moments allocated, pages touched
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - t0)
        best[opt] = min(times)
    seconds = sum(best[opt] * weight for opt, weight in per_step.items())
    moved = sum(28 * p.numel() * weight
                for opt, weight in per_step.items() for group in opt.param_groups for p in group["params"])
    return seconds * 1e3, moved / seconds / 1e9


def time_epochs(loops: dict[str, object], rounds: int) -> dict[str, float]:
    """Best round, in ms/step, of each whole-epoch loop; rounds alternate between the loops."""
    best = {name: math.inf for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            t0 = time.perf_counter()
            loop.run()
            best[name] = min(best[name], (time.perf_counter() - t0) / loop.steps * 1e3)
    return best


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def epoch_mode(args, params, images: torch.Tensor, peak: dict[str, float]) -> None:
    labels = np.zeros(len(images), dtype=np.int64)
    print(f"{'recipe':<14}{'loop':<18}{'ms/step':>9}{'% of peak':>11}{'ref fp32 / this':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.recipes:
            _, cfg = load_experiment(params, name)
            loops: dict[str, object] = {}
            for precision in ("fp32", "bf16"):
                loops[f"ours {precision}"] = TrainGanEpoch(cfg, images.numpy(), labels, precision, args.batches, Path(tmp))
            steps = loops["ours fp32"].steps
            for precision in ("fp32", "bf16"):
                loops[f"reference {precision}"] = ReferenceEpoch(cfg, images, precision, steps)
            parts = loops["reference fp32"].loop.parts
            flops = step_flops(parts.generator, parts.discriminator, cfg.batch_size)
            ms = time_epochs(loops, args.rounds)
            for loop, value in ms.items():
                pct = flops / (value / 1e3) / 1e9 / peak[loop.split()[-1]] * 100
                print(f"{name:<14}{loop:<18}{value:>9.2f}{pct:>10.1f}%{ms['reference fp32'] / value:>16.2f}x", flush=True)
            bf16_step = OursLoop(cfg.model_copy(update={"precision": "bf16"}), images)
            bf16_step.run(20)  # gradients and moments in place
            print_floor(bf16_step, flops, peak["bf16"], ms["reference fp32"])


def step_mode(args, params, images: torch.Tensor, peak: dict[str, float]) -> None:
    header = f"{'recipe':<14}{'GFLOP/step':>11}{'ours ms':>9}{'ref ms':>9}{'ref/ours':>9}{'ours %pk':>9}{'ref %pk':>9}"
    print(header)
    for name in args.recipes:
        _, cfg = load_experiment(params, name)
        cfg = cfg.model_copy(update={"precision": args.precision})
        loops = {"ours": OursLoop(cfg, images), "reference": ReferenceLoop(cfg, images, args.precision)}
        if args.ablate:
            if loops["ours"].trainer.joint_d:
                loops["ours, separate D passes"] = OursLoop(cfg, images, joint_d=False)
            if cfg.optimizer.name == "adam":
                loops["ours, foreach Adam"] = OursLoop(cfg, images, fused=False)
            if any(isinstance(layer, Dropout) for layer in loops["ours"].parts.discriminator.modules()):
                loops["ours, torch dropout"] = OursLoop(cfg, images, fast_dropout=False)
            if any(isinstance(layer, CONV_LAYERS) for layer in loops["ours"].parts.discriminator.modules()):
                loops["ours, NCHW"] = OursLoop(cfg, images, channels_last=False)
        flops = step_flops(loops["ours"].parts.generator, loops["ours"].parts.discriminator, cfg.batch_size)
        ms = time_loops(loops, args.steps, args.rounds, args.warmup)
        pct = {k: flops / (v / 1e3) / 1e9 / peak[args.precision] * 100 for k, v in ms.items()}
        print(f"{name:<14}{flops / 1e9:>11.3f}{ms['ours']:>9.2f}{ms['reference']:>9.2f}"
              f"{ms['reference'] / ms['ours']:>9.2f}{pct['ours']:>8.1f}%{pct['reference']:>8.1f}%", flush=True)
        for variant in [k for k in ms if k.startswith("ours, ")]:
            print(f"  {variant}: {ms[variant]:.2f} ms ({pct[variant]:.1f}%)", flush=True)
        print_floor(loops["ours"], flops, peak[args.precision], ms["reference"])


def print_floor(loop: OursLoop, flops: float, peak_gflops: float, reference_ms: float) -> None:
    """In `loop`'s precision, the fastest this step can be with float32 weights and optimiser states: its
    optimiser updates at their measured speed plus every FLOP at the matmul peak; hence the most of the peak and
    the most speed-up over the reference that any implementation of the recipe, as specified, can reach here."""
    opt_ms, gbps = optimiser_ms(loop)
    floor = opt_ms + flops / peak_gflops / 1e6
    print(f"  optimiser updates alone: {opt_ms:.2f} ms ({gbps:.0f} GB/s); floor = that + every FLOP at the peak "
          f"= {floor:.2f} ms: at most {flops / floor / 1e6 / peak_gflops * 100:.0f}% of peak, "
          f"{reference_ms / floor:.2f}x the reference", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--mode", choices=("epoch", "step"), default="epoch")
    parser.add_argument("--recipes", nargs="+", default=["vanilla", "dcgan_mnist"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=None, help="epoch mode: cut each epoch to this many batches")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="step mode")
    parser.add_argument("--steps", type=int, default=100, help="step mode: steps per timed round")
    parser.add_argument("--warmup", type=int, default=20, help="step mode")
    parser.add_argument("--ablate", action="store_true", help="step mode: also ours minus one lever at a time")
    args = parser.parse_args()
    os.environ.setdefault("GANLAB_PROGRESS", "0")

    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}  torch {torch.__version__}  "
          f"threads {torch.get_num_threads()}  cpu {cpu_name()} ({torch.backends.cpu.get_cpu_capability()})")
    peak = {"fp32": matmul_peak_gflops(), "bf16": matmul_peak_gflops(dtype=torch.bfloat16)}
    print(f"matmul peak (best 2048x2048 torch.mm): fp32 {peak['fp32']:.1f}, bf16 {peak['bf16']:.1f} GFLOP/s")
    images = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (N_IMAGES, 28, 28, 1), dtype=np.uint8))
    params = read_params(args.params)
    (epoch_mode if args.mode == "epoch" else step_mode)(args, params, images, peak)


if __name__ == "__main__":
    main()

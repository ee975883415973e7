"""Data-parallel training across processes (torchrun), with no effect on a single-process run.

    torchrun --nproc_per_node 2 stages/train.py --experiment vanilla ...   # 2 ranks on this machine

What each rank does (see `ganlab.train.train_gan`):
- data: every rank draws the same permutation of the training set from the shared seed; rank r of N takes
  global batches r, r + N, r + 2N, ... (the in-memory equivalent of `DistributedSampler`), so an epoch has
  (N_images // batch_size) // N steps per rank and every image is seen once per epoch across the ranks;
- randomness: latents, GP interpolation weights and dropout come from a per-rank seed (`rank_seed`);
- gradients: after every backward, the gradients of the optimiser being stepped are averaged over the ranks by
  one all-reduce of a flat buffer (`DistContext.average_`), together with the loss itself, so every rank sees
  the same loss and stops at the same step when it is non-finite. Averaging by hand rather than wrapping the
  networks in `DistributedDataParallel` keeps the multi-network GAN step as it is: D's weights frozen during
  G's step, n_critic D steps per G step, the gradient penalty's double backward, weight clipping after the
  step (identical on every rank because the weights are);
- rank 0 alone writes checkpoints, grids and metrics and logs to MLflow.

Backends: gloo on the CPU, nccl on CUDA (rank r uses cuda:LOCAL_RANK). Without torchrun's environment
(`WORLD_SIZE` unset or 1) nothing here touches `torch.distributed`: `SINGLE` is the one-process context.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.distributed as torch_dist
from torch import nn

# Debug/test hook: when set, every rank saves its final weights to <dir>/rank<r>.pt (tests/test_ddp.py).
DEBUG_STATE_DIR_ENV = "GANLAB_DEBUG_RANK_STATE_DIR"

# Latent seeds of rank r in an N > 1 run: seed + STRIDE * (r + 1), far from the shared data seed.
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run: rank in 0..world_size-1 (0 writes the outputs)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def average_(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its mean over the ranks, in place, with one all-reduce of a flat buffer.

        Every rank must pass tensors of the same shapes in the same order (a collective)."""
        if not self.enabled or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        torch_dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def broadcast_module_(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every rank's `module` (same initial weights everywhere)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                torch_dist.broadcast(t, src=0)

    def average_buffers_(self, module: nn.Module) -> None:
        """Average floating-point buffers (BatchNorm running statistics, which each rank updated from its own
        batches) so that every rank holds the same state; integer buffers (batch counters) agree already."""
        self.average_([b for b in module.buffers() if b.is_floating_point()])

    def gather(self, obj: Any) -> list[Any]:
        """[obj of rank 0, obj of rank 1, ...] on every rank (picklable objects, e.g. RNG states)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, obj)
        return out

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: cuda -> cuda:LOCAL_RANK; the CPU stays the CPU."""
        if device.type == "cuda" and self.enabled:
            return torch.device("cuda", self.local_rank)
        return device


SINGLE = DistContext()


def rank_seed(seed: int, ctx: DistContext) -> int:
    """The seed of this rank's latents and dropout: `seed` itself in a one-process run (unchanged behaviour)."""
    return seed if not ctx.enabled else seed + RANK_SEED_STRIDE * (ctx.rank + 1)


def rank_batches(num_batches: int, ctx: DistContext) -> list[int]:
    """Indices of the global batches (of one shared permutation) this rank trains on in an epoch: r, r+N, ...,
    the same count on every rank (the last num_batches % N batches are skipped, as `DistributedSampler`
    with drop_last)."""
    per_rank = num_batches // ctx.world_size
    return [step * ctx.world_size + ctx.rank for step in range(per_rank)]


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT in the
    environment): nccl for CUDA, gloo otherwise. Without it (or WORLD_SIZE=1): `SINGLE`, nothing initialised."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    ctx = DistContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ctx


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def save_rank_state_for_debug(state: dict[str, Any], ctx: DistContext,
                              names: Iterable[str] = ("generator", "discriminator")) -> Path | None:
    """If $GANLAB_DEBUG_RANK_STATE_DIR is set, save this rank's final `names` state dicts to <dir>/rank<r>.pt
    (tests compare the ranks' weights); otherwise do nothing."""
    folder = os.environ.get(DEBUG_STATE_DIR_ENV)
    if not folder:
        return None
    path = Path(folder) / f"rank{ctx.rank}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: state[k] for k in names}, path)
    return path

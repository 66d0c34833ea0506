"""Data-parallel training under torchrun: one process per device, PyTorch DDP, nothing home-made.

``torchrun --nproc_per_node N -m actjepa_core.cli train ...`` (or ``--nnodes`` with a rendezvous
endpoint for several machines) starts N copies of the command with RANK, WORLD_SIZE, LOCAL_RANK and
the rendezvous address in the environment. ``init_from_env`` turns that into a process group:
gloo on the CPU, NCCL on CUDA (each process on ``cuda:LOCAL_RANK``), with a timeout, so a rank that
dies or hangs makes the others fail with a clear error instead of waiting for ever.

Rank 0 alone writes (checkpoints, metrics, TensorBoard, config.yaml) and validates; every rank
computes the same schedules from the step, the same EMA update from the same (all-reduced)
gradients, and holds bit-identical weights (checked at every checkpoint).
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from actjepa_core.errors import ActJepaError

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
DEFAULT_TIMEOUT_S = 600.0  # RunConfig.dist_timeout_s's default, for commands without a config


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def tag(self) -> str:
        return f"rank {self.rank}/{self.world_size}" if self.enabled else ""


SINGLE = DistContext()


def current() -> DistContext:
    """The process group this process has joined (``SINGLE`` when none)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return SINGLE
    return DistContext(dist.get_rank(), dist.get_world_size(),
                       int(os.environ.get("LOCAL_RANK", "0")))


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ActJepaError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def init_from_env(device: str, timeout_s: float) -> tuple[DistContext, str]:
    """Join the process group torchrun describes (a no-op for one process); returns the context
    and the device this rank trains on (``cuda:LOCAL_RANK`` when training on CUDA)."""
    if env_world_size() <= 1:
        return SINGLE, device
    missing = [k for k in ENV_KEYS if k not in os.environ]
    if missing:
        raise ActJepaError(f"WORLD_SIZE is {env_world_size()} but {', '.join(missing)} is not "
                           "set; start distributed training with torchrun")
    local_rank = int(os.environ["LOCAL_RANK"])
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ActJepaError(f"LOCAL_RANK {local_rank} but this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s); start at most that "
                               "many processes per node")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if cuda else "gloo",
                                    timeout=_dt.timedelta(seconds=timeout_s))
        except (RuntimeError, ValueError) as err:
            raise ActJepaError(f"could not join the process group of {env_world_size()} "
                               f"processes: {first_line(err)}") from None
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), local_rank)
    return ctx, device


def shutdown(ctx: DistContext, clean: bool = False) -> None:
    """Leave the process group. After a normal finish (``clean``) every rank first waits for the
    others: a rank tearing its connections down while a peer still writes its checkpoint can
    abort that peer."""
    if ctx.enabled and dist.is_initialized():
        try:
            if clean:
                dist.barrier()
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - after a failed collective there is nothing to save
            pass


def first_line(err: BaseException) -> str:
    """The gist of a backend error: its first sentence, without gloo's source location."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h|hpp):\d+\]\s*", "", lines[0]) if lines else ""
    text = text.split(". This is typically")[0].rstrip(".")
    return text or type(err).__name__


def is_collective_failure(err: BaseException) -> bool:
    """An error raised by a collective whose peers died, hung or diverged."""
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err).lower()
    return any(word in text for word in ("gloo", "nccl", "connection closed", "connection reset",
                                          "timed out", "broken pipe"))


def broadcast(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; only for small control data)."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def mean(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of a tensor over ranks (a copy; the input is untouched)."""
    if not ctx.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / ctx.world_size


def cat(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Every rank's (B, ...) tensor concatenated in rank order (equal B on every rank)."""
    if not ctx.enabled:
        return value
    parts = [torch.empty_like(value) for _ in range(ctx.world_size)]
    dist.all_gather(parts, value.contiguous())
    return torch.cat(parts)


def check_in_sync(params: list[torch.Tensor], ctx: DistContext, what: str) -> None:
    """Every rank must hold the same weights; a fingerprint (sum and sum of squares in float64)
    differing between ranks is an error."""
    if not ctx.enabled:
        return
    with torch.no_grad():
        fingerprint = torch.stack([sum(p.double().sum() for p in params),
                                   sum(p.double().pow(2).sum() for p in params)]).cpu()
    prints = gather(fingerprint, ctx)
    if any(not torch.equal(prints[0], other) for other in prints[1:]):
        raise ActJepaError(f"{what}: the ranks' weights differ ({[p.tolist() for p in prints]}); "
                           "data-parallel training diverged")


def wrap(module: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    """``module`` in DistributedDataParallel (gradients averaged over ranks in backward)."""
    if not ctx.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None)

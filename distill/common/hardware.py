"""What this machine computes natively, so a requested precision that it only emulates is named,
which device a process (a Ray worker, or not) may use, and the autocast that goes with it.

bfloat16 on a CPU without AVX512-BF16 or AMX is emulated (about 10x slower than float32 there);
float16 on a CPU is emulated everywhere. `auto` never picks either on such CPUs."""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, nullcontext

log = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def cpu_precision_warning(precision: str) -> str | None:
    """A one-line warning when `precision` would run emulated on this machine's CPU, else None."""
    if precision == "bfloat16" and not cpu_has_native_bf16():
        return ("precision bfloat16 on a CPU without AVX512-BF16/AMX is emulated, about 10x slower than float32; "
                "use precision: auto (float32 here)")
    if precision == "float16":
        return "precision float16 on a CPU is emulated and slow; use precision: auto (float32 on CPU)"
    return None


def choose_device(requested: str, assigned_gpus: list[str] | None, cuda_visible: str | None, cuda_available: bool) -> str:
    """The torch device for `requested` ("auto" or an explicit device), given what Ray assigned.

    `assigned_gpus` is `ray.get_gpu_ids()` inside a Ray worker, None outside Ray. A worker that
    reserved no GPU never touches one (another actor may hold it), even when CUDA is visible.
    Ray normally narrows CUDA_VISIBLE_DEVICES to the assigned ids, so the first one is `cuda:0`;
    where it does not (RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES), the id's place in the list
    (or the id itself when the variable is unset) is the torch index.
    """
    if requested != "auto":
        return requested
    if assigned_gpus is None:
        return "cuda" if cuda_available else "cpu"
    if not assigned_gpus or not cuda_available:
        return "cpu"
    first = str(assigned_gpus[0])
    visible = [v.strip() for v in cuda_visible.split(",")] if cuda_visible else None
    if visible is None:
        return f"cuda:{int(first)}"
    return f"cuda:{visible.index(first)}" if first in visible else "cuda:0"


def ray_assigned_gpus() -> list[str] | None:
    """GPU ids Ray assigned to this worker process; None in a driver or outside Ray."""
    import ray

    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return None
    return [str(g) for g in ray.get_gpu_ids()]


def worker_device(requested: str = "auto") -> str:
    """`choose_device` for this process. A GPU assigned by Ray that torch cannot see (a CPU-only
    torch build on a GPU node) is named in a warning and the work runs on CPU."""
    import torch

    assigned = ray_assigned_gpus()
    available = torch.cuda.is_available()
    if assigned and not available and requested == "auto":
        log.warning("Ray assigned GPU %s to this worker but torch sees no CUDA device (CPU-only torch build?); "
                    "running on CPU", ",".join(assigned))
    return choose_device(requested, assigned, os.environ.get("CUDA_VISIBLE_DEVICES"), available)


def autocast(device: str, enabled: bool = True) -> AbstractContextManager:
    """bf16 autocast on a GPU (when `enabled`); none on a CPU, where bf16 is mostly emulated."""
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if enabled and device.startswith("cuda") else nullcontext()

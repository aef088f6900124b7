"""What this machine computes natively, so a requested precision that it only emulates is named.

bfloat16 on a CPU without AVX512-BF16 or AMX is emulated (about 10x slower than float32 there);
float16 on a CPU is emulated everywhere. `auto` never picks either on such CPUs."""

from __future__ import annotations


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

"""Autocast precision by what the device computes natively.

`dtype: auto` (the default) means bfloat16 where the device has it in hardware (GPUs that
support it; CPUs with AVX-512-BF16 or AMX) and float32 elsewhere. On a CPU both must hold: it
reports the instructions, and a short timed probe finds a bfloat16 matmul faster than the same
float32 one. The flags alone can mislead (under `ONEDNN_MAX_CPU_ISA=AVX2` a CPU still reports
AVX-512-BF16, yet oneDNN emulates bfloat16 about 90x slower than float32), and so can the probe
alone: on a busy AVX2-only CPU the emulated matmul has timed 0.6x to 1.15x the float32 speed,
which would make `auto` pick a different precision from one run (or process) to the next.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the annotations; the functions import torch when they run
    import torch

CHOICES = ("auto", "float32", "bfloat16", "float16")


def __getattr__(name: str):
    # DTYPES ({name: torch dtype}) is made on first use: the `ds2` command imports this module for
    # CHOICES, and commands that never touch torch (lm, tokens, results) should not wait for it
    if name == "DTYPES":
        import torch

        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@functools.lru_cache(maxsize=None)
def cpu_bfloat16_speedup(size: int = 256) -> float:
    """How many times faster a (size x size) bfloat16 matmul runs than a float32 one on this CPU
    (above 1 where bfloat16 is native, about 0.01 where it is emulated). Takes under 0.2 s."""
    import torch

    g = torch.Generator().manual_seed(0)
    a32, b32 = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    for a, b in ((a32, b32), (a16, b16)):  # warm-up: oneDNN builds its kernels on first use
        torch.mm(a, b)
    t32 = _best_time(lambda: [torch.mm(a32, b32) for _ in range(4)], 3)
    t16 = _best_time(lambda: [torch.mm(a16, b16) for _ in range(4)], 3)
    return t32 / max(t16, 1e-9)


def cpu_has_bfloat16_instructions() -> bool | None:
    """Whether this CPU reports AVX-512-BF16 or AMX (torch's own CPU feature check), or None
    where this torch cannot tell."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    checks = [check for check in checks if check is not None]
    return any(check() for check in checks) if checks else None


def native_bfloat16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` computes bfloat16 in hardware, and why we think so (for the log)."""
    import torch

    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{torch.cuda.get_device_name(device)} supports bfloat16"
        return False, f"{torch.cuda.get_device_name(device)} has no native bfloat16"
    if device.type != "cpu":
        return False, f"no bfloat16 probe for device type {device.type}"
    if cpu_has_bfloat16_instructions() is False:
        return False, "this CPU has no bfloat16 instructions (AVX-512-BF16 or AMX), so bfloat16 is emulated"
    speedup = cpu_bfloat16_speedup()
    if speedup > 1.0:
        return True, f"a bfloat16 matmul runs {speedup:.1f}x as fast as float32 on this CPU"
    return False, f"a bfloat16 matmul runs at {speedup:.2f}x the float32 speed on this CPU (emulated)"


def resolve_dtype(requested: str, device: torch.device) -> tuple[str, str]:
    """The precision to run in for `requested` ("auto", "float32", "bfloat16" or "float16") on
    `device`, and the reason, e.g. ("float32", "auto: a bfloat16 matmul runs at 0.01x ...")."""
    if requested not in CHOICES:
        raise ValueError(f"dtype must be one of {', '.join(CHOICES)}, not {requested!r}")
    if requested == "auto":
        native, why = native_bfloat16(device)
        return ("bfloat16" if native else "float32"), f"auto: {why}"
    if requested == "bfloat16":
        native, why = native_bfloat16(device)
        return "bfloat16", "as configured" + ("" if native else f" (slow here: {why})")
    return requested, "as configured"


def inference_device() -> torch.device:
    """Where decoding and averaging run the acoustic model: the first GPU when there is one (a
    large model over a corpus's dev and test sets), else the CPU."""
    import torch

    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


"""Which devices can train here, and turning a `--device` value into a `torch.device`.

torch is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnn_tui import text
from cnn_tui.errors import UsageError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # "cpu" or "cuda:N": a valid --device value
    label: str  # e.g. "NVIDIA H100 80GB HBM3 — 78.1 GiB free" or "CPU — 2 threads"
    kind: str  # "cpu" or "cuda"
    total_bytes: int | None = None  # GPU memory; None for the CPU
    free_bytes: int | None = None


def cpu_threads() -> int:
    import torch

    return torch.get_num_threads()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16: Intel Xeon from
    Cooper Lake / Sapphire Rapids, AMD EPYC and Ryzen from Zen 4), where oneDNN's bf16 kernels are
    faster than fp32; elsewhere they are emulated and slower."""
    import torch

    get_capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.10
    if get_capabilities is None:
        return False
    capabilities = get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def cpu_label() -> str:
    threads = cpu_threads()
    return f"CPU — {threads} thread{'s' if threads != 1 else ''}"


def detect_devices() -> list[DeviceInfo]:
    """The CUDA GPUs (best first: cuda:0, cuda:1, ...) followed by the CPU."""
    import torch

    found = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(index)
            try:
                free, total = torch.cuda.mem_get_info(index)
            except RuntimeError:  # a GPU that is busy in exclusive mode or broken
                found.append(DeviceInfo(f"cuda:{index}", f"{name} — unavailable", "cuda"))
                continue
            label = f"{name} — {text.size(free)} free"
            found.append(DeviceInfo(f"cuda:{index}", label, "cuda", total, free))
    found.append(DeviceInfo("cpu", cpu_label(), "cpu"))
    return found


def resolve_device(spec: str = "auto") -> torch.device:
    """`auto` (CUDA when available, else the CPU), `cpu`, `cuda` (= cuda:0) or `cuda:N`."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            hint = (
                "this PyTorch was built without CUDA"
                if torch.version.cuda is None
                else "no NVIDIA GPU is visible (driver, CUDA_VISIBLE_DEVICES)"
            )
            raise UsageError(f"--device {spec}: CUDA is not available ({hint}); use --device cpu")
        index = 0 if spec == "cuda" else _cuda_index(spec)
        count = torch.cuda.device_count()
        if index >= count:
            valid = ", ".join(f"cuda:{i}" for i in range(count))
            raise UsageError(
                f"--device {spec}: this machine has {count} CUDA device(s) ({valid}); "
                "pick one of them or --device auto"
            )
        return torch.device(f"cuda:{index}")
    raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")


def _cuda_index(spec: str) -> int:
    try:
        return int(spec.split(":", 1)[1])
    except ValueError:
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}") from None


def device_name(device: torch.device) -> str:
    """What run_started reports: the GPU's name, or "CPU (N threads)"."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_threads()} threads)"


def gpu_count() -> int:
    """How many CUDA devices this process sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0

"""HIP C++ to an AMDGPU code object without ROCm: clang and ld.lld from the `ziglang` wheel (a full clang
with the AMDGPU target), so CI proves that HIP kernels compile for a real AMD target (e.g. gfx1100, the
RX 7900 XTX) on a machine with no AMD GPU and no HIP installation. Objects are cached by source hash.

The HIP dialect's sources include no headers (dialects.HIP defines the few attributes and builtins they
use), which is what lets a bare clang compile them; hiprtc compiles the same sources on a ROCm machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from . import program_cache
from .errors import DeviceError, KernelBuildError

EM_AMDGPU = 0xE0  # ELF e_machine of an AMDGPU code object


def _zig(*args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ziglang", *args], cwd=cwd, capture_output=True, text=True)


def zig_version() -> str:
    """The ziglang wheel's version (DeviceError naming the missing wheel when absent)."""
    try:
        import ziglang  # noqa: F401
    except ImportError:
        raise DeviceError("compiling HIP without ROCm needs the ziglang wheel; pip install ziglang") from None
    with tempfile.TemporaryDirectory() as tmp:
        return _zig("version", cwd=tmp).stdout.strip()


def compile_hip_offline(src: str, name: str, target: str = "gfx1100") -> bytes:
    """The AMDGPU code object (an ELF shared object) of HIP source src for target; KernelBuildError with
    clang's diagnostics when it does not compile."""
    version = zig_version()
    key = program_cache.cache_key(src, target, version, "hsaco")
    hit = program_cache.read("hip", key)
    if hit is not None:
        return hit
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "k.hip").write_text(src)
        cc = _zig(
            "clang", "-cc1", "-triple", "amdgcn-amd-amdhsa", "-target-cpu", target, "-x", "hip",
            "-fcuda-is-device", "-O3", "-emit-obj", "k.hip", "-o", "k.o", cwd=tmp,
        )
        if cc.returncode != 0:
            numbered = "\n".join(f"{i + 1:4d} {line}" for i, line in enumerate(src.splitlines()))
            raise KernelBuildError(f"clang build of HIP kernel {name} for {target} failed:\n{cc.stderr}\n--- source ---\n{numbered}")
        ld = _zig("ld.lld", "-shared", "k.o", "-o", "k.hsaco", cwd=tmp)
        if ld.returncode != 0:
            raise KernelBuildError(f"ld.lld link of HIP kernel {name} for {target} failed:\n{ld.stderr}")
        obj = Path(tmp, "k.hsaco").read_bytes()
    program_cache.write("hip", key, obj)
    return obj


def elf_machine(obj: bytes) -> int:
    """The e_machine field of an ELF image (0xE0 for AMDGPU)."""
    if obj[:4] != b"\x7fELF":
        raise ValueError("not an ELF image")
    return int.from_bytes(obj[18:20], "little")

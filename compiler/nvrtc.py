"""CUDA C++ to PTX or cubin with NVRTC (the `nvidia-cuda-nvrtc` wheel through `cuda-bindings`); no GPU needed.

Compiled images are cached on disk by source, architecture and NVRTC version (`program_cache`)."""

from __future__ import annotations

from . import program_cache
from .errors import DeviceError, KernelBuildError

INSTALL_HINT = "pip install 'petaflop-workbench[cuda]' (cuda-bindings and nvidia-cuda-nvrtc)"


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError as e:
        raise DeviceError(f"CUDA needs NVRTC through cuda-bindings, which is not installed ({e}); {INSTALL_HINT}") from None
    try:
        err, major, minor = nvrtc.nvrtcVersion()
    except Exception as e:  # the binding is there but libnvrtc is not
        raise DeviceError(f"CUDA needs libnvrtc, which cuda-bindings cannot load ({e}); {INSTALL_HINT}") from None
    return nvrtc


def nvrtc_version() -> str:
    """NVRTC's version as 'major.minor' (DeviceError naming the missing piece when absent)."""
    nvrtc = _nvrtc()
    _, major, minor = nvrtc.nvrtcVersion()
    return f"{major}.{minor}"


def _check(nvrtc, result, what: str):
    err = result[0]
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise KernelBuildError(f"NVRTC {what} failed: {err.name}")
    return result[1:] if len(result) > 2 else (result[1] if len(result) == 2 else None)


def compile_cuda(src: str, name: str, arch: str = "sm_90", cubin: bool = False) -> bytes:
    """PTX (or, with cubin, a device binary) of CUDA source src for arch like 'sm_80'; KernelBuildError
    with NVRTC's log and the numbered source when it does not compile."""
    nvrtc = _nvrtc()
    version = nvrtc_version()
    kind = "cubin" if cubin else "ptx"
    opts = [f"--gpu-architecture={arch}", "--std=c++17", "-default-device", "--use_fast_math"]
    key = program_cache.cache_key(src, arch, version, kind, " ".join(opts))
    hit = program_cache.read("cuda", key)
    if hit is not None:
        return hit
    prog = _check(nvrtc, nvrtc.nvrtcCreateProgram(src.encode(), f"{name}.cu".encode(), 0, [], []), "create")
    try:
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts])
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            size = _check(nvrtc, nvrtc.nvrtcGetProgramLogSize(prog), "log size")
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            numbered = "\n".join(f"{i + 1:4d} {line}" for i, line in enumerate(src.splitlines()))
            raise KernelBuildError(
                f"NVRTC {version} build of kernel {name} for {arch} failed:\n"
                f"{log.decode(errors='replace').rstrip(chr(0))}\n--- source ---\n{numbered}"
            )
        get_size, get = (
            (nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN) if cubin else (nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX)
        )
        size = _check(nvrtc, get_size(prog), f"{kind} size")
        out = b" " * size
        _check(nvrtc, (get(prog, out)[0], None), kind)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    out = out.rstrip(b"\0") + (b"\0" if not cubin else b"")
    program_cache.write("cuda", key, out)
    return out

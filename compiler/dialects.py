"""The C dialects one renderer writes: OpenCL C, CUDA C++ (NVRTC) and HIP C++ (hiprtc or clang for AMDGPU).

A kernel's statements are the same C in every dialect; what differs is a table of spellings: the kernel
head and argument qualifiers, work-item and group ids, shared memory and barriers, half-precision storage
and a short header of definitions. The CUDA and HIP sources include no headers at all (NVRTC and a bare
clang both compile them), so types, constants and bit casts the kernels use are defined in the header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_CL_TYPES = {"uchar": "uchar", "char": "char", "half": "half"}
_CPP_TYPES = {"uchar": "unsigned char", "char": "signed char", "ushort": "unsigned short"}

# CUDA without headers: half values are stored as their 16 bits and converted by the PTX cvt instruction
# (bfloat16 uses cl_math's integer conversions instead, so NaN bits match REF's 0x7fc0/0xffc0 exactly)
_CUDA_HEADER = r"""#define INFINITY __int_as_float(0x7f800000)
#define NAN __int_as_float(0x7fffffff)
#define as_float(x) __int_as_float(x)
#define as_int(x) __float_as_int(x)
typedef unsigned short wb_half;
__device__ __forceinline__ float wb_h2f(wb_half h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ wb_half wb_f2h(float f) { wb_half h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
"""

# HIP without headers: the attributes hip_runtime.h would define, clang builtins for ids and math
_HIP_HEADER = r"""#ifndef __global__
#define __global__ __attribute__((global))
#endif
#ifndef __shared__
#define __shared__ __attribute__((shared))
#endif
#ifndef __device__
#define __device__ __attribute__((device))
#endif
#ifdef __HIPCC_RTC__
#define wb_sin sinf
#else
#define wb_sin __builtin_sinf
typedef float float4 __attribute__((ext_vector_type(4)));
#endif
#define INFINITY __builtin_inff()
#define NAN __builtin_nanf("")
#define as_float(x) __builtin_bit_cast(float, (x))
#define as_int(x) __builtin_bit_cast(int, (x))
"""

# C++ overloads without OpenCL's attribute, and no float8 (GPU dialects render no vector reduces)
_CPP_HELPERS = {"wb_fmax": "inline float wb_fmax(float a, float b) { return (a > b || a != a) ? a : b; }\n"}

_HIP_BARRIER = (
    '__builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup"); __builtin_amdgcn_s_barrier(); '
    '__builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");'
)


@dataclass(frozen=True)
class Dialect:
    """How one C dialect spells the parts of a kernel that differ between OpenCL, CUDA and HIP."""

    name: str
    kernel_head: str  # what precedes the kernel's name
    global_arg: str  # qualifier of a global-memory pointer argument
    restrict: str
    shared: str  # qualifier of a work-group shared array
    shared_ptr: str  # qualifier inside a pointer cast to shared memory ('' or '__local ')
    group_ids: tuple  # spelling of the group id per dimension
    local_ids: tuple  # spelling of the work-item id within its group per dimension
    barrier: str
    func: str  # qualifier of helper functions called from kernels
    header: str = ""
    types: dict = field(default_factory=dict)  # OpenCL type name -> this dialect's
    half_store_type: str = "half"  # how a float16 buffer element is declared
    vectors: bool = False  # float8 and as_float8 (OpenCL/clang vector types) are available
    fixed_local: bool = True  # the renderer fixes the work-group size and guards the global ids
    unary: dict = field(default_factory=dict)  # op name -> C template where this dialect differs from OpenCL
    helpers: dict = field(default_factory=dict)  # helper name -> this dialect's definition (cl_math.HELPERS)

    def ctype(self, cl_name: str) -> str:
        """This dialect's spelling of an OpenCL C type name."""
        if cl_name == "half":
            return self.half_store_type
        return self.types.get(cl_name, cl_name)

    def global_id(self, dim: int, local: int) -> str:
        """The global work-item id along dim (work-groups of `local` items along it)."""
        if not self.fixed_local:
            return f"get_global_id({dim})"
        return f"(int)({self.group_ids[dim]}*{local}+{self.local_ids[dim]})"

    def load_half(self, buf: str, pos: str) -> str:
        """A float16 buffer element read as float."""
        if self.name == "opencl":
            return f"vload_half({pos},{buf})"
        if self.name == "cuda":
            return f"wb_h2f({buf}[{pos}])"
        return f"(float){buf}[{pos}]"

    def store_half(self, val: str, pos: str, buf: str) -> str:
        """The statement writing float val into a float16 buffer."""
        if self.name == "opencl":
            return f"vstore_half({val},{pos},{buf});"
        if self.name == "cuda":
            return f"{buf}[{pos}] = wb_f2h({val});"
        return f"{buf}[{pos}] = (_Float16)({val});"


OPENCL = Dialect(
    name="opencl",
    kernel_head="__kernel void",
    global_arg="__global ",
    restrict="restrict",
    shared="__local",
    shared_ptr="__local ",
    group_ids=("get_group_id(0)", "get_group_id(1)", "get_group_id(2)"),
    local_ids=("get_local_id(0)", "get_local_id(1)", "get_local_id(2)"),
    barrier="barrier(CLK_LOCAL_MEM_FENCE);",
    func="inline",
    types=_CL_TYPES,
    vectors=True,
    fixed_local=False,
)

CUDA = Dialect(
    name="cuda",
    kernel_head='extern "C" __global__ void',
    global_arg="",
    restrict="__restrict__",
    shared="__shared__",
    shared_ptr="",
    group_ids=("blockIdx.x", "blockIdx.y", "blockIdx.z"),
    local_ids=("threadIdx.x", "threadIdx.y", "threadIdx.z"),
    barrier="__syncthreads();",
    func="__device__ __forceinline__",
    header=_CUDA_HEADER,
    types=_CPP_TYPES,
    unary={"SIN": "sinf({0})", "SQRT": "sqrtf({0})"},
    helpers=_CPP_HELPERS,
    half_store_type="wb_half",
)

HIP = Dialect(
    name="hip",
    kernel_head='extern "C" __global__ void',
    global_arg="",
    restrict="__restrict__",
    shared="__shared__",
    shared_ptr="",
    group_ids=tuple(f"__builtin_amdgcn_workgroup_id_{d}()" for d in "xyz"),
    local_ids=tuple(f"__builtin_amdgcn_workitem_id_{d}()" for d in "xyz"),
    barrier=_HIP_BARRIER,
    func="static __device__ inline",
    header=_HIP_HEADER,
    types=_CPP_TYPES,
    unary={"SIN": "wb_sin({0})", "SQRT": "__builtin_sqrtf({0})"},
    helpers=_CPP_HELPERS,
    half_store_type="_Float16",
)

BY_FAMILY = {"CL": OPENCL, "CUDA": CUDA, "HIP": HIP}


def dialect_for(device: str) -> Dialect:
    """The dialect a device family compiles (OpenCL for CL, REF and anything without its own)."""
    return BY_FAMILY.get(str(device).split(":")[0], OPENCL)

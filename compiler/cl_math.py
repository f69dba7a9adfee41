"""exp2 and log2 written with operators, prepended to kernels that use them.

PoCL compiles OpenCL builtins into out-of-line calls, which is slow and stops vectorization across
work-items; these inline versions are accurate to a few float32 ulp over the whole float32 range,
subnormal inputs and results included (exp2 below -125 runs 64 higher and scales back by 2**-64).
Below -151 (the result is 0) that scale is 0, not 2**-64: multiplying into the subnormal range is slow on
x86 (microcode assists), and softmax's masked -inf scores and sigmoid/GELU's large arguments land there.
"""

import re

EXP2 = """inline float wb_exp2(float x) {
  int sub = x < -125.0f;
  float xs = sub ? x + 64.0f : x;
  float xc = xs > 128.0f ? 128.0f : (xs < -125.0f ? -125.0f : xs);
  int n = (int)(xc + 125.5f) - 125;
  float f = xc - (float)n;
  float p = 1.0f + f*(0.69314718056f + f*(0.24022650695f + f*(0.05550410866f + f*(0.00961812911f
            + f*(0.00133335581f + f*(0.00015403530f + f*0.00001525273f))))));
  float r = (p * 2.0f) * as_float((n + 126) << 23);
  r = sub ? r * (x < -151.0f ? 0.0f : 5.421010862427522e-20f) : r;
  return x != x ? x : r;
}
"""

# exp2 of an integer-valued float (or NaN): 2**n built from its bits, no polynomial. exp computes e**x as
# exp2(r) * exp2(n) with n a rounded integer (tensor.exp), and render_opencl gives that second exp2 this
# helper; the same values as wb_exp2 gives for integers, subnormal results and 0 and inf past the ends included
EXP2I = """inline float wb_exp2i(float x) {
  float c = x > 128.0f ? 128.0f : (x < -150.0f ? -150.0f : x);
  int n = (int)(c == c ? c : 0.0f);
  float r = n >= -126 ? as_float((n + 127) << 23) : (n >= -149 ? as_float(1 << (n + 149 < 0 ? 0 : n + 149)) : 0.0f);
  return x != x ? x : r;
}
"""

LOG2 = """inline float wb_log2(float x) {
  int sub = x < 1.17549435e-38f;
  int i = as_int(sub ? x * 8388608.0f : x);
  int e = ((i >> 23) & 255) - (sub ? 150 : 127);
  float m = as_float((i & 0x007fffff) | 0x3f800000);
  int big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e += big;
  float s = (m - 1.0f) / (m + 1.0f);
  float s2 = s * s;
  float r = (float)e + s * (2.88539008178f + s2*(0.96179669393f + s2*(0.57707801636f + s2*(0.41219858311f
            + s2*0.32059889797f))));
  r = x == 0.0f ? -INFINITY : r;
  r = x < 0.0f ? NAN : r;
  r = x == INFINITY ? x : r;
  return x != x ? x : r;
}
"""

SQRT = """inline float wb_sqrt(float x) { return __builtin_sqrtf(x); }
"""

EXP2V = """inline float8 wb_exp2v(float8 x) {
  int8 sub = x < -125.0f;
  float8 xs = sub ? x + 64.0f : x;
  float8 xc = xs > 128.0f ? (float8)128.0f : (xs < -125.0f ? (float8)-125.0f : xs);
  int8 n = __builtin_convertvector(xc + 125.5f, int8) - 125;
  float8 f = xc - __builtin_convertvector(n, float8);
  float8 p = 1.0f + f*(0.69314718056f + f*(0.24022650695f + f*(0.05550410866f + f*(0.00961812911f
             + f*(0.00133335581f + f*(0.00015403530f + f*0.00001525273f))))));
  float8 r = (p * 2.0f) * as_float8((n + 126) << 23);
  r = sub ? r * (x < -151.0f ? (float8)0.0f : (float8)5.421010862427522e-20f) : r;
  return x != x ? x : r;
}
"""

EXP2IV = """inline float8 wb_exp2iv(float8 x) {
  float8 c = x > 128.0f ? (float8)128.0f : (x < -150.0f ? (float8)-150.0f : x);
  int8 n = __builtin_convertvector(c == c ? c : (float8)0.0f, int8);
  int8 s = n + 149 < 0 ? (int8)0 : n + 149;
  float8 r = n >= -126 ? as_float8((n + 127) << 23) : (n >= -149 ? as_float8((int8)1 << s) : (float8)0.0f);
  return x != x ? x : r;
}
"""

# float8 loads from any float address (OpenCL's float8 pointers assume 32-byte alignment)
FLOAT8U = """typedef float float8u __attribute__((ext_vector_type(8), aligned(4)));
"""

# NaN-propagating max, for float and float8 (overloaded); inline, unlike the fmax builtin under PoCL
FMAX = """inline float __attribute__((overloadable)) wb_fmax(float a, float b) { return (a > b || a != a) ? a : b; }
inline float8 __attribute__((overloadable)) wb_fmax(float8 a, float8 b) { return (a > b || a != a) ? a : b; }
"""

# bfloat16 storage: the 16 bits are the top half of a float32. Narrowing rounds to nearest even; a NaN
# becomes the quiet NaN of its sign (0x7fc0/0xffc0), as ml_dtypes (REF) does, so no payload rounds into an
# infinity. Written with integer operators so that OpenCL, CUDA and HIP give the same bits.
B2F = """inline float wb_b2f(unsigned short h) { return as_float((int)(((unsigned int)h) << 16)); }
"""
F2B = """inline unsigned short wb_f2b(float f) {
  unsigned int u = (unsigned int)as_int(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)(((u >> 16) & 0x8000u) | 0x7fc0u);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
"""
# a float rounded to the nearest bfloat16, kept as float (the value a bfloat16 op's result holds)
RBF = """inline float wb_rbf(float f) {
  unsigned int u = (unsigned int)as_int(f);
  unsigned int r = (u & 0x7fffffffu) > 0x7f800000u ? ((u & 0x80000000u) | 0x7fc00000u)
                                                   : ((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
  return as_float((int)r);
}
"""

# a float rounded to the nearest float16 (ties to even), kept as float: the value a float16 op's result holds
# (REF computes float16 ops in numpy float16, which rounds every result). Integer operators, so that OpenCL,
# CUDA and HIP give the same bits; half subnormals keep their quantum of 2^-24.
RH = """inline float wb_rh(float f) {
  unsigned int u = (unsigned int)as_int(f);
  unsigned int s = u & 0x80000000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return f;
  if (a >= 0x477ff000u) return as_float((int)(s | 0x7f800000u));
  if (a >= 0x38800000u) return as_float((int)(s | ((a + 0xfffu + ((a >> 13) & 1u)) & 0xffffe000u)));
  int drop = 126 - (int)(a >> 23);
  if (drop > 24) return as_float((int)s);
  unsigned int m = (a & 0x7fffffu) | 0x800000u;
  float r = (float)((m + (1u << (drop - 1)) - 1u + ((m >> drop) & 1u)) >> drop) * 5.9604644775390625e-8f;
  return s ? -r : r;
}
"""

HELPERS = {"wb_fmax": FMAX, "float8u": FLOAT8U, "wb_exp2v": EXP2V, "wb_exp2iv": EXP2IV, "wb_exp2i": EXP2I, "wb_exp2": EXP2, "wb_log2": LOG2, "wb_sqrt": SQRT,
           "wb_b2f": B2F, "wb_f2b": F2B, "wb_rbf": RBF, "wb_rh": RH}  # fmt: skip


def prelude(src_body: str, qualifier: str = "inline", overrides: dict | None = None) -> str:
    """The helper definitions the kernel body uses, each declared with qualifier (CUDA: `__device__ ...`);
    overrides holds a dialect's own definition of a helper (name -> code)."""
    overrides = overrides or {}
    used = [
        (name, overrides.get(name, code))
        for name, code in HELPERS.items()
        if name + "(" in src_body or name + "*" in src_body
    ]
    if qualifier != "inline":  # CUDA/HIP: kernels batched into one unit each get a namespace instead
        return "".join(re.sub(r"(?m)^inline ", qualifier + " ", code) for _, code in used)
    # OpenCL C has no namespaces: include guards let kernels concatenated into one program (a batched
    # build) define each helper once
    return "".join(f"#ifndef WB_HELPER_{name}\n#define WB_HELPER_{name}\n{code}#endif\n" for name, code in used)

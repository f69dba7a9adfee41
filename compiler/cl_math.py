"""exp2 and log2 written with operators, prepended to kernels that use them.

PoCL compiles OpenCL builtins into out-of-line calls, which is slow and stops vectorization across
work-items; these inline versions are accurate to a few float32 ulp over the normal range (results below
2**-125 flush to zero, like a GPU's fast path).
"""

EXP2 = """inline float wb_exp2(float x) {
  float xc = x > 128.0f ? 128.0f : (x < -125.0f ? -125.0f : x);
  int n = (int)(xc + 125.5f) - 125;
  float f = xc - (float)n;
  float p = 1.0f + f*(0.69314718056f + f*(0.24022650695f + f*(0.05550410866f + f*(0.00961812911f
            + f*(0.00133335581f + f*(0.00015403530f + f*0.00001525273f))))));
  float r = (p * 2.0f) * as_float((n + 126) << 23);
  r = x < -125.0f ? 0.0f : r;
  return x != x ? x : r;
}
"""

LOG2 = """inline float wb_log2(float x) {
  int i = as_int(x);
  int e = ((i >> 23) & 255) - 127;
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
  float8 xc = x > 128.0f ? (float8)128.0f : (x < -125.0f ? (float8)-125.0f : x);
  int8 n = __builtin_convertvector(xc + 125.5f, int8) - 125;
  float8 f = xc - __builtin_convertvector(n, float8);
  float8 p = 1.0f + f*(0.69314718056f + f*(0.24022650695f + f*(0.05550410866f + f*(0.00961812911f
             + f*(0.00133335581f + f*(0.00015403530f + f*0.00001525273f))))));
  float8 r = (p * 2.0f) * as_float8((n + 126) << 23);
  r = x < -125.0f ? (float8)0.0f : r;
  return x != x ? x : r;
}
"""

# float8 loads from any float address (OpenCL's float8 pointers assume 32-byte alignment)
FLOAT8U = """typedef float float8u __attribute__((ext_vector_type(8), aligned(4)));
"""

HELPERS = {"float8u": FLOAT8U, "wb_exp2v": EXP2V, "wb_exp2": EXP2, "wb_log2": LOG2, "wb_sqrt": SQRT}


def prelude(src_body: str, qualifier: str = "inline") -> str:
    """The helper definitions the kernel body uses, each declared with qualifier (CUDA: `__device__ ...`)."""
    used = [code for name, code in HELPERS.items() if name + "(" in src_body or name + "*" in src_body]
    return "".join(code if qualifier == "inline" else code.replace("inline ", qualifier + " ", 1) for code in used)

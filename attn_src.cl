#ifndef WB_HELPER_wb_fmax
#define WB_HELPER_wb_fmax
inline float __attribute__((overloadable)) wb_fmax(float a, float b) { return (a > b || a != a) ? a : b; }
inline float8 __attribute__((overloadable)) wb_fmax(float8 a, float8 b) { return (a > b || a != a) ? a : b; }
#endif
#ifndef WB_HELPER_wb_exp2v
#define WB_HELPER_wb_exp2v
inline float8 wb_exp2v(float8 x) {
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
#endif
#ifndef WB_HELPER_wb_exp2
#define WB_HELPER_wb_exp2
inline float wb_exp2(float x) {
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
#endif
__kernel void attn_1_12_128_128_64(__global float* restrict data0, const __global float* restrict data1, const __global float* restrict data2, const __global float* restrict data3) {
  __local float Kt[8192] __attribute__((aligned(64)));
  __local float Vs[8192] __attribute__((aligned(64)));
  __local float Qs[6144];
  __local float Os[6144] __attribute__((aligned(64)));
  __local float Ms[96], Ls[96], As[6];
  __local float Ps[768] __attribute__((aligned(64)));
  const int g = get_group_id(0) / 2, tlo = (get_group_id(0) % 2) * 96;
  const int thi = min(tlo + 96, 128);
  const int b1 = (g / 1) % 12;
  const int b0 = (g / 12) % 1;
  int finite = 1;
  for (int j = 0; j < 128; j++) for (int e = 0; e < 64; e++) { const float x = data3[(b1*64+e+j*768)]; finite &= x >= -FLT_MAX && x <= FLT_MAX; }
  const int kend = finite ? min(128, thi) : 128;
  for (int r = 0; r < 96; r++) { const int t = min(tlo + r, 127); for (int d = 0; d < 64; d++) Qs[r*64+d] = data1[(b1*64+d+t*768)]; for (int e = 0; e < 64; e++) Os[r*64+e] = 0.0f; Ms[r] = -INFINITY; Ls[r] = 0.0f; }
  for (int c0 = 0; c0 < kend; c0 += 128) {
    const int cn = min(128, kend - c0);
    for (int jj = 0; jj < 128; jj++) { const int j = min(c0 + jj, 127); for (int d = 0; d < 64; d++) Kt[(jj/16)*1024+d*16+jj%16] = data2[(b1*64+d+j*768)]; }
    for (int jj = 0; jj < cn; jj++) { const int j = c0 + jj; for (int e = 0; e < 64; e++) Vs[(e/16)*2048+jj*16+e%16] = data3[(b1*64+e+j*768)]; }
    for (int t0 = tlo; t0 < thi; t0 += 6) {
      if (finite && c0 > t0 + 5) continue;  // no key here for these rows
      const int jn = finite ? min(cn, t0 + 6 - c0) : cn;
      const int jp = (jn + 15) & ~15;
      __local const float* qb = Qs + (t0 - tlo)*64;
      for (int j0 = 0; j0 < jp; j0 += 16) {
        float8 c0_0 = 0.0f; float8 c0_1 = 0.0f; float8 c1_0 = 0.0f; float8 c1_1 = 0.0f; float8 c2_0 = 0.0f; float8 c2_1 = 0.0f; float8 c3_0 = 0.0f; float8 c3_1 = 0.0f; float8 c4_0 = 0.0f; float8 c4_1 = 0.0f; float8 c5_0 = 0.0f; float8 c5_1 = 0.0f;
        __local const float* kp = Kt + j0*64;
        for (int d = 0; d < 64; d++) {
          const float8 k0 = *(__local const float8*)(kp + d*16);
          const float8 k1 = *(__local const float8*)(kp + d*16 + 8);
          { const float a = qb[0+d]; c0_0 += a * k0; c0_1 += a * k1; }
          { const float a = qb[64+d]; c1_0 += a * k0; c1_1 += a * k1; }
          { const float a = qb[128+d]; c2_0 += a * k0; c2_1 += a * k1; }
          { const float a = qb[192+d]; c3_0 += a * k0; c3_1 += a * k1; }
          { const float a = qb[256+d]; c4_0 += a * k0; c4_1 += a * k1; }
          { const float a = qb[320+d]; c5_0 += a * k0; c5_1 += a * k1; }
        }
        *(__local float8*)(Ps + 0 + j0 + 0) = c0_0 * 0.125f;
        *(__local float8*)(Ps + 0 + j0 + 8) = c0_1 * 0.125f;
        *(__local float8*)(Ps + 128 + j0 + 0) = c1_0 * 0.125f;
        *(__local float8*)(Ps + 128 + j0 + 8) = c1_1 * 0.125f;
        *(__local float8*)(Ps + 256 + j0 + 0) = c2_0 * 0.125f;
        *(__local float8*)(Ps + 256 + j0 + 8) = c2_1 * 0.125f;
        *(__local float8*)(Ps + 384 + j0 + 0) = c3_0 * 0.125f;
        *(__local float8*)(Ps + 384 + j0 + 8) = c3_1 * 0.125f;
        *(__local float8*)(Ps + 512 + j0 + 0) = c4_0 * 0.125f;
        *(__local float8*)(Ps + 512 + j0 + 8) = c4_1 * 0.125f;
        *(__local float8*)(Ps + 640 + j0 + 0) = c5_0 * 0.125f;
        *(__local float8*)(Ps + 640 + j0 + 8) = c5_1 * 0.125f;
      }
      for (int r = 0; r < 6; r++) {
        const int tr = t0 + r, row = tr - tlo;
        if (tr >= thi) { As[r] = 0.0f; continue; }
        const int lim = min(tr + 1 - c0, cn);
        __local float* p = Ps + r*128;
        const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
        float8 m8 = (float8)(-INFINITY);
        for (int j = 0; j < jp; j += 8) {
          const float8 x = *(__local float8*)(p + j);
          m8 = wb_fmax(m8, (lane + j < lim) ? x : (float8)(-INFINITY));
        }
        const float mc = wb_fmax(wb_fmax(wb_fmax(m8.s0, m8.s1), wb_fmax(m8.s2, m8.s3)), wb_fmax(wb_fmax(m8.s4, m8.s5), wb_fmax(m8.s6, m8.s7)));
        const float mo = Ms[row], m = wb_fmax(mo, mc);
        const float alpha = mo == m ? 1.0f : wb_exp2((mo - m) * 1.4426950408889634f);
        float8 s8 = 0.0f;
        for (int j = 0; j < jp; j += 8) {
          const float8 ex = wb_exp2v((*(__local float8*)(p + j) - m) * 1.4426950408889634f);
          const float8 pe = (lane + j < lim) ? ex : (float8)0.0f;
          *(__local float8*)(p + j) = pe;
          s8 += pe;
        }
        Ms[row] = m;
        Ls[row] = Ls[row] * alpha + (((s8.s0 + s8.s1) + (s8.s2 + s8.s3)) + ((s8.s4 + s8.s5) + (s8.s6 + s8.s7)));
        As[r] = alpha;
      }
      for (int e0 = 0; e0 < 64; e0 += 16) {
        __local float* ob = Os + (t0 - tlo)*64 + e0;
        float8 o0_0 = *(__local float8*)(ob + 0) * As[0]; float8 o0_1 = *(__local float8*)(ob + 8) * As[0];
        float8 o1_0 = *(__local float8*)(ob + 64) * As[1]; float8 o1_1 = *(__local float8*)(ob + 72) * As[1];
        float8 o2_0 = *(__local float8*)(ob + 128) * As[2]; float8 o2_1 = *(__local float8*)(ob + 136) * As[2];
        float8 o3_0 = *(__local float8*)(ob + 192) * As[3]; float8 o3_1 = *(__local float8*)(ob + 200) * As[3];
        float8 o4_0 = *(__local float8*)(ob + 256) * As[4]; float8 o4_1 = *(__local float8*)(ob + 264) * As[4];
        float8 o5_0 = *(__local float8*)(ob + 320) * As[5]; float8 o5_1 = *(__local float8*)(ob + 328) * As[5];
        __local const float* vp = Vs + e0*128;
        for (int j = 0; j < jn; j++) {
          const float8 v0 = *(__local const float8*)(vp + j*16 + 0);
          const float8 v1 = *(__local const float8*)(vp + j*16 + 8);
          { const float a = Ps[0+j]; o0_0 += a * v0; o0_1 += a * v1; }
          { const float a = Ps[128+j]; o1_0 += a * v0; o1_1 += a * v1; }
          { const float a = Ps[256+j]; o2_0 += a * v0; o2_1 += a * v1; }
          { const float a = Ps[384+j]; o3_0 += a * v0; o3_1 += a * v1; }
          { const float a = Ps[512+j]; o4_0 += a * v0; o4_1 += a * v1; }
          { const float a = Ps[640+j]; o5_0 += a * v0; o5_1 += a * v1; }
        }
        if (t0 + 0 < thi) { *(__local float8*)(ob + 0) = o0_0; *(__local float8*)(ob + 8) = o0_1; }
        if (t0 + 1 < thi) { *(__local float8*)(ob + 64) = o1_0; *(__local float8*)(ob + 72) = o1_1; }
        if (t0 + 2 < thi) { *(__local float8*)(ob + 128) = o2_0; *(__local float8*)(ob + 136) = o2_1; }
        if (t0 + 3 < thi) { *(__local float8*)(ob + 192) = o3_0; *(__local float8*)(ob + 200) = o3_1; }
        if (t0 + 4 < thi) { *(__local float8*)(ob + 256) = o4_0; *(__local float8*)(ob + 264) = o4_1; }
        if (t0 + 5 < thi) { *(__local float8*)(ob + 320) = o5_0; *(__local float8*)(ob + 328) = o5_1; }
      }
    }
  }
  for (int tr = tlo; tr < thi; tr++) { const float inv = (1.0f/Ls[tr - tlo]); for (int e = 0; e < 64; e++) data0[(g*128 + tr)*64 + e] = Os[(tr - tlo)*64 + e] * inv; }
}

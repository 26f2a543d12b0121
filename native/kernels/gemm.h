// The GEMM core of the Colony trainer kernels: a small packed GEMM (BLIS-style loop nest) with no
// Node dependency, included by binding.cc (the Node addon the loader builds) and by selftest.cc
// (a stand-alone check). Each build is one translation unit, hence definitions in a header.
//
// Why native: the trainer's time is almost all in three dense products; plain JS stays near
// 1-3 GFLOP/s, while a register-blocked SIMD micro-kernel runs at tens of GFLOP/s per core.
// Portability: SIMD is written with GCC/Clang vector extensions, so the same source becomes
// AVX-512/AVX2 code on x86-64 and NEON code on aarch64; the loader (trainer/kernels/native.ts)
// compiles it on the machine that runs it with -march=native and falls back to WASM/JS on failure.
//
// One generic routine covers all three kernels, because each is C[M,N] (+)= A[M,K]·B[K,N] with
// A and B read through arbitrary (row, column) strides; packing copies them into contiguous
// panels so the micro-kernel never sees the strides.

#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "pool.h"

namespace colony_kernels {

// ---- SIMD width: one vector type of LANES floats, chosen by what the compiler may emit. ----
#if defined(__AVX512F__)
constexpr int LANES = 16;
constexpr int MR = 8;  // 32 zmm registers: 16 accumulators + 2 B vectors + broadcasts
const char* const ISA = "avx512";
#elif defined(__AVX__)
constexpr int LANES = 8;
constexpr int MR = 6;  // 16 ymm registers: 12 accumulators + 2 B vectors + 1 broadcast
const char* const ISA = "avx2";
#elif defined(__ARM_NEON) || defined(__aarch64__)
constexpr int LANES = 4;
constexpr int MR = 8;  // 32 q registers: 16 accumulators + 2 B + broadcasts (NR = 8)
const char* const ISA = "neon";
#else
constexpr int LANES = 4;
constexpr int MR = 4;
const char* const ISA = "generic";
#endif
typedef float vf __attribute__((vector_size(LANES * 4)));
constexpr int NR = 2 * LANES;  // a micro-tile is MR rows × two vectors of columns

// Cache blocking: a KC×NR panel of B stays in L1 while MR rows of A stream past it; an MC×KC
// block of A stays in L2. Sizes suit the 32-48 KiB L1 / 512 KiB+ L2 of both targets.
constexpr int KC = 256;
constexpr int MC = MR * 16;
constexpr int NC = NR * 32;

inline vf loadv(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void storev(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

struct Mat {  // element (r, c) lives at p[r*rs + c*cs]
  const float* p;
  ptrdiff_t rs, cs;
};

// Ap[ir][k][r] = A[i0+ir*MR+r, k0+k]; rows past m are zero so edge tiles need no special case.
void packA(float* Ap, Mat A, int i0, int m, int k0, int kc) {
  for (int ir = 0; ir < m; ir += MR) {
    const int mr = std::min(MR, m - ir);
    for (int k = 0; k < kc; k++) {
      const float* src = A.p + (ptrdiff_t)(i0 + ir) * A.rs + (ptrdiff_t)(k0 + k) * A.cs;
      for (int r = 0; r < mr; r++) Ap[r] = src[r * A.rs];
      for (int r = mr; r < MR; r++) Ap[r] = 0.f;
      Ap += MR;
    }
  }
}

// Bp[jr][k][c] = B[k0+k, j0+jr*NR+c]; columns past n are zero.
void packB(float* Bp, Mat B, int k0, int kc, int j0, int n) {
  for (int jr = 0; jr < n; jr += NR) {
    const int nr = std::min(NR, n - jr);
    if (B.cs == 1 && nr == NR) {
      for (int k = 0; k < kc; k++) {
        std::memcpy(Bp, B.p + (ptrdiff_t)(k0 + k) * B.rs + (j0 + jr), NR * sizeof(float));
        Bp += NR;
      }
    } else {
      // Transposed source (B.rs == 1): walk each source row contiguously, scatter into the panel.
      for (int c = 0; c < nr; c++) {
        const float* src = B.p + (ptrdiff_t)k0 * B.rs + (ptrdiff_t)(j0 + jr + c) * B.cs;
        for (int k = 0; k < kc; k++) Bp[k * NR + c] = src[k * B.rs];
      }
      for (int c = nr; c < NR; c++)
        for (int k = 0; k < kc; k++) Bp[k * NR + c] = 0.f;
      Bp += (ptrdiff_t)kc * NR;
    }
  }
}

// C[0:mr, 0:nr] += Ap-panel · Bp-panel over kc steps. The accumulators are MR×2 vectors that the
// compiler keeps in registers (the loops over r are fully unrolled at -O3).
void micro(int kc, const float* __restrict Ap, const float* __restrict Bp, float* C, ptrdiff_t ldc, int mr, int nr, float alpha) {
  vf acc0[MR], acc1[MR];
  for (int r = 0; r < MR; r++) { acc0[r] = vf{}; acc1[r] = vf{}; }
  for (int k = 0; k < kc; k++) {
    const vf b0 = loadv(Bp), b1 = loadv(Bp + LANES);
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const float a = Ap[r];
      acc0[r] += a * b0;
      acc1[r] += a * b1;
    }
    Ap += MR;
    Bp += NR;
  }
  if (alpha != 1.f) {
    for (int r = 0; r < MR; r++) { acc0[r] *= alpha; acc1[r] *= alpha; }
  }
  if (mr == MR && nr == NR) {
    for (int r = 0; r < MR; r++) {
      float* c = C + r * ldc;
      storev(c, loadv(c) + acc0[r]);
      storev(c + LANES, loadv(c + LANES) + acc1[r]);
    }
  } else {
    alignas(64) float tile[MR * NR];
    for (int r = 0; r < MR; r++) { storev(tile + r * NR, acc0[r]); storev(tile + r * NR + LANES, acc1[r]); }
    for (int r = 0; r < mr; r++)
      for (int c = 0; c < nr; c++) C[r * ldc + c] += tile[r * NR + c];
  }
}

// Sum of a[i]·b[i], i < n, with four vector accumulators to hide the add latency.
float dot(const float* a, const float* b, int n) {
  vf s0{}, s1{}, s2{}, s3{};
  int i = 0;
  for (; i + 4 * LANES <= n; i += 4 * LANES) {
    s0 += loadv(a + i) * loadv(b + i);
    s1 += loadv(a + i + LANES) * loadv(b + i + LANES);
    s2 += loadv(a + i + 2 * LANES) * loadv(b + i + 2 * LANES);
    s3 += loadv(a + i + 3 * LANES) * loadv(b + i + 3 * LANES);
  }
  for (; i + LANES <= n; i += LANES) s0 += loadv(a + i) * loadv(b + i);
  const vf s = (s0 + s1) + (s2 + s3);
  float r = 0.f;
  for (int l = 0; l < LANES; l++) r += s[l];
  for (; i < n; i++) r += a[i] * b[i];
  return r;
}

// C[M,N] = alpha·A·B (+ C when accumulate) on one thread. C is row-major with leading dimension ldc.
void gemmSerial(int M, int N, int K, Mat A, Mat B, float* C, ptrdiff_t ldc, float alpha = 1.f, bool accumulate = true) {
  if (M <= 0 || N <= 0) return;
  if (!accumulate)
    for (int m = 0; m < M; m++) std::memset(C + (ptrdiff_t)m * ldc, 0, (size_t)N * sizeof(float));
  if (K <= 0) return;
  if (M < 4 && A.cs == 1 && B.rs == 1) {
    // A few rows times a B whose columns are contiguous (x·Wᵀ while decoding one token): packing
    // all of W would cost as much as the product, so take direct dot products instead.
    for (int n = 0; n < N; n++)
      for (int m = 0; m < M; m++) C[(ptrdiff_t)m * ldc + n] += alpha * dot(A.p + (ptrdiff_t)m * A.rs, B.p + (ptrdiff_t)n * B.cs, K);
    return;
  }
  if (M < 4 && B.cs == 1) {
    // A few rows times a row-major B (dy·W while decoding): C row += a·(row of B), no packing.
    for (int m = 0; m < M; m++) {
      float* c = C + (ptrdiff_t)m * ldc;
      for (int k = 0; k < K; k++) {
        const float a = alpha * A.p[(ptrdiff_t)m * A.rs + (ptrdiff_t)k * A.cs];
        const float* b = B.p + (ptrdiff_t)k * B.rs;
        const vf av = a - vf{};  // broadcast
        int n = 0;
        for (; n + LANES <= N; n += LANES) storev(c + n, loadv(c + n) + av * loadv(b + n));
        for (; n < N; n++) c[n] += a * b[n];
      }
    }
    return;
  }
  std::vector<float> Abuf((size_t)MC * KC + 16), Bbuf((size_t)NC * KC + 16);
  float* Ap = Abuf.data();
  float* Bp = Bbuf.data();
  for (int jc = 0; jc < N; jc += NC) {
    const int nc = std::min(NC, N - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      packB(Bp, B, pc, kc, jc, nc);
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = std::min(MC, M - ic);
        packA(Ap, A, ic, mc, pc, kc);
        for (int jr = 0; jr < nc; jr += NR) {
          const float* bp = Bp + (ptrdiff_t)(jr / NR) * kc * NR;
          for (int ir = 0; ir < mc; ir += MR) {
            micro(kc, Ap + (ptrdiff_t)(ir / MR) * kc * MR, bp, C + (ptrdiff_t)(ic + ir) * ldc + jc + jr, ldc,
                  std::min(MR, mc - ir), std::min(NR, nc - jr), alpha);
          }
        }
      }
    }
  }
}

// Never destroyed: its detached workers may still be parked on it while the process exits.
ChunkPool& pool() {
  static ChunkPool* p = new ChunkPool();
  return *p;
}

// Below this much work per extra thread (~40-100 µs of one core) a helper is not worth it: waking
// one costs microseconds, and on a busy machine a helper preempted inside its chunk can hold the
// whole product up for a scheduler time slice (milliseconds), which only a long product amortizes.
constexpr double FLOPS_PER_THREAD = 4e6;

// Splits the larger of M and N into chunks of whole micro-tiles (about four per thread, so a
// thread that starts late just takes fewer); every chunk packs its own panels, so threads share
// nothing but read-only inputs and disjoint parts of C.
void gemm(int M, int N, int K, Mat A, Mat B, float* C, ptrdiff_t ldc, int threads, float alpha = 1.f, bool accumulate = true) {
  const double flops = 2.0 * M * N * K;
  int nt = std::max(1, std::min(threads, (int)(flops / FLOPS_PER_THREAD)));
  const bool splitN = N >= M;
  const int unit = splitN ? NR : MR;
  const int extent = splitN ? N : M;
  const int units = (extent + unit - 1) / unit;
  nt = std::min(nt, units);
  if (nt <= 1) { gemmSerial(M, N, K, A, B, C, ldc, alpha, accumulate); return; }
  const int chunks = std::min(units, 4 * nt);
  pool().run(chunks, nt - 1, [&](int c) {
    const int lo = (int)((long long)units * c / chunks) * unit;
    const int hi = std::min((int)((long long)units * (c + 1) / chunks) * unit, extent);
    if (lo >= hi) return;
    if (splitN) {
      Mat b = B; b.p += (ptrdiff_t)lo * B.cs;
      gemmSerial(M, hi - lo, K, A, b, C + lo, ldc, alpha, accumulate);
    } else {
      Mat a = A; a.p += (ptrdiff_t)lo * A.rs;
      gemmSerial(hi - lo, N, K, a, B, C + (ptrdiff_t)lo * ldc, ldc, alpha, accumulate);
    }
  });
}

// A batch of equal-shaped products at given offsets (e.g. attention: one per head). Entries are
// the chunks when there are enough of them; otherwise each product is itself split.
void gemmBatch(int count, const int32_t* offs, int M, int N, int K, Mat A, Mat B, float* C, ptrdiff_t ldc, float alpha,
               bool accumulate, int threads) {
  auto one = [&](int e, int nt) {
    Mat a = A, b = B;
    a.p += offs[3 * e];
    b.p += offs[3 * e + 1];
    gemm(M, N, K, a, b, C + offs[3 * e + 2], ldc, nt, alpha, accumulate);
  };
  const double flops = 2.0 * M * N * K * count;
  const int nt = std::max(1, std::min({threads, count, (int)(flops / FLOPS_PER_THREAD)}));
  if (nt <= 1 || count < 2 * nt) {
    for (int e = 0; e < count; e++) one(e, threads);
    return;
  }
  pool().run(count, nt - 1, [&](int e) { one(e, 1); });
}

}  // namespace colony_kernels

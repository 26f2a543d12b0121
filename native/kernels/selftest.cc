// Stand-alone check of the GEMM core without Node: every layout the three kernels and gemmBatch
// use, odd sizes around the tile and block edges, 1-4 threads, against a double-precision loop.
// Lets the SIMD paths of other targets be checked by cross-compiling, e.g. the NEON path:
//   aarch64-linux-gnu-g++ -O3 -std=c++17 -static -pthread native/kernels/selftest.cc -o /tmp/st && qemu-aarch64 /tmp/st
//   g++ -O3 -march=native -std=c++17 -pthread native/kernels/selftest.cc -o /tmp/st && /tmp/st
#include <cmath>
#include <random>

#include "gemm.h"

using namespace colony_kernels;

int main() {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  const int sizes[][3] = {{1, 1, 1}, {1, 513, 77}, {3, 7, 5}, {7, 33, 17}, {9, 65, 257}, {97, 129, 300}, {130, 1031, 31}, {260, 70, 600}};
  int failures = 0, checks = 0;
  for (const auto& sz : sizes) {
    const int M = sz[0], N = sz[1], K = sz[2];
    for (int layout = 0; layout < 4; layout++) {
      // layout bit 0: A transposed in memory; bit 1: B transposed in memory (as in x·Wᵀ and dyᵀ·x)
      const bool ta = layout & 1, tb = layout & 2;
      std::vector<float> a((size_t)M * K), b((size_t)K * N), c((size_t)M * N);
      for (auto& v : a) v = dist(rng);
      for (auto& v : b) v = dist(rng);
      const Mat A{a.data(), ta ? 1 : K, ta ? M : 1};
      const Mat B{b.data(), tb ? 1 : N, tb ? K : 1};
      for (int threads = 1; threads <= 4; threads++) {
        for (auto& v : c) v = dist(rng);
        std::vector<float> c0 = c;
        const float alpha = threads == 3 ? -0.5f : 1.f;
        const bool acc = threads != 2;
        gemm(M, N, K, A, B, c.data(), N, threads, alpha, acc);
        checks++;
        for (int m = 0; m < M; m++) {
          for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)A.p[m * A.rs + k * A.cs] * B.p[k * B.rs + n * B.cs];
            const double want = (acc ? c0[(size_t)m * N + n] : 0.0) + alpha * s;
            const double got = c[(size_t)m * N + n];
            if (!(std::fabs(got - want) <= 1e-5 * std::sqrt((double)K + 1) * 4 * (1 + std::fabs(want)))) {
              if (failures++ < 5) std::printf("FAIL M=%d N=%d K=%d layout=%d threads=%d at (%d,%d): %g vs %g\n", M, N, K, layout, threads, m, n, got, want);
              m = M;
              break;
            }
          }
        }
      }
    }
  }
  // gemmBatch: 6 products of one strided layout at different offsets, entry-parallel and not.
  {
    const int M = 37, N = 45, K = 29, E = 6;
    std::vector<float> a((size_t)E * M * K), b((size_t)E * K * N), c((size_t)E * M * N);
    for (auto& v : a) v = dist(rng);
    for (auto& v : b) v = dist(rng);
    std::vector<int32_t> offs;
    for (int e = 0; e < E; e++) offs.insert(offs.end(), {e * M * K, e * K * N, e * M * N});
    for (int threads = 1; threads <= 4; threads++) {
      std::fill(c.begin(), c.end(), 0.f);
      gemmBatch(E, offs.data(), M, N, K, Mat{a.data(), K, 1}, Mat{b.data(), 1, K}, c.data(), N, 2.f, false, threads);
      checks++;
      for (int e = 0; e < E; e++)
        for (int m = 0; m < M; m++)
          for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)a[e * M * K + m * K + k] * b[e * K * N + n * K + k];
            if (!(std::fabs(c[e * M * N + m * N + n] - 2 * s) <= 1e-4 * (1 + std::fabs(2 * s)))) {
              if (failures++ < 5) std::printf("FAIL batch threads=%d entry %d\n", threads, e);
              m = M;
              n = N;
              e = E;
            }
          }
    }
  }
  std::printf("%s: %d products checked, %d failed\n", ISA, checks, failures);
  return failures ? 1 : 0;
}

// Node-API binding of the trainer kernels: the file trainer/kernels/native.ts compiles into an addon.
// The GEMM itself lives in gemm.h.

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "gemm.h"

#if __has_include(<node_api.h>) && !defined(COLONY_OWN_NAPI_DECLS)
#include <node_api.h>
#else
// No Node headers on this machine: declare the few Node-API (stable C ABI) entry points we use.
extern "C" {
typedef struct napi_env__* napi_env;
typedef struct napi_value__* napi_value;
typedef struct napi_callback_info__* napi_callback_info;
typedef int napi_status;  // napi_ok == 0
typedef int napi_typedarray_type;  // an enum in the real header; int-sized
typedef napi_value (*napi_callback)(napi_env, napi_callback_info);
static const napi_status napi_ok = 0;
static const napi_typedarray_type napi_int32_array = 5;
static const napi_typedarray_type napi_float32_array = 7;
napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t*, napi_value*, napi_value*, void**);
napi_status napi_get_typedarray_info(napi_env, napi_value, napi_typedarray_type*, size_t*, void**, napi_value*, size_t*);
napi_status napi_get_value_int32(napi_env, napi_value, int32_t*);
napi_status napi_get_value_double(napi_env, napi_value, double*);
napi_status napi_create_function(napi_env, const char*, size_t, napi_callback, void*, napi_value*);
napi_status napi_set_named_property(napi_env, napi_value, const char*, napi_value);
napi_status napi_throw_error(napi_env, const char*, const char*);
napi_status napi_create_string_utf8(napi_env, const char*, size_t, napi_value*);
}
#endif

using namespace colony_kernels;

namespace {

// ---- Node-API binding. The JS side validates shapes; these checks only keep memory safe. ----

bool f32(napi_env env, napi_value v, float** data, size_t* len) {
  napi_typedarray_type type;
  void* p = nullptr;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok || type != napi_float32_array) return false;
  *data = (float*)p;
  return true;
}

// args: (out, a, b, T, inDim, outDim, threads)
napi_value call(napi_env env, napi_callback_info info, int which) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 7) {
    napi_throw_error(env, "KERNEL_SHAPE_INVALID", "kernel: expected 7 arguments");
    return nullptr;
  }
  float *o, *a, *b;
  size_t lo, la, lb;
  int32_t T, in, out, threads;
  if (!f32(env, argv[0], &o, &lo) || !f32(env, argv[1], &a, &la) || !f32(env, argv[2], &b, &lb) ||
      napi_get_value_int32(env, argv[3], &T) != napi_ok || napi_get_value_int32(env, argv[4], &in) != napi_ok ||
      napi_get_value_int32(env, argv[5], &out) != napi_ok || napi_get_value_int32(env, argv[6], &threads) != napi_ok ||
      T < 0 || in < 0 || out < 0) {
    napi_throw_error(env, "KERNEL_SHAPE_INVALID", "kernel: bad argument types");
    return nullptr;
  }
  const size_t tI = (size_t)T * in, tO = (size_t)T * out, oI = (size_t)out * in;
  bool ok;
  switch (which) {
    case 0: ok = lo >= tO && la >= tI && lb >= oI; break;  // y, x, w
    case 1: ok = lo >= tI && la >= tO && lb >= oI; break;  // dx, dy, w
    default: ok = lo >= oI && la >= tO && lb >= tI; break;  // dw, dy, x
  }
  if (!ok) {
    napi_throw_error(env, "KERNEL_SHAPE_INVALID", "kernel: an array is shorter than its shape");
    return nullptr;
  }
  switch (which) {
    case 0:  // y[T,out] = x[T,in]·W^T: M=T, N=out, K=in; B(k=i, n=o) = W[o*in + i]
      std::memset(o, 0, tO * sizeof(float));
      gemm(T, out, in, Mat{a, in, 1}, Mat{b, 1, in}, o, out, threads);
      break;
    case 1:  // dx[T,in] += dy[T,out]·W: M=T, N=in, K=out
      gemm(T, in, out, Mat{a, out, 1}, Mat{b, in, 1}, o, in, threads);
      break;
    default:  // dW[out,in] += dy^T·x: M=out, N=in, K=T; A(m=o, k=t) = dy[t*out + o]
      gemm(out, in, T, Mat{a, 1, out}, Mat{b, in, 1}, o, in, threads);
      break;
  }
  return nullptr;
}

// Does an operand with `rows`×`cols` elements at offset/strides stay inside an array of len floats?
bool fits(int64_t off, int64_t rows, int64_t cols, int64_t rs, int64_t cs, size_t len) {
  if (off < 0 || rs < 0 || cs < 0) return false;
  if (rows == 0 || cols == 0) return true;
  return off + (rows - 1) * rs + (cols - 1) * cs < (int64_t)len;
}

// args: (c, a, b, offsets Int32Array[3*count], dims Int32Array[M,N,K,aRs,aCs,bRs,bCs,ldc,accumulate,threads], alpha)
napi_value batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  float *c, *a, *b;
  size_t lc, la, lb, lo, ld;
  int32_t *offs, *dims;
  double alpha;
  napi_typedarray_type t1, t2;
  void *p1, *p2;
  napi_value ab;
  size_t bo;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 6 || !f32(env, argv[0], &c, &lc) ||
      !f32(env, argv[1], &a, &la) || !f32(env, argv[2], &b, &lb) ||
      napi_get_typedarray_info(env, argv[3], &t1, &lo, &p1, &ab, &bo) != napi_ok || t1 != napi_int32_array ||
      napi_get_typedarray_info(env, argv[4], &t2, &ld, &p2, &ab, &bo) != napi_ok || t2 != napi_int32_array || ld < 10 ||
      lo % 3 != 0 || napi_get_value_double(env, argv[5], &alpha) != napi_ok) {
    napi_throw_error(env, "KERNEL_SHAPE_INVALID", "gemmBatch: bad argument types");
    return nullptr;
  }
  offs = (int32_t*)p1;
  dims = (int32_t*)p2;
  const int M = dims[0], N = dims[1], K = dims[2], ldc = dims[7];
  const bool accumulate = dims[8] != 0;
  const int threads = dims[9];
  const int count = (int)(lo / 3);
  if (M < 0 || N < 0 || K < 0 || ldc < N) {
    napi_throw_error(env, "KERNEL_SHAPE_INVALID", "gemmBatch: bad sizes");
    return nullptr;
  }
  for (int e = 0; e < count; e++) {
    if (!fits(offs[3 * e], M, K, dims[3], dims[4], la) || !fits(offs[3 * e + 1], K, N, dims[5], dims[6], lb) ||
        !fits(offs[3 * e + 2], M, N, ldc, 1, lc)) {
      napi_throw_error(env, "KERNEL_SHAPE_INVALID", "gemmBatch: an operand runs past its array");
      return nullptr;
    }
  }
  gemmBatch(count, offs, M, N, K, Mat{a, dims[3], dims[4]}, Mat{b, dims[5], dims[6]}, c, ldc, (float)alpha, accumulate, threads);
  return nullptr;
}

napi_value xwt(napi_env env, napi_callback_info info) { return call(env, info, 0); }
napi_value dyw(napi_env env, napi_callback_info info) { return call(env, info, 1); }
napi_value dytx(napi_env env, napi_callback_info info) { return call(env, info, 2); }

}  // namespace

extern "C" __attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value f;
  napi_create_function(env, "matmulXWt", 9, xwt, nullptr, &f);
  napi_set_named_property(env, exports, "matmulXWt", f);
  napi_create_function(env, "matmulDyW", 9, dyw, nullptr, &f);
  napi_set_named_property(env, exports, "matmulDyW", f);
  napi_create_function(env, "matmulDyTX", 10, dytx, nullptr, &f);
  napi_set_named_property(env, exports, "matmulDyTX", f);
  napi_create_function(env, "gemmBatch", 9, batch, nullptr, &f);
  napi_set_named_property(env, exports, "gemmBatch", f);
  char desc[64];
  std::snprintf(desc, sizeof desc, "%s lanes=%d mr=%d nr=%d", ISA, LANES, MR, NR);
  napi_create_string_utf8(env, desc, std::strlen(desc), &f);
  napi_set_named_property(env, exports, "isa", f);
  return exports;
}

#include "eltwise.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace eltwise {
namespace {

enum Op { kAdd = 0, kSub, kMul, kDiv, kSquaredDifference, kMaximum, kMinimum, kPrelu, kOpCount };

template <int OP>
inline float apply(float a, float b) {
  if constexpr (OP == kAdd) return a + b;
  if constexpr (OP == kSub) return a - b;
  if constexpr (OP == kMul) return a * b;
  if constexpr (OP == kDiv) return a / b;
  if constexpr (OP == kSquaredDifference) {
    float d = a - b;
    return d * d;
  }
  if constexpr (OP == kMaximum) return (a >= b || std::isnan(a)) ? a : b;
  if constexpr (OP == kMinimum) return (a <= b || std::isnan(a)) ? a : b;
  if constexpr (OP == kPrelu) return a < 0.f ? a * b : a;
  return 0.f;
}

// The innermost run: sa/sb are 1 (contiguous) or 0 (broadcast scalar).
template <int OP>
inline void run(const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n) {
  if (sa == 1 && sb == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(a[i], b[i]);
  } else if (sa == 1) {
    const float bv = b[0];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(a[i], bv);
  } else if (sb == 1) {
    const float av = a[0];
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(av, b[i]);
  } else {
    const float v = apply<OP>(a[0], b[0]);
    for (int64_t i = 0; i < n; i++) o[i] = v;
  }
}

// Walks the outer index space (every dim but the last) of two strided views: fn(row, offA, offB)
// with the element offsets of the row's first element in each (starting from a0 and b0).
template <typename Fn>
inline void forEachRow(int rank, const int64_t* dims, const int64_t* sa, const int64_t* sb, int64_t a0, int64_t b0,
                       Fn fn) {
  int64_t outer = 1;
  for (int d = 0; d < rank - 1; d++) outer *= dims[d];
  for (int64_t r = 0; r < outer; r++) {
    int64_t rem = r, offA = a0, offB = b0;
    for (int d = rank - 2; d >= 0; d--) {
      const int64_t idx = rem % dims[d];
      rem /= dims[d];
      offA += idx * sa[d];
      offB += idx * sb[d];
    }
    fn(r, offA, offB);
  }
}

// One innermost run per row. Single-threaded on purpose (see Reduce).
template <int OP>
void binary(const float* a, const float* b, float* o, int rank, const int64_t* dims, const int64_t* sa,
            const int64_t* sb) {
  const int64_t inner = dims[rank - 1];
  forEachRow(rank, dims, sa, sb, 0, 0, [&](int64_t r, int64_t offA, int64_t offB) {
    run<OP>(a + offA, sa[rank - 1], b + offB, sb[rank - 1], o + r * inner, inner);
  });
}

using BinaryFn = void (*)(const float*, const float*, float*, int, const int64_t*, const int64_t*, const int64_t*);
const BinaryFn kBinary[kOpCount] = {binary<kAdd>, binary<kSub>, binary<kMul>, binary<kDiv>,
                                    binary<kSquaredDifference>, binary<kMaximum>, binary<kMinimum>,
                                    binary<kPrelu>};

float* f32(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a Float32Array");
  }
  return v.As<Napi::Float32Array>().Data();
}

enum ReduceOp { kSum = 0, kMean, kMax, kMin };

enum CmpOp { kGreater = 0, kGreaterEqual, kLess, kLessEqual, kEqual, kNotEqual, kCmpCount };

template <int OP>
inline uint8_t cmp(float a, float b) {
  if constexpr (OP == kGreater) return a > b;
  if constexpr (OP == kGreaterEqual) return a >= b;
  if constexpr (OP == kLess) return a < b;
  if constexpr (OP == kLessEqual) return a <= b;
  if constexpr (OP == kEqual) return a == b;
  return a != b;
}

template <int OP>
void compare(const float* a, const float* b, uint8_t* o, int rank, const int64_t* dims, const int64_t* sa,
             const int64_t* sb) {
  const int64_t inner = dims[rank - 1];
  const int64_t ia = sa[rank - 1], ib = sb[rank - 1];
  forEachRow(rank, dims, sa, sb, 0, 0, [&](int64_t r, int64_t offA, int64_t offB) {
    const float* pa = a + offA;
    const float* pb = b + offB;
    uint8_t* po = o + r * inner;
    for (int64_t i = 0; i < inner; i++) po[i] = cmp<OP>(pa[i * ia], pb[i * ib]);
  });
}

using CmpFn = void (*)(const float*, const float*, uint8_t*, int, const int64_t*, const int64_t*, const int64_t*);
const CmpFn kCompare[kCmpCount] = {compare<kGreater>, compare<kGreaterEqual>, compare<kLess>,
                                   compare<kLessEqual>, compare<kEqual>,        compare<kNotEqual>};

std::vector<int64_t> geometry(const Napi::Value& v, int groups, int extra, int* rankOut) {
  auto g = v.As<Napi::Int32Array>();
  const int rank = g.ElementLength() > 0 ? g[0] : 0;
  if (rank < 1 || g.ElementLength() != static_cast<size_t>(1 + groups * rank + extra)) {
    throw Napi::RangeError::New(v.Env(), "bad geometry");
  }
  std::vector<int64_t> out(groups * rank + extra);
  for (size_t i = 0; i < out.size(); i++) out[i] = g[1 + i];
  *rankOut = rank;
  return out;
}

}  // namespace

// binary(op, a, b, out, geometry): geometry = [rank, dims..., aStrides..., bStrides...]
// (strides in elements, 0 where that operand broadcasts).
Napi::Value Binary(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const int op = info[0].As<Napi::Number>().Int32Value();
  if (op < 0 || op >= kOpCount) throw Napi::RangeError::New(env, "binary: unknown op");
  const float* a = f32(info[1], "a");
  const float* b = f32(info[2], "b");
  float* o = f32(info[3], "out");
  auto g = info[4].As<Napi::Int32Array>();
  const int rank = g[0];
  if (rank < 1 || g.ElementLength() != static_cast<size_t>(1 + 3 * rank)) {
    throw Napi::RangeError::New(env, "binary: bad geometry");
  }
  std::vector<int64_t> v(3 * rank);
  for (int i = 0; i < 3 * rank; i++) v[i] = g[1 + i];
  int64_t total = 1;
  for (int i = 0; i < rank; i++) total *= v[i];
  if (static_cast<int64_t>(info[3].As<Napi::Float32Array>().ElementLength()) < total) {
    throw Napi::RangeError::New(env, "binary: output too small");
  }
  if (total > 0) kBinary[op](a, b, o, rank, v.data(), v.data() + rank, v.data() + 2 * rank);
  return env.Undefined();
}

// compare(op, a, b, out: Uint8Array, geometry) — geometry as for binary.
Napi::Value Compare(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const int op = info[0].As<Napi::Number>().Int32Value();
  if (op < 0 || op >= kCmpCount) throw Napi::RangeError::New(env, "compare: unknown op");
  const float* a = f32(info[1], "a");
  const float* b = f32(info[2], "b");
  auto out = info[3].As<Napi::Uint8Array>();
  int rank = 0;
  auto v = geometry(info[4], 3, 0, &rank);
  int64_t total = 1;
  for (int i = 0; i < rank; i++) total *= v[i];
  if (static_cast<int64_t>(out.ElementLength()) < total) throw Napi::RangeError::New(env, "compare: output too small");
  if (total > 0) kCompare[op](a, b, out.Data(), rank, v.data(), v.data() + rank, v.data() + 2 * rank);
  return env.Undefined();
}

// select(cond: Uint8Array, t, e, out): same-shape where().
Napi::Value Select(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto cond = info[0].As<Napi::Uint8Array>();
  const float* t = f32(info[1], "t");
  const float* e = f32(info[2], "e");
  auto outArr = info[3].As<Napi::Float32Array>();
  const size_t n = outArr.ElementLength();
  if (cond.ElementLength() < n || info[1].As<Napi::Float32Array>().ElementLength() < n ||
      info[2].As<Napi::Float32Array>().ElementLength() < n) {
    throw Napi::RangeError::New(env, "select: arrays too small");
  }
  const uint8_t* c = cond.Data();
  float* o = outArr.Data();
#pragma omp simd
  for (size_t i = 0; i < n; i++) o[i] = c[i] ? t[i] : e[i];
  return env.Undefined();
}

// copy(src, dst, geometry): geometry = [rank, dims..., srcStrides..., dstStrides..., srcOffset, dstOffset].
// Slice, Transpose, Tile and the interior of PadV2 are all this walk.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const float* src = f32(info[0], "src");
  float* dst = f32(info[1], "dst");
  int rank = 0;
  auto v = geometry(info[2], 3, 2, &rank);
  const int64_t* dims = v.data();
  const int64_t* ss = v.data() + rank;
  const int64_t* ds = v.data() + 2 * rank;
  const int64_t s0 = v[3 * rank], d0 = v[3 * rank + 1];
  const int64_t srcLen = info[0].As<Napi::Float32Array>().ElementLength();
  const int64_t dstLen = info[1].As<Napi::Float32Array>().ElementLength();
  int64_t maxS = s0, maxD = d0;
  for (int d = 0; d < rank; d++) {
    if (dims[d] == 0) return env.Undefined();
    maxS += (dims[d] - 1) * ss[d];
    maxD += (dims[d] - 1) * ds[d];
  }
  if (maxS >= srcLen || maxD >= dstLen || s0 < 0 || d0 < 0) throw Napi::RangeError::New(env, "copy: out of bounds");
  const int64_t inner = dims[rank - 1], is = ss[rank - 1], id = ds[rank - 1];
  forEachRow(rank, dims, ss, ds, s0, d0, [&](int64_t, int64_t so, int64_t dof) {
    if (is == 1 && id == 1) {
      std::memcpy(dst + dof, src + so, static_cast<size_t>(inner) * sizeof(float));
    } else {
      for (int64_t i = 0; i < inner; i++) dst[dof + i * id] = src[so + i * is];
    }
  });
  return env.Undefined();
}

// reduce(op, x, out, outer, n, inner): out[o, i] = op over r < n of x[o, r, i]; accumulates in double.
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const int op = info[0].As<Napi::Number>().Int32Value();
  const float* x = f32(info[1], "x");
  float* out = f32(info[2], "out");
  const int64_t outer = info[3].As<Napi::Number>().Int64Value();
  const int64_t n = info[4].As<Napi::Number>().Int64Value();
  const int64_t inner = info[5].As<Napi::Number>().Int64Value();
  if (static_cast<int64_t>(info[1].As<Napi::Float32Array>().ElementLength()) < outer * n * inner ||
      static_cast<int64_t>(info[2].As<Napi::Float32Array>().ElementLength()) < outer * inner) {
    throw Napi::RangeError::New(env, "reduce: arrays too small");
  }
  // Memory-bound: one thread streams as fast as two here, and OpenMP barriers
  // cost whole scheduler slices on a loaded machine.
  const bool big = false;
  if (op == kSum || op == kMean) {
    const double scale = op == kMean ? 1.0 / static_cast<double>(n) : 1.0;
    if (inner == 1) {
#pragma omp parallel for if (big) schedule(static)
      for (int64_t o = 0; o < outer; o++) {
        const float* p = x + o * n;
        double s = 0;
        for (int64_t r = 0; r < n; r++) s += p[r];
        out[o] = static_cast<float>(s * scale);
      }
    } else {
      // Column sums: each thread accumulates a slice of rows into its own
      // double row, then the partial rows are added in thread order.
      const int threads = big ? omp_get_max_threads() : 1;
      for (int64_t o = 0; o < outer; o++) {
        std::vector<double> part(static_cast<size_t>(threads) * inner, 0.0);
        const float* base = x + o * n * inner;
#pragma omp parallel num_threads(threads)
        {
          const int t = omp_get_thread_num();
          const int nt = omp_get_num_threads();
          const int64_t r0 = n * t / nt, r1 = n * (t + 1) / nt;
          double* acc = part.data() + static_cast<size_t>(t) * inner;
          for (int64_t r = r0; r < r1; r++) {
            const float* row = base + r * inner;
#pragma omp simd
            for (int64_t i = 0; i < inner; i++) acc[i] += row[i];
          }
        }
        for (int64_t i = 0; i < inner; i++) {
          double s = 0;
          for (int t = 0; t < threads; t++) s += part[static_cast<size_t>(t) * inner + i];
          out[o * inner + i] = static_cast<float>(s * scale);
        }
      }
    }
  } else {
    const bool isMax = op == kMax;
#pragma omp parallel for if (big) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
      float* dst = out + o * inner;
      const float* base = x + o * n * inner;
      for (int64_t i = 0; i < inner; i++) dst[i] = base[i];
      for (int64_t r = 1; r < n; r++) {
        const float* row = base + r * inner;
        for (int64_t i = 0; i < inner; i++) {
          const float v = row[i];
          if (std::isnan(v) || (isMax ? v > dst[i] : v < dst[i])) dst[i] = v;
        }
      }
    }
  }
  return env.Undefined();
}

}  // namespace eltwise

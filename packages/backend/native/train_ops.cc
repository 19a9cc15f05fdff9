// Single-pass kernels of the training step that tfjs composes from several
// full-size element-wise ops: training-mode batch norm (forward with batch
// statistics, backward), alone or fused with the PReLU after it, PReLU's
// backward, and the SGD / Adam updates. Every kernel repeats the float32
// operations of the composite it replaces, in the same order, and its
// reductions are the same in-order double sums as eltwise.cc's, so results are
// bit-identical to the composites' (built with -ffp-contract=off: no FMA).
// They are compute-bound, not memory-bound (a [8,64,64,64] batch norm + PReLU
// backward took 40 ms single-threaded with data-dependent branches), so they
// are branch-free (built with -fno-trapping-math, which lets GCC turn the
// selects into blends and changes no result), vectorised per ISA, and split
// over the OpenMP threads by channel blocks (batch norm) or index ranges
// (optimizers), which keeps every sum's order and so every bit: 2.0 ms now.
#include "train_ops.h"

#include "signal_guard.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace train_ops {
namespace {

struct F32 {
  float* data;
  int64_t length;
};

F32 f32(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Float32Array");
  }
  auto a = v.As<Napi::Float32Array>();
  return {a.Data(), static_cast<int64_t>(a.ElementLength())};
}

void need(const Napi::Env& env, const F32& a, int64_t n, const char* fn, const char* what) {
  if (a.length != n) {
    throw Napi::RangeError::New(env, std::string(fn) + ": " + what + " has " + std::to_string(a.length) +
                                         " elements, expected " + std::to_string(n));
  }
}

int64_t channels(const Napi::Value& v, int64_t size, const char* fn) {
  const int64_t c = v.As<Napi::Number>().Int64Value();
  if (c < 1 || size % c != 0) throw Napi::RangeError::New(v.Env(), std::string(fn) + ": bad channel count");
  return c;
}

}  // namespace

namespace {

// The batch norm kernels repeat, value for value, the composite ops of the model's BatchNorm on
// this backend (tf.moments, rsqrt, the analytic backward of packages/model/src/nn/batchnorm.ts):
// each float32 operation in the same order, each reduction a double sum over rows in order scaled
// as eltwise.cc's Mean/Sum scale it. Their results are therefore bit-identical to the composites',
// which track PyTorch's float32 batch norm closely (the trainer's parity test holds us to it).

// The loops below run over x viewed as [n rows, C channels] for one block of channels [c0, c1): every
// channel's sums stay in-order double sums over the rows, so splitting the channels between threads
// (forChannelBlocks) leaves every result's bits unchanged. The selects are written as multiplications
// by a selected factor (y·1 = y exactly), so the loops vectorise without masked arithmetic; each loop
// is compiled for AVX-512, AVX2 and the baseline, picked at load time (target_clones).
#define MTL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// At least this many elements before a kernel wakes a second thread.
constexpr int64_t kParallelMin = int64_t{1} << 16;

// Runs f(c0, c1) over blocks of whole 16-channel groups (64 bytes of a row: threads never write to
// one cache line), one block per thread.
template <typename F>
void forChannelBlocks(int64_t n, int64_t C, F&& f) {
  const int64_t groups = C / 16;
  int blocks = 1;
  if (n * C >= kParallelMin && groups >= 2) blocks = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), groups));
  if (blocks <= 1) {
    f(int64_t{0}, C);
    return;
  }
  SignalGuard noSignals;  // an OpenMP thread started here keeps the mask (signal_guard.h)
#pragma omp parallel for num_threads(blocks) schedule(static, 1)
  for (int b = 0; b < blocks; b++) {
    const int64_t c0 = groups * b / blocks * 16;
    const int64_t c1 = b == blocks - 1 ? C : groups * (b + 1) / blocks * 16;
    f(c0, c1);
  }
}

// Runs f(i0, i1) over contiguous ranges of [0, n) (multiples of 16 elements), one per thread.
template <typename F>
void forRanges(int64_t n, F&& f) {
  const int blocks = n >= kParallelMin ? omp_get_max_threads() : 1;
  if (blocks <= 1) {
    f(int64_t{0}, n);
    return;
  }
  SignalGuard noSignals;
  const int64_t groups = (n + 15) / 16;
#pragma omp parallel for num_threads(blocks) schedule(static, 1)
  for (int b = 0; b < blocks; b++) {
    const int64_t i0 = std::min(n, groups * b / blocks * 16);
    const int64_t i1 = b == blocks - 1 ? n : std::min(n, groups * (b + 1) / blocks * 16);
    f(i0, i1);
  }
}

}  // namespace

namespace kernels {

// Per-channel batch statistics of channels [c0, c1): mean, the biased variance, invStd.
MTL_CLONES void batchStats(const float* x, int64_t n, int64_t C, int64_t c0, int64_t c1, double eps, float* mean,
                           float* var, float* inv) {
  const int64_t w = c1 - c0;
  const double scale = 1.0 / static_cast<double>(n);
  std::vector<double> s(w, 0.0), q(w, 0.0);
  double* sp = s.data();
  double* qp = q.data();
  for (int64_t r = 0; r < n; r++) {
    const float* row = x + r * C + c0;
#pragma omp simd
    for (int64_t c = 0; c < w; c++) sp[c] += row[c];
  }
  for (int64_t c = 0; c < w; c++) mean[c0 + c] = static_cast<float>(sp[c] * scale);
  const float* m = mean + c0;
  for (int64_t r = 0; r < n; r++) {
    const float* row = x + r * C + c0;
#pragma omp simd
    for (int64_t c = 0; c < w; c++) {
      const float d = row[c] - m[c];
      qp[c] += d * d;
    }
  }
  const float epsf = static_cast<float>(eps);
  for (int64_t c = c0; c < c1; c++) {
    var[c] = static_cast<float>(q[c - c0] * scale);
    inv[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[c] + epsf)));
  }
}

// y = ((x − mean)·invStd)·scale + offset, then PReLU (z = y < 0 ? y·alpha : y) when alpha is given.
MTL_CLONES void normalise(const float* x, int64_t n, int64_t C, int64_t c0, int64_t c1, const float* m,
                          const float* is, const float* wc, const float* bc, const float* alpha, float* out) {
  const int64_t w = c1 - c0;
  m += c0, is += c0, wc += c0, bc += c0;
  if (alpha == nullptr) {
    for (int64_t r = 0; r < n; r++) {
      const float* row = x + r * C + c0;
      float* o = out + r * C + c0;
#pragma omp simd
      for (int64_t c = 0; c < w; c++) o[c] = (row[c] - m[c]) * is[c] * wc[c] + bc[c];
    }
    return;
  }
  const float* a = alpha + c0;
  for (int64_t r = 0; r < n; r++) {
    const float* row = x + r * C + c0;
    float* o = out + r * C + c0;
#pragma omp simd
    for (int64_t c = 0; c < w; c++) {
      const float y = (row[c] - m[c]) * is[c] * wc[c] + bc[c];
      const float ac = a[c];
      o[c] = y * (y < 0.f ? ac : 1.f);
    }
  }
}

// The batch norm's backward for channels [c0, c1), with x̂ = (x − mean)·invStd and dx̂ = dy·scale:
// dx = ((dx̂ − mean(dx̂)) − x̂·mean(dx̂·x̂))·invStd, dScale = Σ dy·x̂, dOffset = Σ dy. With alpha (the fused
// PReLU after it), dy = dz·(y > 0 ? 1 : alpha) for y = x̂·scale + offset, and dAlpha = Σ (y > 0 ? 0 : dz·y).
MTL_CLONES void batchNormGrad(const float* x, const float* g, int64_t n, int64_t C, int64_t c0, int64_t c1,
                              const float* wc, const float* bc, const float* alpha, const float* m, const float* is,
                              float* dx, float* dw, float* db, float* da) {
  const int64_t w = c1 - c0;
  const double scale = 1.0 / static_cast<double>(n);
  std::vector<double> acc(5 * w, 0.0);
  double *s1 = acc.data(), *s2 = s1 + w, *s3 = s2 + w, *s4 = s3 + w, *sa = s4 + w;
  m += c0, is += c0, wc += c0;
  const bool fused = alpha != nullptr;
  const float* bo = fused ? bc + c0 : nullptr;
  const float* a = fused ? alpha + c0 : nullptr;
  for (int64_t r = 0; r < n; r++) {
    const float* xr = x + r * C + c0;
    const float* gr = g + r * C + c0;
    if (fused) {
#pragma omp simd
      for (int64_t c = 0; c < w; c++) {
        const float xh = (xr[c] - m[c]) * is[c];
        const float y = xh * wc[c] + bo[c];
        const float gz = gr[c];
        const float ac = a[c];
        const double t = static_cast<double>(gz * y);
        sa[c] += y > 0.f ? 0.0 : t;
        const float gy = gz * (y > 0.f ? 1.f : ac);
        const float dxh = gy * wc[c];
        s1[c] += dxh;
        s2[c] += dxh * xh;
        s3[c] += gy * xh;
        s4[c] += gy;
      }
    } else {
#pragma omp simd
      for (int64_t c = 0; c < w; c++) {
        const float xh = (xr[c] - m[c]) * is[c];
        const float gy = gr[c];
        const float dxh = gy * wc[c];
        s1[c] += dxh;
        s2[c] += dxh * xh;
        s3[c] += gy * xh;
        s4[c] += gy;
      }
    }
  }
  std::vector<float> mm(2 * w);
  float *m1 = mm.data(), *m2 = m1 + w;
  for (int64_t c = 0; c < w; c++) {
    m1[c] = static_cast<float>(s1[c] * scale);
    m2[c] = static_cast<float>(s2[c] * scale);
    dw[c0 + c] = static_cast<float>(s3[c]);
    db[c0 + c] = static_cast<float>(s4[c]);
    if (fused) da[c0 + c] = static_cast<float>(sa[c]);
  }
  for (int64_t r = 0; r < n; r++) {
    const float* xr = x + r * C + c0;
    const float* gr = g + r * C + c0;
    float* out = dx + r * C + c0;
    if (fused) {
#pragma omp simd
      for (int64_t c = 0; c < w; c++) {
        const float xh = (xr[c] - m[c]) * is[c];
        const float y = xh * wc[c] + bo[c];
        const float ac = a[c];
        const float dxh = gr[c] * (y > 0.f ? 1.f : ac) * wc[c];
        out[c] = ((dxh - m1[c]) - xh * m2[c]) * is[c];
      }
    } else {
#pragma omp simd
      for (int64_t c = 0; c < w; c++) {
        const float xh = (xr[c] - m[c]) * is[c];
        const float dxh = gr[c] * wc[c];
        out[c] = ((dxh - m1[c]) - xh * m2[c]) * is[c];
      }
    }
  }
}

// dx = x > 0 ? dy : dy·alpha; dAlpha = Σ (x > 0 ? 0 : dy·x), for channels [c0, c1).
MTL_CLONES void preluGrad(const float* x, const float* g, const float* alpha, int64_t n, int64_t C, int64_t c0,
                          int64_t c1, float* dx, float* da) {
  const int64_t w = c1 - c0;
  std::vector<double> s(w, 0.0);
  double* sp = s.data();
  const float* a = alpha + c0;
  for (int64_t r = 0; r < n; r++) {
    const float* xr = x + r * C + c0;
    const float* gr = g + r * C + c0;
    float* out = dx + r * C + c0;
#pragma omp simd
    for (int64_t c = 0; c < w; c++) {
      const float xv = xr[c], gv = gr[c], ac = a[c];
      const bool pos = xv > 0.f;
      out[c] = gv * (pos ? 1.f : ac);
      const double t = static_cast<double>(gv * xv);
      sp[c] += pos ? 0.0 : t;
    }
  }
  for (int64_t c = 0; c < w; c++) da[c0 + c] = static_cast<float>(sp[c]);
}

// SGD over [i0, i1): d = g + p·wd (decay); buf' = buf ? buf·m + d : d (bufOut); p' = p − d'·lr.
MTL_CLONES void sgd(const float* pp, const float* gg, const float* buf, float* bo, float* po, int64_t i0, int64_t i1,
                    bool decay, float wd, float mom, float lr) {
  // The branches are loop-invariant: each case is its own vectorised loop.
  if (decay && bo && buf) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
      const float d = buf[i] * mom + (gg[i] + pp[i] * wd);
      bo[i] = d;
      po[i] = pp[i] - d * lr;
    }
  } else if (decay && bo) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
      const float d = gg[i] + pp[i] * wd;
      bo[i] = d;
      po[i] = pp[i] - d * lr;
    }
  } else if (decay) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) po[i] = pp[i] - (gg[i] + pp[i] * wd) * lr;
  } else if (bo && buf) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
      const float d = buf[i] * mom + gg[i];
      bo[i] = d;
      po[i] = pp[i] - d * lr;
    }
  } else if (bo) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
      bo[i] = gg[i];
      po[i] = pp[i] - gg[i] * lr;
    }
  } else {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) po[i] = pp[i] - gg[i] * lr;
  }
}

// torch 1.13's single-tensor Adam in tfjs's float32 operations over [i0, i1) (m, v = 0 when null).
MTL_CLONES void adam(const float* p, const float* g, const float* m, const float* v, float* po, float* mo, float* vo,
                     int64_t i0, int64_t i1, bool decay, float wd, float b1, float b2, float ob1, float ob2,
                     float bc2, float eps, float stepSize) {
#pragma omp simd
  for (int64_t i = i0; i < i1; i++) {
    const float gi = decay ? g[i] + p[i] * wd : g[i];
    const float m0 = m ? m[i] : 0.f, v0 = v ? v[i] : 0.f;
    const float mi = m0 * b1 + gi * ob1;
    const float vi = v0 * b2 + (gi * gi) * ob2;
    mo[i] = mi;
    vo[i] = vi;
    const float denom = std::sqrt(vi) / bc2 + eps;
    po[i] = p[i] - (mi / denom) * stepSize;
  }
}

}  // namespace kernels

namespace {

// The two forwards, batchNorm[Prelu]Forward(x, scale, offset, [alpha,] y, mean, invStd, variance, channels,
// eps), x viewed as [n, C]: y = ((x − mean)·invStd)·scale + offset with the batch mean and biased variance,
// then z = prelu(y) when alpha is given (the batch norm's output is then never stored: the backward
// recomputes it from x, the same bits).
Napi::Value bnForward(const Napi::CallbackInfo& info, const char* fn, bool prelu) {
  auto env = info.Env();
  const int k = prelu ? 1 : 0;
  const F32 x = f32(info[0], "x"), w = f32(info[1], "scale"), b = f32(info[2], "offset");
  const F32 al = prelu ? f32(info[3], "alpha") : F32{nullptr, 0};
  const F32 y = f32(info[3 + k], prelu ? "z" : "y"), mean = f32(info[4 + k], "mean"),
            inv = f32(info[5 + k], "invStd"), var = f32(info[6 + k], "variance");
  const int64_t C = channels(info[7 + k], x.length, fn);
  const double eps = info[8 + k].As<Napi::Number>().DoubleValue();
  const int64_t n = x.length / C;
  for (const F32* a : {&w, &b, &mean, &inv, &var}) need(env, *a, C, fn, "a [C] array");
  if (prelu) need(env, al, C, fn, "alpha");
  need(env, y, x.length, fn, prelu ? "z" : "y");
  forChannelBlocks(n, C, [&](int64_t c0, int64_t c1) {
    kernels::batchStats(x.data, n, C, c0, c1, eps, mean.data, var.data, inv.data);
    kernels::normalise(x.data, n, C, c0, c1, mean.data, inv.data, w.data, b.data, al.data, y.data);
  });
  return env.Undefined();
}

}  // namespace

Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  return bnForward(info, "batchNormForward", false);
}

Napi::Value BatchNormPreluForward(const Napi::CallbackInfo& info) {
  return bnForward(info, "batchNormPreluForward", true);
}

// batchNormBackward(x, dy, scale, mean, invStd, dx, dScale, dOffset, channels): with x̂ = (x − mean)·invStd
// and dx̂ = dy·scale: dx = ((dx̂ − mean(dx̂)) − x̂·mean(dx̂·x̂))·invStd, dScale = Σ dy·x̂, dOffset = Σ dy.
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const F32 x = f32(info[0], "x"), dy = f32(info[1], "dy"), w = f32(info[2], "scale"), mean = f32(info[3], "mean");
  const F32 inv = f32(info[4], "invStd"), dx = f32(info[5], "dx"), dw = f32(info[6], "dScale"),
            db = f32(info[7], "dOffset");
  const int64_t C = channels(info[8], x.length, "batchNormBackward");
  const int64_t n = x.length / C;
  for (const F32* a : {&w, &mean, &inv, &dw, &db}) need(env, *a, C, "batchNormBackward", "a [C] array");
  need(env, dy, x.length, "batchNormBackward", "dy");
  need(env, dx, x.length, "batchNormBackward", "dx");
  forChannelBlocks(n, C, [&](int64_t c0, int64_t c1) {
    kernels::batchNormGrad(x.data, dy.data, n, C, c0, c1, w.data, nullptr, nullptr, mean.data, inv.data, dx.data,
                           dw.data, db.data, nullptr);
  });
  return env.Undefined();
}

// batchNormPreluBackward(x, dz, scale, offset, alpha, mean, invStd, dx, dScale, dOffset, dAlpha, channels):
// the backward of z = prelu(y), y = bn(x): dy = y > 0 ? dz : dz·alpha, dAlpha = Σ (y > 0 ? 0 : dz·y), then
// the batch norm's backward of dy; y recomputed from x (bitwise the forward's).
Napi::Value BatchNormPreluBackward(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const F32 x = f32(info[0], "x"), dz = f32(info[1], "dz"), w = f32(info[2], "scale"), b = f32(info[3], "offset");
  const F32 al = f32(info[4], "alpha"), mean = f32(info[5], "mean"), inv = f32(info[6], "invStd");
  const F32 dx = f32(info[7], "dx"), dw = f32(info[8], "dScale"), db = f32(info[9], "dOffset"),
            da = f32(info[10], "dAlpha");
  const int64_t C = channels(info[11], x.length, "batchNormPreluBackward");
  const int64_t n = x.length / C;
  for (const F32* a : {&w, &b, &al, &mean, &inv, &dw, &db, &da})
    need(env, *a, C, "batchNormPreluBackward", "a [C] array");
  need(env, dz, x.length, "batchNormPreluBackward", "dz");
  need(env, dx, x.length, "batchNormPreluBackward", "dx");
  forChannelBlocks(n, C, [&](int64_t c0, int64_t c1) {
    kernels::batchNormGrad(x.data, dz.data, n, C, c0, c1, w.data, b.data, al.data, mean.data, inv.data, dx.data,
                           dw.data, db.data, da.data);
  });
  return env.Undefined();
}

// preluBackward(x, alpha, dy, dx, dAlpha, channels): dx = x > 0 ? dy : dy·alpha; dAlpha = Σ (x > 0 ? 0 : dy·x),
// as tfjs's Prelu gradient (Greater, Select, Multiply, ZerosLike, Sum) computes them.
Napi::Value PreluBackward(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const F32 x = f32(info[0], "x"), al = f32(info[1], "alpha"), dy = f32(info[2], "dy"), dx = f32(info[3], "dx"),
            da = f32(info[4], "dAlpha");
  const int64_t C = channels(info[5], x.length, "preluBackward");
  const int64_t n = x.length / C;
  need(env, al, C, "preluBackward", "alpha");
  need(env, da, C, "preluBackward", "dAlpha");
  need(env, dy, x.length, "preluBackward", "dy");
  need(env, dx, x.length, "preluBackward", "dx");
  forChannelBlocks(n, C, [&](int64_t c0, int64_t c1) {
    kernels::preluGrad(x.data, dy.data, al.data, n, C, c0, c1, dx.data, da.data);
  });
  return env.Undefined();
}

// sgdStep(param, grad, buf | null, paramOut, bufOut | null, weightDecay, momentum, lr):
// d = g + p·wd (wd ≠ 0); buf' = buf ? buf·m + d : d (m ≠ 0); p' = p − d'·lr. Scalars are float32, as tfjs's.
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const F32 p = f32(info[0], "param"), g = f32(info[1], "grad"), po = f32(info[3], "paramOut");
  const bool hasBuf = !info[2].IsNull(), hasBufOut = !info[4].IsNull();
  const float wd = static_cast<float>(info[5].As<Napi::Number>().DoubleValue());
  const float mom = static_cast<float>(info[6].As<Napi::Number>().DoubleValue());
  const float lr = static_cast<float>(info[7].As<Napi::Number>().DoubleValue());
  const int64_t n = p.length;
  need(env, g, n, "sgdStep", "grad");
  need(env, po, n, "sgdStep", "paramOut");
  F32 buf{nullptr, 0}, bo{nullptr, 0};
  if (hasBuf) need(env, buf = f32(info[2], "buf"), n, "sgdStep", "buf");
  if (hasBufOut) need(env, bo = f32(info[4], "bufOut"), n, "sgdStep", "bufOut");
  if (hasBuf && !hasBufOut) throw Napi::TypeError::New(env, "sgdStep: buf without bufOut");
  const bool decay = info[5].As<Napi::Number>().DoubleValue() != 0.0;  // as the composite's test
  forRanges(n, [&](int64_t i0, int64_t i1) {
    kernels::sgd(p.data, g.data, hasBuf ? buf.data : nullptr, hasBufOut ? bo.data : nullptr, po.data, i0, i1,
                 decay, wd, mom, lr);
  });
  return env.Undefined();
}

// adamStep(param, grad, m | null, v | null, paramOut, mOut, vOut, weightDecay, beta1, beta2, bc2Sqrt, eps, stepSize):
// torch 1.13's single-tensor Adam in tfjs's float32 operations (m, v = 0 when null).
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const F32 p = f32(info[0], "param"), g = f32(info[1], "grad");
  const bool hasM = !info[2].IsNull(), hasV = !info[3].IsNull();
  const F32 po = f32(info[4], "paramOut"), mo = f32(info[5], "mOut"), vo = f32(info[6], "vOut");
  auto num = [&](int i) { return static_cast<float>(info[i].As<Napi::Number>().DoubleValue()); };
  const float wd = num(7), b1 = num(8), b2 = num(9), bc2 = num(10), eps = num(11), stepSize = num(12);
  const float ob1 = static_cast<float>(1.0 - info[8].As<Napi::Number>().DoubleValue());
  const float ob2 = static_cast<float>(1.0 - info[9].As<Napi::Number>().DoubleValue());
  const int64_t n = p.length;
  need(env, g, n, "adamStep", "grad");
  for (const F32* a : {&po, &mo, &vo}) need(env, *a, n, "adamStep", "an output");
  F32 m{nullptr, 0}, v{nullptr, 0};
  if (hasM) need(env, m = f32(info[2], "m"), n, "adamStep", "m");
  if (hasV) need(env, v = f32(info[3], "v"), n, "adamStep", "v");
  const bool decay = info[7].As<Napi::Number>().DoubleValue() != 0.0;
  forRanges(n, [&](int64_t i0, int64_t i1) {
    kernels::adam(p.data, g.data, hasM ? m.data : nullptr, hasV ? v.data : nullptr, po.data, mo.data, vo.data, i0,
                  i1, decay, wd, b1, b2, ob1, ob2, bc2, eps, stepSize);
  });
  return env.Undefined();
}

}  // namespace train_ops

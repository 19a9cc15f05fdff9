// Single-pass kernels of the training step that tfjs composes from several
// full-size element-wise ops: training-mode batch norm (forward with batch
// statistics, backward), alone or fused with the PReLU after it, PReLU's
// backward, and the SGD / Adam updates. Single-threaded like the element-wise
// loops (memory-bound; see eltwise.cc). Every kernel repeats the float32
// operations of the composite it replaces, in the same order, and its
// reductions are the same in-order double sums as eltwise.cc's, so results are
// bit-identical to the composites' (built with -ffp-contract=off: no FMA).
#include "train_ops.h"

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

// Per-channel batch statistics of x viewed as [n, C]: mean, the biased variance, invStd.
void batchStats(const float* x, int64_t n, int64_t C, double eps, float* mean, float* var, float* inv) {
  const double scale = 1.0 / static_cast<double>(n);
  std::vector<double> s(C, 0.0), q(C, 0.0);
  for (int64_t r = 0; r < n; r++) {
    const float* row = x + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) s[c] += row[c];
  }
  for (int64_t c = 0; c < C; c++) mean[c] = static_cast<float>(s[c] * scale);
  for (int64_t r = 0; r < n; r++) {
    const float* row = x + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      const float d = row[c] - mean[c];
      q[c] += d * d;
    }
  }
  const float epsf = static_cast<float>(eps);
  for (int64_t c = 0; c < C; c++) {
    var[c] = static_cast<float>(q[c] * scale);
    inv[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[c] + epsf)));
  }
}

inline float normalised(float x, float m, float inv) { return (x - m) * inv; }

// The backward of the batch norm for one channel block, given dy through `dyOf(r, c)`.
template <typename DyOf>
void batchNormGrad(const float* x, int64_t n, int64_t C, const float* w, const float* m, const float* inv,
                   float* dx, float* dw, float* db, DyOf dyOf) {
  const double scale = 1.0 / static_cast<double>(n);
  std::vector<double> s1(C, 0.0), s2(C, 0.0), s3(C, 0.0), s4(C, 0.0);
  for (int64_t r = 0; r < n; r++) {
    const float* xr = x + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      const float g = dyOf(r, c);
      const float xh = normalised(xr[c], m[c], inv[c]);
      const float dxh = g * w[c];
      s1[c] += dxh;
      s2[c] += dxh * xh;
      s3[c] += g * xh;
      s4[c] += g;
    }
  }
  std::vector<float> m1(C), m2(C);
  for (int64_t c = 0; c < C; c++) {
    m1[c] = static_cast<float>(s1[c] * scale);
    m2[c] = static_cast<float>(s2[c] * scale);
    dw[c] = static_cast<float>(s3[c]);
    db[c] = static_cast<float>(s4[c]);
  }
  for (int64_t r = 0; r < n; r++) {
    const float* xr = x + r * C;
    float* out = dx + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      const float xh = normalised(xr[c], m[c], inv[c]);
      const float dxh = dyOf(r, c) * w[c];
      out[c] = ((dxh - m1[c]) - xh * m2[c]) * inv[c];
    }
  }
}

}  // namespace

// batchNormForward(x, scale, offset, y, mean, invStd, variance, channels, eps): x viewed as [n, C];
// y = ((x − mean)·invStd)·scale + offset with the batch mean and biased variance.
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const F32 x = f32(info[0], "x"), w = f32(info[1], "scale"), b = f32(info[2], "offset"), y = f32(info[3], "y");
  const F32 mean = f32(info[4], "mean"), inv = f32(info[5], "invStd"), var = f32(info[6], "variance");
  const int64_t C = channels(info[7], x.length, "batchNormForward");
  const double eps = info[8].As<Napi::Number>().DoubleValue();
  const int64_t n = x.length / C;
  for (const F32* a : {&w, &b, &mean, &inv, &var}) need(env, *a, C, "batchNormForward", "a [C] array");
  need(env, y, x.length, "batchNormForward", "y");
  batchStats(x.data, n, C, eps, mean.data, var.data, inv.data);
  const float *m = mean.data, *is = inv.data, *wc = w.data, *bc = b.data;
  for (int64_t r = 0; r < n; r++) {
    const float* row = x.data + r * C;
    float* out = y.data + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) out[c] = normalised(row[c], m[c], is[c]) * wc[c] + bc[c];
  }
  return env.Undefined();
}

// batchNormPreluForward(x, scale, offset, alpha, z, mean, invStd, variance, channels, eps): z = prelu(bn(x)),
// the batch norm's output never stored (the backward recomputes it from x, the same bits).
Napi::Value BatchNormPreluForward(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const F32 x = f32(info[0], "x"), w = f32(info[1], "scale"), b = f32(info[2], "offset"), al = f32(info[3], "alpha");
  const F32 z = f32(info[4], "z"), mean = f32(info[5], "mean"), inv = f32(info[6], "invStd"),
            var = f32(info[7], "variance");
  const int64_t C = channels(info[8], x.length, "batchNormPreluForward");
  const double eps = info[9].As<Napi::Number>().DoubleValue();
  const int64_t n = x.length / C;
  for (const F32* a : {&w, &b, &al, &mean, &inv, &var}) need(env, *a, C, "batchNormPreluForward", "a [C] array");
  need(env, z, x.length, "batchNormPreluForward", "z");
  batchStats(x.data, n, C, eps, mean.data, var.data, inv.data);
  const float *m = mean.data, *is = inv.data, *wc = w.data, *bc = b.data, *a = al.data;
  for (int64_t r = 0; r < n; r++) {
    const float* row = x.data + r * C;
    float* out = z.data + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      const float y = normalised(row[c], m[c], is[c]) * wc[c] + bc[c];
      out[c] = y < 0.f ? y * a[c] : y;
    }
  }
  return env.Undefined();
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
  const float* g = dy.data;
  batchNormGrad(x.data, n, C, w.data, mean.data, inv.data, dx.data, dw.data, db.data,
                [g, C](int64_t r, int64_t c) { return g[r * C + c]; });
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
  const float *xs = x.data, *gz = dz.data, *m = mean.data, *is = inv.data, *wc = w.data, *bc = b.data,
              *a = al.data;
  std::vector<double> sa(C, 0.0);
  for (int64_t r = 0; r < n; r++) {
    const float* xr = xs + r * C;
    const float* gr = gz + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      const float y = normalised(xr[c], m[c], is[c]) * wc[c] + bc[c];
      sa[c] += y > 0.f ? 0.0 : static_cast<double>(gr[c] * y);
    }
  }
  for (int64_t c = 0; c < C; c++) da.data[c] = static_cast<float>(sa[c]);
  auto dyOf = [=](int64_t r, int64_t c) {
    const int64_t i = r * C + c;
    const float y = normalised(xs[i], m[c], is[c]) * wc[c] + bc[c];
    return y > 0.f ? gz[i] : gz[i] * a[c];
  };
  batchNormGrad(xs, n, C, wc, m, is, dx.data, dw.data, db.data, dyOf);
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
  std::vector<double> s(C, 0.0);
  const float* a = al.data;
  for (int64_t r = 0; r < n; r++) {
    const float* xr = x.data + r * C;
    const float* gr = dy.data + r * C;
    float* out = dx.data + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      const bool pos = xr[c] > 0.f;
      out[c] = pos ? gr[c] : gr[c] * a[c];
      s[c] += pos ? 0.0 : static_cast<double>(gr[c] * xr[c]);
    }
  }
  for (int64_t c = 0; c < C; c++) da.data[c] = static_cast<float>(s[c]);
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
  const float* pp = p.data;
  const float* gg = g.data;
  for (int64_t i = 0; i < n; i++) {
    float d = gg[i];
    if (decay) d = d + pp[i] * wd;
    if (hasBufOut) {
      if (hasBuf) d = buf.data[i] * mom + d;
      bo.data[i] = d;
    }
    po.data[i] = pp[i] - d * lr;
  }
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
  for (int64_t i = 0; i < n; i++) {
    float gi = g.data[i];
    if (decay) gi = gi + p.data[i] * wd;
    const float m0 = hasM ? m.data[i] : 0.f, v0 = hasV ? v.data[i] : 0.f;
    const float mi = m0 * b1 + gi * ob1;
    const float vi = v0 * b2 + (gi * gi) * ob2;
    mo.data[i] = mi;
    vo.data[i] = vi;
    const float denom = std::sqrt(vi) / bc2 + eps;
    po.data[i] = p.data[i] - (mi / denom) * stepSize;
  }
  return env.Undefined();
}

}  // namespace train_ops

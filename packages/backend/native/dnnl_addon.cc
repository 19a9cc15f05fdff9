// N-API addon: synchronous oneDNN kernels over caller-owned Float32Arrays.
//
// Activations stay NHWC and are passed to oneDNN by pointer (no copies);
// filters are tfjs HWIO and are reordered into whatever blocked layout the
// chosen implementation wants. Primitives (and their reorders and scratch
// weights) are cached by shape, so a training step creates nothing after the
// first one.
#include <napi.h>

#include <dnnl.hpp>

#include "eltwise.h"
#include "signal_guard.h"
#include "train_ops.h"

#include <malloc.h>

#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

engine& cpuEngine() {
  static engine e(engine::kind::cpu, 0);
  return e;
}

stream& cpuStream() {
  static stream s(cpuEngine());
  return s;
}

// Convolution geometry, tfjs conventions (dilation 1 = dense).
struct ConvShape {
  int64_t n, h, w, c, kh, kw, co, oh, ow, sh, sw, pt, pb, pl, pr, dh, dw;
  static constexpr size_t kCount = 17;

  memory::dims src() const { return {n, c, h, w}; }
  memory::dims dst() const { return {n, co, oh, ow}; }
  memory::dims wei() const { return {co, c, kh, kw}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dilates() const { return {dh - 1, dw - 1}; }
  memory::dims padL() const { return {pt, pl}; }
  memory::dims padR() const { return {pb, pr}; }
};

ConvShape readConvShape(const Napi::Value& v) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(v.Env(), "conv params must be an Int32Array");
  }
  auto a = v.As<Napi::Int32Array>();
  if (a.ElementLength() != ConvShape::kCount) {
    throw Napi::RangeError::New(v.Env(), "conv params must have 17 entries");
  }
  const int32_t* p = a.Data();
  return ConvShape{p[0], p[1], p[2],  p[3],  p[4],  p[5],  p[6],  p[7], p[8],
                   p[9], p[10], p[11], p[12], p[13], p[14], p[15], p[16]};
}

std::string keyOf(const char* kind, const ConvShape& s, int extra) {
  std::ostringstream k;
  k << kind;
  const int64_t* f = &s.n;
  for (size_t i = 0; i < ConvShape::kCount; i++) k << ',' << f[i];
  k << ',' << extra;
  return k.str();
}

float* f32(const Napi::Value& v, size_t minLen, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a Float32Array");
  }
  auto a = v.As<Napi::Float32Array>();
  if (a.ElementLength() < minLen) {
    std::ostringstream m;
    m << name << " has " << a.ElementLength() << " elements, needs " << minLen;
    throw Napi::RangeError::New(v.Env(), m.str());
  }
  return a.Data();
}

memory::desc nhwc(const memory::dims& d) { return memory::desc(d, dt::f32, tag::nhwc); }
memory::desc hwio(const memory::dims& d) { return memory::desc(d, dt::f32, tag::hwio); }
memory::desc anyOf(const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); }

// A memory in the layout a primitive wants, fed from (or drained to) a user
// layout by a cached reorder when the two differ.
struct Staged {
  memory user;
  memory prim;
  bool needsReorder = false;
  reorder toPrim, toUser;

  Staged() = default;
  Staged(const memory::desc& userMd, const memory::desc& primMd, bool input) {
    auto& e = cpuEngine();
    user = memory(userMd, e, DNNL_MEMORY_NONE);
    needsReorder = userMd != primMd;
    if (needsReorder) {
      prim = memory(primMd, e);
      if (input) toPrim = reorder(user, prim);
      else toUser = reorder(prim, user);
    } else {
      prim = user;
    }
  }
  void bind(float* p) { user.set_data_handle(p); }
  void pull() {
    if (needsReorder) toPrim.execute(cpuStream(), user, prim);
  }
  void push() {
    if (needsReorder) toUser.execute(cpuStream(), prim, user);
  }
};

convolution_forward::primitive_desc convFwdPd(const ConvShape& s, bool bias, int act) {
  auto& e = cpuEngine();
  auto d = bias ? convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct,
                                            nhwc(s.src()), anyOf(s.wei()),
                                            memory::desc({s.co}, dt::f32, tag::x), nhwc(s.dst()),
                                            s.strides(), s.dilates(), s.padL(), s.padR())
                : convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct,
                                            nhwc(s.src()), anyOf(s.wei()), nhwc(s.dst()), s.strides(),
                                            s.dilates(), s.padL(), s.padR());
  primitive_attr attr;
  if (act == 1) {
    post_ops ops;
    ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return convolution_forward::primitive_desc(d, attr, e);
}

struct ConvFwd {
  convolution_forward prim;
  Staged wei;
  memory src, dst, bias;
  std::string impl;
};

struct ConvBwdData {
  convolution_backward_data prim;
  Staged wei;
  memory diffDst, diffSrc;
  std::string impl;
};

struct ConvBwdWeights {
  convolution_backward_weights prim;
  Staged diffWei;
  memory src, diffDst;
  std::string impl;
};

std::unordered_map<std::string, std::unique_ptr<ConvFwd>> fwdCache;
std::unordered_map<std::string, std::unique_ptr<ConvBwdData>> bwdDataCache;
std::unordered_map<std::string, std::unique_ptr<ConvBwdWeights>> bwdWeightsCache;

ConvFwd& getFwd(const ConvShape& s, bool bias, int act) {
  auto key = keyOf("f", s, (bias ? 2 : 0) | act << 2);
  auto it = fwdCache.find(key);
  if (it != fwdCache.end()) return *it->second;
  auto pd = convFwdPd(s, bias, act);
  auto c = std::make_unique<ConvFwd>();
  auto& e = cpuEngine();
  c->prim = convolution_forward(pd);
  c->wei = Staged(hwio(s.wei()), pd.weights_desc(), true);
  c->src = memory(pd.src_desc(), e, DNNL_MEMORY_NONE);
  c->dst = memory(pd.dst_desc(), e, DNNL_MEMORY_NONE);
  if (bias) c->bias = memory(pd.bias_desc(), e, DNNL_MEMORY_NONE);
  c->impl = pd.impl_info_str();
  return *fwdCache.emplace(key, std::move(c)).first->second;
}

ConvBwdData& getBwdData(const ConvShape& s) {
  auto key = keyOf("d", s, 0);
  auto it = bwdDataCache.find(key);
  if (it != bwdDataCache.end()) return *it->second;
  auto& e = cpuEngine();
  auto hint = convFwdPd(s, false, 0);
  auto d = convolution_backward_data::desc(algorithm::convolution_direct, nhwc(s.src()), anyOf(s.wei()),
                                           nhwc(s.dst()), s.strides(), s.dilates(), s.padL(), s.padR());
  auto pd = convolution_backward_data::primitive_desc(d, e, hint);
  auto c = std::make_unique<ConvBwdData>();
  c->prim = convolution_backward_data(pd);
  c->wei = Staged(hwio(s.wei()), pd.weights_desc(), true);
  c->diffDst = memory(pd.diff_dst_desc(), e, DNNL_MEMORY_NONE);
  c->diffSrc = memory(pd.diff_src_desc(), e, DNNL_MEMORY_NONE);
  c->impl = pd.impl_info_str();
  return *bwdDataCache.emplace(key, std::move(c)).first->second;
}

ConvBwdWeights& getBwdWeights(const ConvShape& s) {
  auto key = keyOf("w", s, 0);
  auto it = bwdWeightsCache.find(key);
  if (it != bwdWeightsCache.end()) return *it->second;
  auto& e = cpuEngine();
  auto hint = convFwdPd(s, false, 0);
  auto d = convolution_backward_weights::desc(algorithm::convolution_direct, nhwc(s.src()), anyOf(s.wei()),
                                              nhwc(s.dst()), s.strides(), s.dilates(), s.padL(), s.padR());
  auto pd = convolution_backward_weights::primitive_desc(d, e, hint);
  auto c = std::make_unique<ConvBwdWeights>();
  c->prim = convolution_backward_weights(pd);
  c->diffWei = Staged(hwio(s.wei()), pd.diff_weights_desc(), false);
  c->src = memory(pd.src_desc(), e, DNNL_MEMORY_NONE);
  c->diffDst = memory(pd.diff_dst_desc(), e, DNNL_MEMORY_NONE);
  c->impl = pd.impl_info_str();
  return *bwdWeightsCache.emplace(key, std::move(c)).first->second;
}

size_t count(const memory::dims& d) {
  size_t n = 1;
  for (auto v : d) n *= static_cast<size_t>(v);
  return n;
}

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F&& f) {
  try {
    return f();
  } catch (const dnnl::error& err) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN: ") + err.what());
  }
}

// conv2d(x, filter, bias | null, y, params, activation: 0 linear | 1 relu)
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto s = readConvShape(info[4]);
    bool hasBias = !info[2].IsNull() && !info[2].IsUndefined();
    int act = info[5].As<Napi::Number>().Int32Value();
    float* x = f32(info[0], count(s.src()), "x");
    float* w = f32(info[1], count(s.wei()), "filter");
    float* b = hasBias ? f32(info[2], static_cast<size_t>(s.co), "bias") : nullptr;
    float* y = f32(info[3], count(s.dst()), "y");
    SignalGuard noSignals;  // oneDNN's generated code is not signal-safe (signal_guard.h)
    auto& c = getFwd(s, hasBias, act);
    c.src.set_data_handle(x);
    c.dst.set_data_handle(y);
    c.wei.bind(w);
    c.wei.pull();
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, c.src}, {DNNL_ARG_WEIGHTS, c.wei.prim}, {DNNL_ARG_DST, c.dst}};
    if (hasBias) {
      c.bias.set_data_handle(b);
      args.emplace(DNNL_ARG_BIAS, c.bias);
    }
    c.prim.execute(cpuStream(), args);
    cpuStream().wait();
    return info.Env().Undefined();
  });
}

// conv2dBackpropInput(dy, filter, dx, params)
Napi::Value Conv2dBackpropInput(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto s = readConvShape(info[3]);
    float* dy = f32(info[0], count(s.dst()), "dy");
    float* w = f32(info[1], count(s.wei()), "filter");
    float* dx = f32(info[2], count(s.src()), "dx");
    SignalGuard noSignals;
    auto& c = getBwdData(s);
    c.diffDst.set_data_handle(dy);
    c.diffSrc.set_data_handle(dx);
    c.wei.bind(w);
    c.wei.pull();
    c.prim.execute(cpuStream(), {{DNNL_ARG_DIFF_DST, c.diffDst},
                                 {DNNL_ARG_WEIGHTS, c.wei.prim},
                                 {DNNL_ARG_DIFF_SRC, c.diffSrc}});
    cpuStream().wait();
    return info.Env().Undefined();
  });
}

// conv2dBackpropFilter(x, dy, dw, params)
Napi::Value Conv2dBackpropFilter(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto s = readConvShape(info[3]);
    float* x = f32(info[0], count(s.src()), "x");
    float* dy = f32(info[1], count(s.dst()), "dy");
    float* dw = f32(info[2], count(s.wei()), "dw");
    SignalGuard noSignals;
    auto& c = getBwdWeights(s);
    c.src.set_data_handle(x);
    c.diffDst.set_data_handle(dy);
    c.diffWei.bind(dw);
    c.prim.execute(cpuStream(), {{DNNL_ARG_SRC, c.src},
                                 {DNNL_ARG_DIFF_DST, c.diffDst},
                                 {DNNL_ARG_DIFF_WEIGHTS, c.diffWei.prim}});
    c.diffWei.push();
    cpuStream().wait();
    return info.Env().Undefined();
  });
}

// matmul(a, b, c, params): params = [batch, m, n, k, transA, transB,
// strideA, strideB] (row-major; a stride of 0 broadcasts that operand).
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto pv = info[3].As<Napi::Int32Array>();
  if (pv.ElementLength() != 8) throw Napi::RangeError::New(env, "matmul params must have 8 entries");
  const int32_t* p = pv.Data();
  int64_t batch = p[0], m = p[1], n = p[2], k = p[3];
  bool ta = p[4] != 0, tb = p[5] != 0;
  int64_t sa = p[6], sb = p[7];
  float* a = f32(info[0], static_cast<size_t>(sa * (batch - 1) + m * k), "a");
  float* b = f32(info[1], static_cast<size_t>(sb * (batch - 1) + k * n), "b");
  float* c = f32(info[2], static_cast<size_t>(batch * m * n), "c");
  int64_t lda = ta ? m : k, ldb = tb ? k : n;
  SignalGuard noSignals;  // dnnl_sgemm's generated kernels are not signal-safe (signal_guard.h)
  for (int64_t i = 0; i < batch; i++) {
    auto st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.f, a + i * sa, lda, b + i * sb, ldb, 0.f,
                         c + i * m * n, n);
    if (st != dnnl_success) throw Napi::Error::New(env, "oneDNN: sgemm failed");
  }
  return env.Undefined();
}

// implInfo(kind: 'fwd'|'bwdData'|'bwdFilter', params): the oneDNN
// implementation chosen for that convolution (for tests and profiling).
Napi::Value ImplInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string kind = info[0].As<Napi::String>();
    auto s = readConvShape(info[1]);
    if (kind == "fwd") return Napi::String::New(info.Env(), getFwd(s, false, 0).impl);
    if (kind == "bwdData") return Napi::String::New(info.Env(), getBwdData(s).impl);
    return Napi::String::New(info.Env(), getBwdWeights(s).impl);
  });
}

Napi::Value CacheSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           static_cast<double>(fwdCache.size() + bwdDataCache.size() + bwdWeightsCache.size()));
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  auto v = dnnl::version();
  std::ostringstream s;
  s << v->major << '.' << v->minor << '.' << v->patch;
  return Napi::String::New(info.Env(), s.str());
}

// Every tfjs op output is a fresh ArrayBuffer (calloc). Large ones default to
// mmap, so each op pays a page fault per 4 KiB on first touch, and freed
// memory goes back to the kernel. Keep big blocks on the heap and never trim
// it: after the first training step, outputs reuse already-mapped memory.
// (Measured here: a 2M-element multiply took 150-250 ms on fresh memory and
// 19 ms on reused memory.)
void keepHeapMapped() {
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // glibc's maximum on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  keepHeapMapped();
  {
    // Start the OpenMP threads now, inside a guard: they keep its blocked signal mask for good.
    SignalGuard noSignals;
#pragma omp parallel
    {
    }
  }
  exports.Set("conv2d", Napi::Function::New(env, Conv2d));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2dBackpropInput));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2dBackpropFilter));
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("binary", Napi::Function::New(env, eltwise::Binary));
  exports.Set("reduce", Napi::Function::New(env, eltwise::Reduce));
  exports.Set("compare", Napi::Function::New(env, eltwise::Compare));
  exports.Set("select", Napi::Function::New(env, eltwise::Select));
  exports.Set("copy", Napi::Function::New(env, eltwise::Copy));
  exports.Set("batchNormForward", Napi::Function::New(env, train_ops::BatchNormForward));
  exports.Set("batchNormBackward", Napi::Function::New(env, train_ops::BatchNormBackward));
  exports.Set("batchNormPreluForward", Napi::Function::New(env, train_ops::BatchNormPreluForward));
  exports.Set("batchNormPreluBackward", Napi::Function::New(env, train_ops::BatchNormPreluBackward));
  exports.Set("preluBackward", Napi::Function::New(env, train_ops::PreluBackward));
  exports.Set("sgdStep", Napi::Function::New(env, train_ops::SgdStep));
  exports.Set("adamStep", Napi::Function::New(env, train_ops::AdamStep));
  exports.Set("implInfo", Napi::Function::New(env, ImplInfo));
  exports.Set("cacheSize", Napi::Function::New(env, CacheSize));
  exports.Set("version", Napi::Function::New(env, Version));
  return exports;
}

}  // namespace

NODE_API_MODULE(mtl_dnnl, Init)

// Single-pass training kernels: batch norm with batch statistics (forward, backward),
// PReLU backward, and the SGD / Adam parameter updates (bit-identical to tfjs's composites).
#pragma once
#include <napi.h>

namespace train_ops {
Napi::Value BatchNormForward(const Napi::CallbackInfo& info);
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info);
Napi::Value BatchNormPreluForward(const Napi::CallbackInfo& info);
Napi::Value BatchNormPreluBackward(const Napi::CallbackInfo& info);
Napi::Value PreluBackward(const Napi::CallbackInfo& info);
Napi::Value SgdStep(const Napi::CallbackInfo& info);
Napi::Value AdamStep(const Napi::CallbackInfo& info);
}  // namespace train_ops

// Broadcasting binary ops and axis reductions over float32, vectorised and
// single-threaded (memory-bound). Shapes arrive collapsed by
// the TypeScript side (src/native/shapes.ts): adjacent dims that broadcast
// alike are merged, so the innermost loop is a contiguous run.
#pragma once
#include <napi.h>

namespace eltwise {
Napi::Value Binary(const Napi::CallbackInfo& info);
Napi::Value Reduce(const Napi::CallbackInfo& info);
Napi::Value Compare(const Napi::CallbackInfo& info);
Napi::Value Select(const Napi::CallbackInfo& info);
Napi::Value Copy(const Napi::CallbackInfo& info);
}  // namespace eltwise

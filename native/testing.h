#pragma once
#include <napi.h>

namespace understudy {
Napi::Value TextStreamChunks(const Napi::CallbackInfo& info);
// liveHandles() -> { models, contexts, adapters }: native handles alive in the process.
Napi::Value LiveHandleCounts(const Napi::CallbackInfo& info);
}

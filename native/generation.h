// Generation: one prompt in, a stream of text out, on a worker thread.
#pragma once
#include <napi.h>
#include <memory>
#include "handles.h"

namespace understudy {

// context.generate(tokens, sampling, onText?, abortFlag?) -> Promise<GenerationResult>
Napi::Value StartGeneration(const Napi::CallbackInfo& info, std::shared_ptr<ContextHandle> handle, Napi::Value owner);

}  // namespace understudy

// Embeddings: texts (as tokens) in, one pooled, L2-normalized vector per text out.
#pragma once
#include <napi.h>
#include <memory>
#include "handles.h"

namespace understudy {

// context.embed(tokenLists: Int32Array[], abortFlag?) -> Promise<Float32Array[]>
Napi::Value StartEmbedding(const Napi::CallbackInfo& info, std::shared_ptr<ContextHandle> handle, Napi::Value owner);

}  // namespace understudy

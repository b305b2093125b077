#include "embedding.h"
#include <cmath>
#include "args.h"
#include "promise-worker.h"

namespace understudy {
namespace {

class EmbedWorker : public PromiseWorker {
 public:
  EmbedWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<ContextHandle> handle,
              std::vector<std::vector<llama_token>> texts, SharedFlag abort)
      : PromiseWorker(env, "understudy.embed", owner), h_(std::move(handle)), texts_(std::move(texts)), abort_(std::move(abort)) {
    h_->active_abort = abort_;
  }

 protected:
  // Packs as many texts into each batch as its token and sequence limits allow,
  // one sequence per text, and reads each sequence's pooled vector.
  void Run() override {
    llama_context* ctx = h_->ctx;
    const llama_model* model = h_->model->model;
    const int32_t n_batch = h_->batch_capacity;
    const int32_t n_seq = static_cast<int32_t>(llama_n_seq_max(ctx));
    const int32_t n_embd = llama_model_n_embd_out(model);
    const bool encode = llama_model_has_encoder(model) && !llama_model_has_decoder(model);
    out_.resize(texts_.size());
    size_t next = 0;
    while (next < texts_.size()) {
      if (h_->disposed.load()) throw Failure("DISPOSED", "the context was disposed during embedding");
      if (abort_->load()) throw Failure("ABORTED", "embedding was aborted");
      llama_memory_clear(llama_get_memory(ctx), true);
      llama_batch& b = h_->batch;
      b.n_tokens = 0;
      const size_t first = next;
      while (next < texts_.size() && static_cast<int32_t>(next - first) < n_seq &&
             b.n_tokens + static_cast<int32_t>(texts_[next].size()) <= n_batch) {
        const auto& tokens = texts_[next];
        for (size_t i = 0; i < tokens.size(); i++) {
          const int32_t k = b.n_tokens++;
          b.token[k] = tokens[i];
          b.pos[k] = static_cast<llama_pos>(i);
          b.n_seq_id[k] = 1;
          b.seq_id[k][0] = static_cast<llama_seq_id>(next - first);
          b.logits[k] = true;  // every token takes part in the pooling
        }
        next++;
      }
      if (next == first) {
        throw Failure("CONTEXT_OVERFLOW", "text " + std::to_string(first) + " has " + std::to_string(texts_[first].size()) +
                      " tokens but the embedding context takes at most " + std::to_string(n_batch));
      }
      int32_t rc = encode ? llama_encode(ctx, b) : llama_decode(ctx, b);
      if (rc != 0) {
        if (abort_->load()) throw Failure("ABORTED", "embedding was aborted");
        if (h_->disposed.load()) throw Failure("DISPOSED", "the context was disposed during embedding");
        throw Failure("DECODE_FAILED", "llama.cpp failed to embed (code " + std::to_string(rc) + ")");
      }
      for (size_t t = first; t < next; t++) {
        const float* v = llama_get_embeddings_seq(ctx, static_cast<llama_seq_id>(t - first));
        if (!v) throw Failure("NATIVE_ERROR", "llama.cpp returned no pooled embedding");
        double norm = 0;
        for (int32_t i = 0; i < n_embd; i++) norm += static_cast<double>(v[i]) * v[i];
        const float scale = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
        out_[t].resize(n_embd);
        for (int32_t i = 0; i < n_embd; i++) out_[t][i] = v[i] * scale;
      }
    }
    llama_memory_clear(llama_get_memory(ctx), true);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array arr = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); i++) {
      Napi::Float32Array v = Napi::Float32Array::New(env, out_[i].size());
      std::copy(out_[i].begin(), out_[i].end(), v.Data());
      arr.Set(static_cast<uint32_t>(i), v);
    }
    return arr;
  }

  void Settle(Napi::Env env) override {
    h_->active_abort.reset();
    h_->busy.store(false);
    // After a dispose() during the call this worker holds the last reference:
    // the context is then freed off the event loop, as dispose() promises.
    DropLater(env, std::move(h_));
  }

 private:
  std::shared_ptr<ContextHandle> h_;
  std::vector<std::vector<llama_token>> texts_;
  SharedFlag abort_;
  std::vector<std::vector<float>> out_;
};

}  // namespace

Napi::Value StartEmbedding(const Napi::CallbackInfo& info, std::shared_ptr<ContextHandle> handle, Napi::Value owner) {
  Napi::Env env = info.Env();
  return GuardNative(env, [&]() -> Napi::Value {
    if (!handle->embeddings) {
      ThrowError(env, "INVALID_ARGUMENT", "this context was not created for embeddings: create one with { embeddings: true }");
    }
    if (info.Length() < 1 || !info[0].IsArray()) ThrowTypeError(env, "Expected Int32Array[] for texts");
    Napi::Array list = info[0].As<Napi::Array>();
    const int32_t n_vocab = llama_vocab_n_tokens(handle->model->vocab);
    // Grown element by element: an array's length says nothing about what it holds.
    std::vector<std::vector<llama_token>> texts;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        ThrowTypeError(env, "Expected Int32Array[] for texts");
      }
      Napi::Int32Array tokens = v.As<Napi::Int32Array>();
      texts.emplace_back(tokens.Data(), tokens.Data() + tokens.ElementLength());
      if (texts.back().empty()) ThrowError(env, "INVALID_ARGUMENT", "text " + std::to_string(i) + " has no tokens");
      for (llama_token t : texts.back()) {
        if (t < 0 || t >= n_vocab) ThrowError(env, "INVALID_ARGUMENT", "token " + std::to_string(t) + " is outside the vocabulary");
      }
    }
    SharedFlag abort = AbortFlag::From(env, info.Length() > 1 ? info[1] : env.Undefined());
    if (handle->busy.exchange(true)) ThrowError(env, "BUSY", "the context is busy");
    ContextHandle* h = handle.get();
    try {
      auto* worker = new EmbedWorker(env, owner.As<Napi::Object>(), std::move(handle), std::move(texts), std::move(abort));
      return worker->Start();
    } catch (...) {
      h->busy.store(false);  // the worker that would have cleared it never ran
      throw;
    }
  });
}

}  // namespace understudy

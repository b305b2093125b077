#include "generation.h"
#include "args.h"
#include "errors.h"
#include "request.h"
#include "scheduler.h"

namespace understudy {

Napi::Value StartGeneration(const Napi::CallbackInfo& info, std::shared_ptr<ContextHandle> handle, Napi::Value owner) {
  Napi::Env env = info.Env();
  if (handle->embeddings) {
    ThrowError(env, "INVALID_ARGUMENT", "this context was created for embeddings: create another without { embeddings: true } to generate");
  }
  Napi::Int32Array tokens = args::Tokens(info, 0);
  const int32_t n_vocab = llama_vocab_n_tokens(handle->model->vocab);
  std::vector<llama_token> prompt(tokens.Data(), tokens.Data() + tokens.ElementLength());
  if (prompt.empty()) ThrowError(env, "INVALID_ARGUMENT", "the prompt has no tokens");
  for (llama_token t : prompt) {
    if (t < 0 || t >= n_vocab) ThrowError(env, "INVALID_ARGUMENT", "prompt token " + std::to_string(t) + " is outside the vocabulary");
  }
  const size_t n_ctx = llama_n_ctx_seq(handle->ctx);
  if (prompt.size() > n_ctx) {
    ThrowError(env, "CONTEXT_OVERFLOW", "the prompt has " + std::to_string(prompt.size()) +
               " tokens but the context holds " + std::to_string(n_ctx));
  }
  SamplingOptions sampling = ReadSamplingOptions(args::OptionsAt(info, 1));
  // Built here, on the JS thread, so a grammar that does not parse fails the call itself.
  std::unique_ptr<Sampler> sampler;
  try {
    sampler = std::make_unique<Sampler>(handle->model->vocab, sampling);
  } catch (const Failure& f) {
    ThrowError(env, f.code, f.what());
  }
  Napi::Function on_text = args::OptionalFunction(info, 2, "onText");
  SharedFlag abort = AbortFlag::From(env, info.Length() > 3 ? info[3] : env.Undefined());
  auto request = std::make_shared<Request>(std::move(prompt), std::move(sampling), std::move(sampler), std::move(abort));
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  AttachDelivery(env, request, deferred, on_text, owner.As<Napi::Object>());
  if (!handle->scheduler->Submit(request, handle)) {
    request->Fail("QUEUE_FULL", "too many generations are waiting for this context: retry later or raise maxQueued");
  }
  return deferred.Promise();
}

}  // namespace understudy

#include "generation.h"
#include "args.h"
#include "errors.h"
#include "parse-thread.h"
#include "request.h"
#include "scheduler.h"

namespace understudy {
namespace {

// Hands a request whose sampler is built to the context's scheduler.
void Submit(const std::shared_ptr<Request>& request, const std::shared_ptr<ContextHandle>& handle) {
  if (!handle->scheduler->Submit(request)) {
    request->Fail("QUEUE_FULL", "too many generations are waiting for this context: retry later or raise maxQueued");
  }
}

// Parses the request's grammar on a parse thread, then submits it. The job holds
// the model (whose vocabulary the parser reads) but not the context, so that
// dispose() frees the context without waiting for a long parse.
void ParseThenSubmit(const std::shared_ptr<Request>& request, const std::shared_ptr<ContextHandle>& handle) {
  std::shared_ptr<ModelHandle> model = handle->model;
  std::weak_ptr<ContextHandle> weak = handle;
  RunOnParseThread([request, model, weak] {
    if (request->abort->load()) return request->Fail("ABORTED", "generation was aborted");
    try {
      request->sampler = std::make_unique<Sampler>(model->vocab, request->opts);
    } catch (const Failure& f) {
      return request->Fail(f.code, f.what());
    } catch (const std::bad_alloc&) {
      return request->Fail("OUT_OF_MEMORY", "out of memory while parsing the grammar");
    } catch (const std::exception& e) {
      return request->Fail("INVALID_GRAMMAR", std::string("the grammar does not parse: ") + e.what());
    } catch (...) {
      return request->Fail("NATIVE_ERROR", "parsing the grammar failed with an unknown exception");
    }
    std::shared_ptr<ContextHandle> h = weak.lock();
    if (!h || h->disposed.load()) return request->Fail("DISPOSED", "the context was disposed during generation");
    if (request->abort->load()) return request->Fail("ABORTED", "generation was aborted");
    try {
      Submit(request, h);
    } catch (const std::exception& e) {  // the queue could not grow: this request fails, not silently
      request->Fail(CodeOf(e), MessageOf(e));
    }
  });
}

}  // namespace

Napi::Value StartGeneration(const Napi::CallbackInfo& info, std::shared_ptr<ContextHandle> handle, Napi::Value owner) {
  Napi::Env env = info.Env();
  return GuardNative(env, [&]() -> Napi::Value {
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
    // Without a grammar the sampler is a few small objects: built here, at once.
    std::unique_ptr<Sampler> sampler;
    if (sampling.grammar.empty()) {
      try {
        sampler = std::make_unique<Sampler>(handle->model->vocab, sampling);
      } catch (const Failure& f) {
        ThrowError(env, f.code, f.what());
      }
    }
    Napi::Function on_text = args::OptionalFunction(info, 2, "onText");
    SharedFlag abort = AbortFlag::From(env, info.Length() > 3 ? info[3] : env.Undefined());
    auto request = std::make_shared<Request>(std::move(prompt), std::move(sampling), std::move(sampler), std::move(abort));
    Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
    AttachDelivery(env, request, deferred, on_text, owner.As<Napi::Object>());
    // From here on every failure settles the promise rather than throwing.
    try {
      if (request->sampler) Submit(request, handle);
      else ParseThenSubmit(request, handle);
    } catch (const std::exception& e) {
      request->Fail(CodeOf(e), MessageOf(e));
    }
    return deferred.Promise();
  });
}

}  // namespace understudy

#include "context.h"
#include "addon-state.h"
#include "args.h"
#include "cpu-backend.h"
#include "native-construct.h"
#include "embedding.h"
#include "generation.h"
#include "lora.h"
#include "log.h"
#include "promise-worker.h"
#include "release.h"

namespace understudy {
namespace {

// ggml asks between graph nodes whether to stop; this lets an abort or a
// dispose() cut a long prompt short instead of waiting for it.
bool ShouldAbort(void* data) {
  auto* h = static_cast<ContextHandle*>(data);
  if (h->disposed.load(std::memory_order_relaxed)) return true;
  const SharedFlag& flag = h->active_abort;
  return flag && flag->load(std::memory_order_relaxed);
}

// The KV cache's size (F16 keys and values for every cell of every layer): most
// of a context's memory, and known without asking llama.cpp to serialize it.
int64_t KvCacheBytes(const ContextHandle& h) {
  const llama_model* m = h.model->model;
  const int64_t heads = std::max(1, llama_model_n_head(m));
  const int64_t kv_width = static_cast<int64_t>(llama_model_n_embd(m)) / heads * llama_model_n_head_kv(m);
  return static_cast<int64_t>(llama_n_ctx(h.ctx)) * llama_model_n_layer(m) * 2 * kv_width * 2;
}

class CreateContextWorker : public PromiseWorker {
 public:
  CreateContextWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<ModelHandle> model, llama_context_params params,
                      size_t max_queued)
      : PromiseWorker(env, "understudy.createContext", owner), model_(std::move(model)), params_(params), max_queued_(max_queued) {}

 protected:
  void Run() override {
    log::BeginCapture();
    llama_context* ctx;
    {
      std::lock_guard<std::mutex> lock(model_->adapters_mutex);
      ctx = llama_init_from_model(model_->model, params_);
    }
    std::string why = log::TakeCaptured();
    if (!ctx) throw Failure("CONTEXT_CREATION_FAILED", "llama.cpp could not create the context" + (why.empty() ? "" : ": " + why));
    handle_ = std::make_shared<ContextHandle>(model_, ctx, static_cast<int32_t>(llama_n_batch(ctx)));
    handle_->embeddings = params_.embeddings;
    handle_->scheduler = std::make_unique<Scheduler>(handle_.get(), static_cast<int32_t>(llama_n_seq_max(ctx)), max_queued_);
    llama_set_abort_callback(ctx, ShouldAbort, handle_.get());
    AttachThreadpools();
  }

  Napi::Value Result(Napi::Env env) override { return Context::Wrap(env, handle_); }

 private:
  void AttachThreadpools() {
    ggml_threadpool_params params = ggml_threadpool_params_default(params_.n_threads);
    handle_->threadpool = cpu_backend::NewThreadpool(&params);
    if (!handle_->threadpool) throw Failure("CONTEXT_CREATION_FAILED", "could not start the CPU thread pool");
    if (params_.n_threads_batch != params_.n_threads) {
      ggml_threadpool_params batch = ggml_threadpool_params_default(params_.n_threads_batch);
      handle_->threadpool_batch = cpu_backend::NewThreadpool(&batch);
      if (!handle_->threadpool_batch) throw Failure("CONTEXT_CREATION_FAILED", "could not start the CPU thread pool");
    }
    llama_attach_threadpool(handle_->ctx, handle_->threadpool, handle_->threadpool_batch);
  }

  std::shared_ptr<ModelHandle> model_;
  llama_context_params params_;
  size_t max_queued_;
  std::shared_ptr<ContextHandle> handle_;
};

}  // namespace

Napi::Function Context::Define(Napi::Env env) {
  return DefineClass(env, "Context", {
    InstanceMethod<&Context::Guarded<&Context::Generate>>("generate"),
    InstanceMethod<&Context::Guarded<&Context::Embed>>("embed"),
    InstanceMethod<&Context::Guarded<&Context::SetAdapters>>("setAdapters"),
    InstanceMethod<&Context::Guarded<&Context::Info>>("info"),
    InstanceMethod<&Context::Guarded<&Context::ClearCache>>("clearCache"),
    InstanceMethod<&Context::Guarded<&Context::Dispose>>("dispose"),
    InstanceAccessor<&Context::Guarded<&Context::Disposed>>("disposed"),
  });
}

// Constructors are JS callbacks too, outside Guarded: only a Napi::Error may
// leave one (make_shared can throw bad_alloc).
Context::Context(const Napi::CallbackInfo& info) try
    : Napi::ObjectWrap<Context>(info),
      handle_(NativeConstruct<ContextHandle>::Take(info.Env(), "Context cannot be constructed directly: use model.createContext()")),
      lease_(std::make_shared<SchedulerLease>(handle_->lease)) {
  reported_ = KvCacheBytes(*handle_);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reported_);
} catch (const Napi::Error&) {
  throw;
} catch (const std::exception& e) {
  throw MakeError(info.Env(), CodeOf(e), MessageOf(e));
}

Napi::Object Context::Wrap(Napi::Env env, std::shared_ptr<ContextHandle> handle) {
  return NativeConstruct<ContextHandle>::New(env, AddonState::kContext, std::move(handle));
}

std::shared_ptr<ContextHandle> Context::Handle(Napi::Env env) const {
  if (!handle_) ThrowError(env, "DISPOSED", "the context has been disposed");
  return handle_;
}

Napi::Value Context::Create(const Napi::CallbackInfo& info, std::shared_ptr<ModelHandle> model, Napi::Value owner) {
  if (model->vocab_only) {
    ThrowError(info.Env(), "INVALID_ARGUMENT", "a vocab-only model cannot create a context: load it without vocabOnly");
  }
  Napi::Object opts = args::OptionsAt(info, 0);
  llama_context_params p = llama_context_default_params();
  p.n_ctx = static_cast<uint32_t>(args::Integer(opts, "contextSize", 0, 0, 1 << 24));
  p.n_batch = static_cast<uint32_t>(args::Integer(opts, "batchSize", 512, 1, 1 << 20));
  p.n_ubatch = std::min(p.n_batch, static_cast<uint32_t>(args::Integer(opts, "microBatchSize", 512, 1, 1 << 20)));
  p.n_seq_max = static_cast<uint32_t>(args::Integer(opts, "sequences", 1, 1, 256));
  p.n_threads = static_cast<int32_t>(args::Integer(opts, "threads", 4, 1, 1024));
  p.n_threads_batch = static_cast<int32_t>(args::Integer(opts, "batchThreads", p.n_threads, 1, 1024));
  p.embeddings = args::Bool(opts, "embeddings", false);
  p.kv_unified = args::Bool(opts, "kvUnified", p.kv_unified);
  p.pooling_type = static_cast<enum llama_pooling_type>(
      args::Integer(opts, "pooling", LLAMA_POOLING_TYPE_UNSPECIFIED, LLAMA_POOLING_TYPE_UNSPECIFIED, LLAMA_POOLING_TYPE_LAST));
  p.no_perf = true;
  const size_t max_queued = static_cast<size_t>(args::Integer(opts, "maxQueued", 256, 0, 1 << 20));
  auto* worker = new CreateContextWorker(info.Env(), owner.As<Napi::Object>(), std::move(model), p, max_queued);
  return worker->Start();
}

// The generation gets the context through the lease: a parse thread that
// submits it later holds the lease, never the context.
Napi::Value Context::Generate(const Napi::CallbackInfo& info) {
  auto h = Handle(info.Env());
  return StartGeneration(info, std::shared_ptr<ContextHandle>(lease_, h.get()), Value());
}

Napi::Value Context::Embed(const Napi::CallbackInfo& info) {
  return StartEmbedding(info, Handle(info.Env()), Value());
}

// setAdapters([[adapter, scale], ...]): the adapters this context applies from
// now on, replacing the previous set. The cached prompt was computed with other
// weights, so it is dropped.
Napi::Value Context::SetAdapters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  if (info.Length() < 1 || !info[0].IsArray()) ThrowTypeError(env, "Expected array of [adapter, scale] for adapters");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<std::shared_ptr<AdapterHandle>> handles;
  std::vector<llama_adapter_lora*> adapters;
  std::vector<float> scales;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value pair = list.Get(i);
    if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2 || !pair.As<Napi::Array>().Get(1u).IsNumber()) {
      ThrowTypeError(env, "Expected array of [adapter, scale] for adapters");
    }
    auto handle = LoraAdapter::From(env, pair.As<Napi::Array>().Get(0u));
    if (handle->model != h->model) {
      ThrowError(env, "INVALID_ADAPTER", "the LoRA adapter " + handle->path + " was loaded for another model");
    }
    adapters.push_back(handle->adapter);
    scales.push_back(pair.As<Napi::Array>().Get(1u).As<Napi::Number>().FloatValue());
    handles.push_back(std::move(handle));
  }
  const bool done = !h->busy.load() && h->scheduler->Exclusive([&] {
    llama_set_adapters_lora(h->ctx, adapters.empty() ? nullptr : adapters.data(), adapters.size(),
                            scales.empty() ? nullptr : scales.data());
    h->adapters = std::move(handles);
    h->scheduler->ClearCaches();
  });
  if (!done) ThrowError(env, "BUSY", "the context is busy");
  return env.Undefined();
}

Napi::Value Context::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("contextSize", llama_n_ctx(h->ctx));
  out.Set("sequenceContextSize", llama_n_ctx_seq(h->ctx));
  out.Set("batchSize", llama_n_batch(h->ctx));
  out.Set("microBatchSize", llama_n_ubatch(h->ctx));
  out.Set("sequences", llama_n_seq_max(h->ctx));
  out.Set("threads", llama_n_threads(h->ctx));
  out.Set("batchThreads", llama_n_threads_batch(h->ctx));
  out.Set("cachedTokens", static_cast<double>(h->scheduler->CachedTokens()));
  out.Set("embeddings", h->embeddings);
  out.Set("pooling", static_cast<int32_t>(llama_pooling_type(h->ctx)));
  return out;
}

Napi::Value Context::ClearCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  if (h->busy.load() || !h->scheduler->Exclusive([&] { h->scheduler->ClearCaches(); })) {
    ThrowError(env, "BUSY", "the context is busy");
  }
  return env.Undefined();
}

// dispose() -> Promise<void>, resolved once the context's memory and threads are
// gone (after any call still running on it has stopped).
Napi::Value Context::Dispose(const Napi::CallbackInfo& info) {
  Napi::Promise promise;
  auto signal = ReleaseSignal::New(info.Env(), &promise);
  if (handle_) handle_->released.Add(std::move(signal));
  else signal->Fire();
  Shutdown(true);
  return promise;
}

// Collected without dispose(): nothing runs on it (a running call holds this
// object), so its threads stop at once and it is freed here.
Context::~Context() { Shutdown(false); }

// Running generations see the flag (ggml polls it between graph nodes) and fail
// with DISPOSED; the memory goes when the last call running on it lets go.
void Context::Shutdown(bool later) {
  if (!handle_) return;
  Napi::MemoryManagement::AdjustExternalMemory(Env(), -reported_);
  reported_ = 0;
  handle_->disposed.store(true);
  handle_->scheduler->Shutdown();
  lease_.reset();
  if (later) DropLater(Env(), std::move(handle_));
  handle_.reset();
}

Napi::Value Context::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !handle_);
}

}  // namespace understudy

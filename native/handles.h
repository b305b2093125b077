// Owners of llama.cpp objects. JS wrappers and in-flight workers hold shared
// pointers to these, so memory is freed the moment the last holder lets go:
// at dispose() when nothing is running, or when the running call ends.
#pragma once
#include <atomic>
#include <memory>
#include <vector>
#include "abort-flag.h"
#include "ggml-cpu.h"
#include "llama.h"
#include "scheduler.h"

namespace understudy {

struct ModelHandle {
  llama_model* model = nullptr;
  const llama_vocab* vocab = nullptr;
  std::string path;
  bool vocab_only = false;  // no weights and no hyperparameters: tokenizer only
  explicit ModelHandle(llama_model* m) : model(m), vocab(llama_model_get_vocab(m)) {}
  ~ModelHandle() { llama_model_free(model); }
  ModelHandle(const ModelHandle&) = delete;
  ModelHandle& operator=(const ModelHandle&) = delete;
};

// A LoRA adapter belongs to one model: it holds the model, so the model outlives it.
struct AdapterHandle {
  std::shared_ptr<ModelHandle> model;
  llama_adapter_lora* adapter = nullptr;
  std::string path;
  AdapterHandle(std::shared_ptr<ModelHandle> m, llama_adapter_lora* a, std::string p)
      : model(std::move(m)), adapter(a), path(std::move(p)) {}
  ~AdapterHandle() { llama_adapter_lora_free(adapter); }
  AdapterHandle(const AdapterHandle&) = delete;
  AdapterHandle& operator=(const AdapterHandle&) = delete;
};

struct ContextHandle {
  std::shared_ptr<ModelHandle> model;
  llama_context* ctx = nullptr;
  llama_batch batch{};
  int32_t batch_capacity = 0;
  // Generations, on their own thread (created with the context).
  std::unique_ptr<Scheduler> scheduler;
  // Held by embed(), which needs the whole context.
  std::atomic<bool> busy{false};
  // Raised by the running call's AbortFlag or by dispose(); ggml polls it
  // between graph nodes so even a long prompt stops promptly.
  SharedFlag active_abort;
  std::atomic<bool> disposed{false};
  bool embeddings = false;  // made for embed(), with pooling
  // Adapters applied to this context; held so they outlive their use here.
  std::vector<std::shared_ptr<AdapterHandle>> adapters;

  // CPU threads that live as long as the context. Without them ggml starts and
  // joins its threads for every decode, which costs more than the decode itself
  // on small models (llama-bench attaches a pool the same way).
  ggml_threadpool* threadpool = nullptr;
  ggml_threadpool* threadpool_batch = nullptr;

  ContextHandle(std::shared_ptr<ModelHandle> m, llama_context* c, int32_t capacity)
      : model(std::move(m)), ctx(c), batch(llama_batch_init(capacity, 0, 1)), batch_capacity(capacity) {}
  ~ContextHandle() {
    scheduler.reset();
    llama_batch_free(batch);
    llama_free(ctx);
    adapters.clear();
    if (threadpool_batch) ggml_threadpool_free(threadpool_batch);
    if (threadpool) ggml_threadpool_free(threadpool);
  }
  ContextHandle(const ContextHandle&) = delete;
  ContextHandle& operator=(const ContextHandle&) = delete;
};

}  // namespace understudy

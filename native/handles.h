// Owners of llama.cpp objects. JS wrappers and in-flight workers hold shared
// pointers to these, so memory is freed the moment the last holder lets go:
// at dispose() when nothing is running, or when the running call ends. Each
// destructor fires the handle's release signals last, once everything it owned
// is freed (see release.h); a context holds its model, an adapter its model, so
// a model is freed after them.
#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>
#include "abort-flag.h"
#include "cpu-backend.h"
#include "llama.h"
#include "release.h"
#include "scheduler.h"

namespace understudy {

struct ModelHandle {
  llama_model* model = nullptr;
  const llama_vocab* vocab = nullptr;
  std::string path;
  bool vocab_only = false;  // no weights and no hyperparameters: tokenizer only
  // llama.cpp keeps the adapters loaded on a model in a plain set that adapter
  // loading and freeing change and context creation reads (for the graph
  // budget): those calls hold this lock, on whatever thread they run.
  std::mutex adapters_mutex;
  // A training step sets the model's n_ctx_train to its window and restores it
  // after (llama_opt_epoch reads the window there): two trainers of one model
  // take turns per step.
  std::mutex training_mutex;
  ReleaseWaiters released;
  explicit ModelHandle(llama_model* m) : model(m), vocab(llama_model_get_vocab(m)) { LiveHandles::models++; }
  ~ModelHandle() {
    llama_model_free(model);
    LiveHandles::models--;
    released.FireAll();
  }
  ModelHandle(const ModelHandle&) = delete;
  ModelHandle& operator=(const ModelHandle&) = delete;
};

// A LoRA adapter belongs to one model: it holds the model, so the model outlives it.
struct AdapterHandle {
  std::shared_ptr<ModelHandle> model;
  llama_adapter_lora* adapter = nullptr;
  std::string path;
  // Claimed by the trainer training it: its tensors are that trainer's
  // parameters, and a second trainer would unmark them when it is freed.
  std::atomic<bool> in_training{false};
  // Bumped by every training step: a context applying the adapter must not
  // reuse a prompt cache computed with its earlier weights.
  std::atomic<uint64_t> version{0};
  ReleaseWaiters released;
  AdapterHandle(std::shared_ptr<ModelHandle> m, llama_adapter_lora* a, std::string p)
      : model(std::move(m)), adapter(a), path(std::move(p)) { LiveHandles::adapters++; }
  ~AdapterHandle() {
    {
      std::lock_guard<std::mutex> lock(model->adapters_mutex);
      llama_adapter_lora_free(adapter);
    }
    LiveHandles::adapters--;
    released.FireAll();
  }
  AdapterHandle(const AdapterHandle&) = delete;
  AdapterHandle& operator=(const AdapterHandle&) = delete;
};

// Work that may submit a generation later (a parse thread) must not hold the
// context, or the context could be freed on that thread; it holds a lease
// instead (a shared pointer that aliases the context but owns only the lease).
// The context's destructor waits until the lease is let go, so nothing submits
// any more, then joins its scheduler thread (which holds neither).
class SchedulerLease {
 public:
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    bool held = false;
  };

  // JS thread.
  explicit SchedulerLease(std::shared_ptr<State> state);
  // Any thread: a parse thread, the JS thread.
  ~SchedulerLease();
  // Waits until the lease is gone.
  static void Wait(State& state);

 private:
  std::shared_ptr<State> state_;
};

struct ContextHandle {
  std::shared_ptr<ModelHandle> model;
  llama_context* ctx = nullptr;
  llama_batch batch{};
  int32_t batch_capacity = 0;
  // Generations, on their own thread (created with the context).
  std::unique_ptr<Scheduler> scheduler;
  std::shared_ptr<SchedulerLease::State> lease = std::make_shared<SchedulerLease::State>();
  // Held by embed(), which needs the whole context.
  std::atomic<bool> busy{false};
  // Raised by the running call's AbortFlag or by dispose(); ggml polls it
  // between graph nodes so even a long prompt stops promptly.
  SharedFlag active_abort;
  std::atomic<bool> disposed{false};
  bool embeddings = false;  // made for embed(), with pooling
  // Adapters applied to this context; held so they outlive their use here.
  std::vector<std::shared_ptr<AdapterHandle>> adapters;
  ReleaseWaiters released;

  // CPU threads that live as long as the context. Without them ggml starts and
  // joins its threads for every decode, which costs more than the decode itself
  // on small models (llama-bench attaches a pool the same way).
  ggml_threadpool* threadpool = nullptr;
  ggml_threadpool* threadpool_batch = nullptr;

  ContextHandle(std::shared_ptr<ModelHandle> m, llama_context* c, int32_t capacity)
      : model(std::move(m)), ctx(c), batch(llama_batch_init(capacity, 0, 1)), batch_capacity(capacity) {
    LiveHandles::contexts++;
  }
  ~ContextHandle() {
    if (scheduler) {
      disposed.store(true);
      scheduler->Shutdown();
      SchedulerLease::Wait(*lease);
    }
    scheduler.reset();  // joins its thread
    llama_batch_free(batch);
    llama_free(ctx);
    adapters.clear();
    cpu_backend::FreeThreadpool(threadpool_batch);
    cpu_backend::FreeThreadpool(threadpool);
    LiveHandles::contexts--;
    released.FireAll();
  }
  ContextHandle(const ContextHandle&) = delete;
  ContextHandle& operator=(const ContextHandle&) = delete;
};

}  // namespace understudy

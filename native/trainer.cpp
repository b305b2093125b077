#include "trainer.h"
#include <cmath>
#include <cstring>
#include "addon-state.h"
#include "abort-flag.h"
#include "args.h"
#include "cpu-backend.h"
#include "js-signal.h"
#include "llama-internals.h"
#include "log.h"
#include "lora.h"
#include "native-construct.h"
#include "promise-worker.h"
#include "release.h"
#include "train-budget.h"
#include "train-checks.h"

namespace understudy {
namespace {

bool RejectAll(const ggml_tensor*, void*) { return false; }

// llama.cpp tells the CPU backend its thread count only in its own decode path;
// training graphs run through the scheduler directly, where the backend would
// keep its default (4) and spin at barriers waiting for threads the pool does
// not have: perf showed 97% of a step in ggml_barrier.
void UseThreads(llama_context* ctx, int32_t threads) {
  ggml_backend_sched_t sched = internals::ContextScheduler(ctx);
  for (int i = 0; i < ggml_backend_sched_get_n_backends(sched); i++) {
    ggml_backend_t backend = ggml_backend_sched_get_backend(sched, i);
    cpu_backend::SetThreadsIfCpu(backend, threads);
  }
}

ggml_opt_optimizer_params OptimizerParams(void* user_data) {
  const auto& o = static_cast<TrainerHandle*>(user_data)->optimizer;
  ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
  p.adamw.alpha = o.learning_rate;
  p.adamw.beta1 = o.beta1;
  p.adamw.beta2 = o.beta2;
  p.adamw.eps = o.eps;
  p.adamw.wd = o.weight_decay;
  return p;
}

class CreateTrainerWorker : public PromiseWorker {
 public:
  CreateTrainerWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<ModelHandle> model,
                      std::shared_ptr<AdapterHandle> adapter, int32_t window, int32_t threads, TrainerHandle::Optimizer optimizer)
      : PromiseWorker(env, "understudy.createTrainer", owner), model_(std::move(model)), adapter_(std::move(adapter)),
        window_(window), threads_(threads), optimizer_(optimizer) {}

 protected:
  void Run() override {
    auto h = std::make_shared<TrainerHandle>(model_, adapter_);
    h->window = window_;
    h->optimizer = optimizer_;
    h->params = CheckTrainable(*model_, *adapter_);
    if (adapter_->in_training.exchange(true)) {
      throw Failure("BUSY", "the adapter is already being trained by another trainer: dispose that trainer first");
    }
    h->claimed_adapter = true;
    h->hooks = std::make_unique<TrainingHooks>(h->params);

    llama_context_params p = llama_context_default_params();
    p.n_ctx = p.n_batch = p.n_ubatch = static_cast<uint32_t>(window_);
    p.n_seq_max = 1;
    p.n_threads = p.n_threads_batch = threads_;
    // F16 K/V abort in the backward pass of GQA models; flash attention has no backward.
    p.type_k = p.type_v = GGML_TYPE_F32;
    p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    p.cb_eval = TrainingHooks::Callback;
    p.cb_eval_user_data = h->hooks.get();
    p.no_perf = true;
    p.op_offload = false;
    log::BeginCapture();
    {
      // The budget is read when the context is made: no adapter of the model
      // may come or go between the padding and the context.
      std::lock_guard<std::mutex> lock(model_->adapters_mutex);
      h->padding = PadNodeBudget(model_->model, TrainingNodesNeeded(model_->model, h->params.size() / 2));
      h->ctx = llama_init_from_model(model_->model, p);
    }
    std::string why = log::TakeCaptured();
    if (!h->ctx) throw Failure("CONTEXT_CREATION_FAILED", "llama.cpp could not create the training context" + (why.empty() ? "" : ": " + why));
    if (llama_n_ctx(h->ctx) != static_cast<uint32_t>(window_) || llama_n_ubatch(h->ctx) != static_cast<uint32_t>(window_)) {
      throw Failure("INVALID_ARGUMENT", "llama.cpp made a training context of " + std::to_string(llama_n_ctx(h->ctx)) +
                    " tokens for a window of " + std::to_string(window_) + ": the window must be a multiple of 256");
    }
    llama_adapter_lora* adapter = adapter_->adapter;
    float scale = 1.0f;
    if (llama_set_adapters_lora(h->ctx, &adapter, 1, &scale) != 0) {
      throw Failure("NATIVE_ERROR", "llama.cpp could not apply the adapter to the training context");
    }
    ggml_threadpool_params tp = ggml_threadpool_params_default(threads_);
    h->threadpool = cpu_backend::NewThreadpool(&tp);
    if (!h->threadpool) throw Failure("CONTEXT_CREATION_FAILED", "could not start the CPU thread pool");
    llama_attach_threadpool(h->ctx, h->threadpool, nullptr);
    UseThreads(h->ctx, threads_);

    llama_opt_params op{};
    op.n_ctx_train = 0;
    op.param_filter = RejectAll;  // it is shown base tensors only: none of them train
    op.get_opt_pars = OptimizerParams;
    op.get_opt_pars_ud = h.get();
    op.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
    {
      std::lock_guard<std::mutex> lock(model_->training_mutex);
      const uint32_t saved = internals::TrainContextSize(model_->model);
      llama_opt_init(h->ctx, model_->model, op);
      internals::SetTrainContextSize(model_->model, saved);
    }
    for (ggml_tensor* t : h->params) ggml_set_param(t);
    h->dataset = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, window_, window_, 1, 1);
    if (!h->dataset) throw std::bad_alloc();
    handle_ = std::move(h);
  }

  Napi::Value Result(Napi::Env env) override { return Trainer::Wrap(env, handle_); }

 private:
  std::shared_ptr<ModelHandle> model_;
  std::shared_ptr<AdapterHandle> adapter_;
  int32_t window_;
  int32_t threads_;
  TrainerHandle::Optimizer optimizer_;
  std::shared_ptr<TrainerHandle> handle_;
};

struct StepRecord {
  int32_t index;
  double loss;
  int64_t counted;
  double grad_norm;
  bool clipped;
};

// Runs windows one step each (training) or one forward pass each (evaluation),
// reporting every step to `onStep` through a thread-safe function. An abort is
// honoured between steps only: a step cut short would leave some tensors
// updated and others not.
class RunWorker : public PromiseWorker {
 public:
  RunWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<TrainerHandle> handle, std::vector<int32_t> tokens,
            std::vector<int32_t> labels, std::vector<uint8_t> mask, std::vector<float> rates, float max_grad_norm,
            Napi::Function on_step, SharedFlag abort)
      : PromiseWorker(env, "understudy.train", owner), handle_(std::move(handle)), tokens_(std::move(tokens)),
        labels_(std::move(labels)), mask_(std::move(mask)), rates_(std::move(rates)), max_grad_norm_(max_grad_norm),
        abort_(std::move(abort)), progress_(std::make_shared<Progress>()) {
    const int64_t n = static_cast<int64_t>(tokens_.size()) / handle_->window;
    records_.reserve(n);
    if (!on_step.IsEmpty()) {
      auto progress = progress_;
      signal_ = std::make_unique<JsSignal>(env, on_step, "understudy.trainStep", [progress](Napi::Env env, Napi::Function cb) {
        std::vector<StepRecord> batch;
        {
          std::lock_guard<std::mutex> lock(progress->mutex);
          batch.swap(progress->pending);
        }
        for (const auto& r : batch) {
          cb.Call({Napi::Number::New(env, r.index), Napi::Number::New(env, r.loss), Napi::Number::New(env, static_cast<double>(r.counted)),
                   Napi::Number::New(env, r.grad_norm), Napi::Boolean::New(env, r.clipped)});
        }
      });
    }
  }

 protected:
  void Run() override {
    TrainerHandle& h = *handle_;
    const int64_t window = h.window;
    const int64_t n = static_cast<int64_t>(tokens_.size()) / window;
    const bool train = !rates_.empty();
    ggml_tensor* data = ggml_opt_dataset_data(h.dataset);
    ggml_tensor* labels = ggml_opt_dataset_labels(h.dataset);
    ggml_backend_sched_set_eval_callback(internals::ContextScheduler(h.ctx), TrainingHooks::Callback, h.hooks.get());
    for (int64_t i = 0; i < n; i++) {
      if (abort_->load() || h.disposed.load()) {
        aborted_ = true;
        break;
      }
      ggml_backend_tensor_set(data, tokens_.data() + i * window, 0, window * sizeof(int32_t));
      ggml_backend_tensor_set(labels, labels_.data() + i * window, 0, window * sizeof(int32_t));
      TrainingHooks::Step step;
      step.labels = labels_.data() + i * window;
      step.mask = mask_.data() + i * window;
      step.window = window;
      step.train = train;
      step.max_grad_norm = max_grad_norm_;
      h.hooks->Begin(step);
      if (train) h.optimizer.learning_rate = rates_[i];
      std::string why;
      {
        std::lock_guard<std::mutex> lock(h.model->training_mutex);
        const uint32_t saved = internals::TrainContextSize(h.model->model);
        internals::SetTrainContextSize(h.model->model, static_cast<uint32_t>(window));
        log::BeginCapture();
        llama_opt_epoch(h.ctx, h.dataset, nullptr, nullptr, train ? 1 : 0, nullptr, nullptr);
        why = log::TakeCaptured();
        internals::SetTrainContextSize(h.model->model, saved);
      }
      h.hooks->Finish();
      if (train) h.adapter->version.fetch_add(1);
      if (!h.hooks->problem().empty()) throw Failure("NATIVE_ERROR", h.hooks->problem());
      if (!h.hooks->saw_loss()) {
        throw Failure("NATIVE_ERROR", "llama.cpp did not run the training step" + (why.empty() ? "" : ": " + why));
      }
      StepRecord r{static_cast<int32_t>(i), h.hooks->loss(), h.hooks->counted(), h.hooks->GradNorm(), h.hooks->clipped()};
      records_.push_back(r);
      nodes_ = h.hooks->nodes();
      if (signal_) {
        {
          std::lock_guard<std::mutex> plock(progress_->mutex);
          progress_->pending.push_back(r);
        }
        signal_->Notify();
      }
    }
  }

  void Settle(Napi::Env env) override {
    if (signal_) signal_->Close(env);
    handle_->busy.store(false);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    const size_t n = records_.size();
    Napi::Float64Array losses = Napi::Float64Array::New(env, n);
    Napi::Int32Array counted = Napi::Int32Array::New(env, n);
    Napi::Float64Array norms = Napi::Float64Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      losses[i] = records_[i].loss;
      counted[i] = static_cast<int32_t>(records_[i].counted);
      norms[i] = records_[i].grad_norm;
    }
    out.Set("losses", losses);
    out.Set("counted", counted);
    out.Set("gradNorms", norms);
    out.Set("steps", Napi::Number::New(env, static_cast<double>(n)));
    out.Set("aborted", Napi::Boolean::New(env, aborted_));
    out.Set("graphNodes", Napi::Number::New(env, static_cast<double>(nodes_)));
    return out;
  }

 private:
  struct Progress {
    std::mutex mutex;
    std::vector<StepRecord> pending;
  };
  std::shared_ptr<TrainerHandle> handle_;
  std::vector<int32_t> tokens_, labels_;
  std::vector<uint8_t> mask_;
  std::vector<float> rates_;
  float max_grad_norm_;
  SharedFlag abort_;
  std::shared_ptr<Progress> progress_;
  std::unique_ptr<JsSignal> signal_;
  std::vector<StepRecord> records_;
  bool aborted_ = false;
  int64_t nodes_ = 0;
};

class ReadAdapterWorker : public PromiseWorker {
 public:
  ReadAdapterWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<TrainerHandle> handle)
      : PromiseWorker(env, "understudy.readAdapter", owner), handle_(std::move(handle)) {}

 protected:
  void Run() override {
    for (ggml_tensor* t : handle_->params) {
      Tensor out{t->name, {t->ne[0], t->ne[1]}, std::vector<float>(ggml_nelements(t))};
      ggml_backend_tensor_get(t, out.data.data(), 0, ggml_nbytes(t));
      tensors_.push_back(std::move(out));
    }
  }

  void Settle(Napi::Env) override { handle_->busy.store(false); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, tensors_.size());
    for (size_t i = 0; i < tensors_.size(); i++) {
      const Tensor& t = tensors_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", t.name);
      Napi::Array ne = Napi::Array::New(env, 2);
      ne.Set(0u, Napi::Number::New(env, static_cast<double>(t.ne[0])));
      ne.Set(1u, Napi::Number::New(env, static_cast<double>(t.ne[1])));
      o.Set("ne", ne);
      Napi::Float32Array data = Napi::Float32Array::New(env, t.data.size());
      std::memcpy(data.Data(), t.data.data(), t.data.size() * sizeof(float));
      o.Set("data", data);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

 private:
  struct Tensor {
    std::string name;
    int64_t ne[2];
    std::vector<float> data;
  };
  std::shared_ptr<TrainerHandle> handle_;
  std::vector<Tensor> tensors_;
};

float FloatOption(const Napi::Object& o, const char* key, double fallback, double min, double max) {
  const double v = args::Number(o, key, fallback);
  if (!(v >= min && v <= max)) ThrowTypeError(o.Env(), std::string("Expected number in range for ") + key);
  return static_cast<float>(v);
}

// Typed arrays of one length, window entries each, copied before the work
// starts (JS may change them while it runs).
template <typename T, typename Array>
std::vector<T> CopyArray(Napi::Env env, const Napi::Value& value, napi_typedarray_type type, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    ThrowTypeError(env, std::string("Expected typed array for ") + name);
  }
  Array a = value.As<Array>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

}  // namespace

TrainerHandle::TrainerHandle(std::shared_ptr<ModelHandle> m, std::shared_ptr<AdapterHandle> a)
    : model(std::move(m)), adapter(std::move(a)) {
  LiveHandles::trainers++;
}

TrainerHandle::~TrainerHandle() {
  if (ctx) llama_free(ctx);  // with llama.cpp's optimizer state
  // The adapter outlives the session (its LoraAdapter may still apply it):
  // it goes back to being a plain adapter.
  if (claimed_adapter) {
    for (ggml_tensor* t : params) t->flags &= ~GGML_TENSOR_FLAG_PARAM;
    adapter->in_training.store(false);
  }
  if (!padding.empty()) {
    std::lock_guard<std::mutex> lock(model->adapters_mutex);
    for (llama_adapter_lora* a : padding) llama_adapter_lora_free(a);
  }
  if (dataset) ggml_opt_dataset_free(dataset);
  cpu_backend::FreeThreadpool(threadpool);
  adapter.reset();
  model.reset();
  LiveHandles::trainers--;
  released.FireAll();
}

Napi::Function Trainer::Define(Napi::Env env) {
  return DefineClass(env, "Trainer", {
    InstanceMethod<&Trainer::Guarded<&Trainer::Run>>("run"),
    InstanceMethod<&Trainer::Guarded<&Trainer::ReadAdapter>>("readAdapter"),
    InstanceMethod<&Trainer::Guarded<&Trainer::Dispose>>("dispose"),
    InstanceAccessor<&Trainer::Guarded<&Trainer::Disposed>>("disposed"),
  });
}

Trainer::Trainer(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<Trainer>(info),
      handle_(NativeConstruct<TrainerHandle>::Take(info.Env(), "Trainer cannot be constructed directly: use model.createTrainer()")) {}

Napi::Object Trainer::Wrap(Napi::Env env, std::shared_ptr<TrainerHandle> handle) {
  return NativeConstruct<TrainerHandle>::New(env, AddonState::kTrainer, std::move(handle));
}

std::shared_ptr<TrainerHandle> Trainer::Handle(Napi::Env env) const {
  if (!handle_) ThrowError(env, "DISPOSED", "the trainer has been disposed");
  return handle_;
}

// createTrainer(adapter, { window, threads, beta1, beta2, eps, weightDecay })
Napi::Value Trainer::Create(const Napi::CallbackInfo& info, std::shared_ptr<ModelHandle> model, Napi::Value owner) {
  Napi::Env env = info.Env();
  std::shared_ptr<AdapterHandle> adapter = LoraAdapter::From(env, info.Length() > 0 ? info[0] : env.Undefined());
  Napi::Object opts = args::OptionsAt(info, 1);
  const int32_t window = static_cast<int32_t>(args::Integer(opts, "window", 256, 256, 8192));
  if (window % 256 != 0) ThrowTypeError(env, "Expected a multiple of 256 for window");
  // A step keeps several window × vocabulary F32 tensors (logits, their
  // gradient, the softmax) and, for the backward pass, every layer's window ×
  // window attention scores; ggml aborts when it cannot allocate them.
  const int64_t logits_bytes = static_cast<int64_t>(window) * llama_vocab_n_tokens(model->vocab) * 4;
  if (logits_bytes > (int64_t{1} << 31)) {
    ThrowError(env, "INVALID_ARGUMENT", "a window of " + std::to_string(window) + " tokens needs " +
               std::to_string(logits_bytes >> 20) + " MiB per logits tensor with this model's " +
               std::to_string(llama_vocab_n_tokens(model->vocab)) + "-token vocabulary: use a smaller window");
  }
  if (!model->vocab_only) {
    const int64_t attention_bytes = static_cast<int64_t>(window) * window * 4 * 2 * llama_model_n_head(model->model) *
                                    llama_model_n_layer(model->model);
    const int64_t needed = 3 * logits_bytes + attention_bytes;
    size_t free = 0, total = 0;
    if (ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) ggml_backend_dev_memory(cpu, &free, &total);
    if (total > 0 && needed > static_cast<int64_t>(total)) {
      ThrowError(env, "INVALID_ARGUMENT", "a window of " + std::to_string(window) + " tokens needs about " +
                 std::to_string(needed >> 30) + " GiB for this model's logits and attention, more than this machine's " +
                 std::to_string(total >> 30) + " GiB: use a smaller window");
    }
  }
  const int32_t threads = static_cast<int32_t>(args::Integer(opts, "threads", 4, 1, GGML_MAX_N_THREADS));
  TrainerHandle::Optimizer o;
  o.beta1 = FloatOption(opts, "beta1", 0.9, 0, 1);
  o.beta2 = FloatOption(opts, "beta2", 0.999, 0, 1);
  o.eps = FloatOption(opts, "eps", 1e-8, 0, 1);
  o.weight_decay = FloatOption(opts, "weightDecay", 0, 0, 1);
  auto* worker = new CreateTrainerWorker(env, owner.As<Napi::Object>(), std::move(model), std::move(adapter), window, threads, o);
  return worker->Start();
}

// run(tokens, labels, mask, learningRates | null, maxGradNorm, onStep, abortFlag)
Napi::Value Trainer::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  auto tokens = CopyArray<int32_t, Napi::Int32Array>(env, info[0], napi_int32_array, "tokens");
  auto labels = CopyArray<int32_t, Napi::Int32Array>(env, info[1], napi_int32_array, "labels");
  auto mask = CopyArray<uint8_t, Napi::Uint8Array>(env, info[2], napi_uint8_array, "mask");
  const size_t window = static_cast<size_t>(h->window);
  if (tokens.empty() || tokens.size() % window != 0 || labels.size() != tokens.size() || mask.size() != tokens.size()) {
    ThrowError(env, "INVALID_ARGUMENT", "tokens, labels and mask must hold the same whole number of " + std::to_string(window) + "-token windows");
  }
  const int32_t n_vocab = llama_vocab_n_tokens(h->model->vocab);
  for (size_t i = 0; i < tokens.size(); i++) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab || labels[i] < 0 || labels[i] >= n_vocab) {
      ThrowError(env, "INVALID_ARGUMENT", "token or label at index " + std::to_string(i) + " is outside the vocabulary (0.." +
                 std::to_string(n_vocab - 1) + ")");
    }
    if (mask[i] > 1) ThrowError(env, "INVALID_ARGUMENT", "mask entries must be 0 or 1");
  }
  std::vector<float> rates;
  if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) {
    rates = CopyArray<float, Napi::Float32Array>(env, info[3], napi_float32_array, "learningRates");
    if (rates.size() != tokens.size() / window) ThrowError(env, "INVALID_ARGUMENT", "learningRates must hold one rate per window");
    for (float r : rates) {
      if (!(r > 0 && std::isfinite(r))) ThrowError(env, "INVALID_ARGUMENT", "every learning rate must be a positive finite number");
    }
  }
  if (info.Length() <= 4 || !info[4].IsNumber()) ThrowTypeError(env, "Expected non-negative finite number for maxGradNorm");
  const double max_norm = info[4].As<Napi::Number>().DoubleValue();
  if (!(max_norm >= 0 && std::isfinite(max_norm))) ThrowTypeError(env, "Expected non-negative finite number for maxGradNorm");
  Napi::Function on_step = args::OptionalFunction(info, 5, "onStep");
  SharedFlag abort = AbortFlag::From(env, info.Length() > 6 ? info[6] : env.Undefined());
  if (h->busy.exchange(true)) ThrowError(env, "BUSY", "the trainer is already running a step or reading its adapter");
  auto* worker = new RunWorker(env, Value(), h, std::move(tokens), std::move(labels), std::move(mask), std::move(rates),
                               static_cast<float>(max_norm), on_step, std::move(abort));
  return worker->Start();
}

Napi::Value Trainer::ReadAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Handle(env);
  if (h->busy.exchange(true)) ThrowError(env, "BUSY", "the trainer is already running a step or reading its adapter");
  auto* worker = new ReadAdapterWorker(env, Value(), h);
  return worker->Start();
}

// dispose() -> Promise<void>, resolved once the session's memory is freed; a
// run in progress stops after its current step.
Napi::Value Trainer::Dispose(const Napi::CallbackInfo& info) {
  Napi::Promise promise;
  auto signal = ReleaseSignal::New(info.Env(), &promise);
  if (handle_) {
    handle_->disposed.store(true);
    handle_->released.Add(std::move(signal));
  } else {
    signal->Fire();
  }
  DropLater(info.Env(), std::move(handle_));
  handle_.reset();
  return promise;
}

Napi::Value Trainer::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !handle_);
}

}  // namespace understudy

// Trainer: a LoRA training session for one adapter of one model, with its own
// llama context (F32 KV cache, no flash attention) and llama.cpp's optimizer
// state. JS face: src/llama/lora-trainer.ts. Only the adapter's tensors are
// trained; the base weights stay shared with the model's other contexts.
#pragma once
#include <napi.h>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>
#include "errors.h"
#include "handles.h"
#include "ggml-opt.h"
#include "train-hooks.h"

namespace understudy {

struct TrainerHandle {
  std::shared_ptr<ModelHandle> model;
  std::shared_ptr<AdapterHandle> adapter;
  // Unused adapters loaded only to raise the node budget of the training
  // context (see native/train-budget.cpp); freed with the session.
  std::vector<llama_adapter_lora*> padding;
  llama_context* ctx = nullptr;
  ggml_threadpool* threadpool = nullptr;
  ggml_opt_dataset_t dataset = nullptr;
  std::vector<ggml_tensor*> params;
  std::unique_ptr<TrainingHooks> hooks;
  int32_t window = 0;
  struct Optimizer {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
    float learning_rate = 1e-3f;  // of the step running now
  } optimizer;
  std::atomic<bool> busy{false};
  std::atomic<bool> disposed{false};
  bool claimed_adapter = false;  // this session set adapter->in_training
  ReleaseWaiters released;

  TrainerHandle(std::shared_ptr<ModelHandle> m, std::shared_ptr<AdapterHandle> a);
  ~TrainerHandle();
  TrainerHandle(const TrainerHandle&) = delete;
  TrainerHandle& operator=(const TrainerHandle&) = delete;
};

class Trainer : public Napi::ObjectWrap<Trainer> {
 public:
  static Napi::Function Define(Napi::Env env);
  // model.createTrainer(adapter, options) -> Promise<Trainer>
  static Napi::Value Create(const Napi::CallbackInfo& info, std::shared_ptr<ModelHandle> model, Napi::Value owner);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<TrainerHandle> handle);

  explicit Trainer(const Napi::CallbackInfo& info);

 private:
  UNDERSTUDY_GUARDED_METHODS
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value ReadAdapter(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  std::shared_ptr<TrainerHandle> Handle(Napi::Env env) const;

  std::shared_ptr<TrainerHandle> handle_;
};

}  // namespace understudy

// Context: an inference context (KV cache, batch, threads) over a Model. JS face:
// src/llama/context.ts.
#pragma once
#include <napi.h>
#include "errors.h"
#include <memory>
#include "handles.h"

namespace understudy {

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function Define(Napi::Env env);
  // model.createContext(options) -> Promise<Context>; `owner` is the JS Model.
  static Napi::Value Create(const Napi::CallbackInfo& info, std::shared_ptr<ModelHandle> model, Napi::Value owner);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ContextHandle> handle);

  explicit Context(const Napi::CallbackInfo& info);
  ~Context() override;
  std::shared_ptr<ContextHandle> Handle(Napi::Env env) const;

 private:
  UNDERSTUDY_GUARDED_METHODS
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value Embed(const Napi::CallbackInfo& info);
  Napi::Value SetAdapters(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value ClearCache(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  // Stops the context's work and lets go of it: on a libuv thread when `later`
  // (dispose()), here otherwise (finalization, when the context is idle).
  void Shutdown(bool later);

  std::shared_ptr<ContextHandle> handle_;
  // What the scheduler thread holds instead of the context (see handles.h).
  std::shared_ptr<SchedulerLease> lease_;
  // Native bytes reported to V8 for this context, so that garbage collection
  // runs as the memory of dropped contexts grows (their JS objects are tiny).
  int64_t reported_ = 0;
};

}  // namespace understudy

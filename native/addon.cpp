// Module entry: registers the classes for this environment and the free functions.
#include <napi.h>
#include <mutex>
#include "abort-flag.h"
#include "addon-state.h"
#include "backends.h"
#include "args.h"
#include "errors.h"
#include "ggml.h"
#include "context.h"
#include "log.h"
#include "lora.h"
#include "model.h"
#include "system.h"
#include "trainer.h"
#include "testing.h"

namespace understudy {
namespace {

Napi::Value SetLogLevel(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowTypeError(info.Env(), "Expected integer for level");
  log::SetLevel(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // llama.cpp's global state is shared by every environment in the process and
  // is set up once; per-environment state below is torn down with its thread.
  static std::once_flag backend_once;
  std::call_once(backend_once, [] {
    log::Install();
#ifdef UNDERSTUDY_CPU_VARIANTS
    // Not llama_backend_init(): with no backend registered yet it would load
    // every libggml-*.so in the working directory and beside the node
    // executable. loadBackends() loads ours, from the addon's own folder; this
    // is the rest of llama_backend_init (the clock, ggml's f16 tables).
    ggml_time_init();
    ggml_free(ggml_init({0, nullptr, false}));
#else
    llama_backend_init();
#endif
  });
  auto* state = new AddonState();
  env.SetInstanceData(state);
  state->WatchTeardown(env);
  Napi::Function model = Model::Define(env);
  Napi::Function context = Context::Define(env);
  Napi::Function abort = AbortFlag::Define(env);
  state->SetClass(AddonState::kModel, model);
  state->SetClass(AddonState::kContext, context);
  state->SetClass(AddonState::kAbortFlag, abort);
  Napi::Function lora = LoraAdapter::Define(env);
  state->SetClass(AddonState::kLoraAdapter, lora);
  exports.Set("LoraAdapter", lora);
  Napi::Function trainer = Trainer::Define(env);
  state->SetClass(AddonState::kTrainer, trainer);
  exports.Set("Trainer", trainer);
  exports.Set("Model", model);
  exports.Set("Context", context);
  exports.Set("AbortFlag", abort);
  exports.Set("loadModel", Napi::Function::New<GuardedFn<Model::Load>>(env, "loadModel"));
  exports.Set("loadBackends", Napi::Function::New<GuardedFn<LoadBackends>>(env, "loadBackends"));
  exports.Set("systemInfo", Napi::Function::New<GuardedFn<SystemInfo>>(env, "systemInfo"));
  exports.Set("setLogLevel", Napi::Function::New<GuardedFn<SetLogLevel>>(env, "setLogLevel"));
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("textStreamChunks", Napi::Function::New<GuardedFn<TextStreamChunks>>(env, "textStreamChunks"));
  testing.Set("liveHandles", Napi::Function::New<GuardedFn<LiveHandleCounts>>(env, "liveHandles"));
  exports.Set("testing", testing);
  return exports;
}

}  // namespace
}  // namespace understudy

static Napi::Object InitUnderstudy(Napi::Env env, Napi::Object exports) {
  return understudy::Init(env, exports);
}

NODE_API_MODULE(understudy, InitUnderstudy)

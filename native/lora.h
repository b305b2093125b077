// LoraAdapter: a LoRA adapter loaded for one model. JS face: src/llama/lora.ts.
#pragma once
#include <napi.h>
#include "errors.h"
#include <memory>
#include "handles.h"

namespace understudy {

class LoraAdapter : public Napi::ObjectWrap<LoraAdapter> {
 public:
  static Napi::Function Define(Napi::Env env);
  // model.loadLora(path) -> Promise<LoraAdapter>; `owner` is the JS Model.
  static Napi::Value Load(const Napi::CallbackInfo& info, std::shared_ptr<ModelHandle> model, Napi::Value owner);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<AdapterHandle> handle);
  // The adapter behind a JS value, or a TypeError.
  static std::shared_ptr<AdapterHandle> From(Napi::Env env, const Napi::Value& value);

  explicit LoraAdapter(const Napi::CallbackInfo& info);

 private:
  UNDERSTUDY_GUARDED_METHODS
  Napi::Value Metadata(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);

  std::shared_ptr<AdapterHandle> handle_;
};

}  // namespace understudy

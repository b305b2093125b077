// Model: a loaded GGUF model (weights and vocabulary). JS face: src/llama/model.ts.
#pragma once
#include <napi.h>
#include "errors.h"
#include <memory>
#include "handles.h"

namespace understudy {

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env);
  // loadModel(path, options, onProgress?, abortFlag?) -> Promise<Model>
  static Napi::Value Load(const Napi::CallbackInfo& info);
  // Wraps a loaded handle in a new JS Model (JS thread only).
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ModelHandle> handle);

  explicit Model(const Napi::CallbackInfo& info);
  // The live handle, or a DISPOSED error thrown into JS.
  std::shared_ptr<ModelHandle> Handle(Napi::Env env) const;

 private:
  UNDERSTUDY_GUARDED_METHODS
  Napi::Value Tokenize(const Napi::CallbackInfo& info);
  Napi::Value Detokenize(const Napi::CallbackInfo& info);
  Napi::Value TokenPiece(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value CreateContext(const Napi::CallbackInfo& info);
  Napi::Value LoadLora(const Napi::CallbackInfo& info);
  Napi::Value CreateTrainer(const Napi::CallbackInfo& info);
  Napi::Value ApplyChatTemplate(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelHandle> handle_;
};

}  // namespace understudy

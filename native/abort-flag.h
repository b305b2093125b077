// A flag that JavaScript raises (from an AbortSignal) and native work polls. The
// work holds the shared state, so raising it after the JS object is gone is safe.
#pragma once
#include <napi.h>
#include "errors.h"
#include <atomic>
#include <memory>

namespace understudy {

using SharedFlag = std::shared_ptr<std::atomic<bool>>;

class AbortFlag : public Napi::ObjectWrap<AbortFlag> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AbortFlag(const Napi::CallbackInfo& info);
  // The flag behind a JS value, or a fresh never-raised flag for undefined.
  static SharedFlag From(Napi::Env env, const Napi::Value& value);

 private:
  UNDERSTUDY_GUARDED_METHODS
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Aborted(const Napi::CallbackInfo& info);
  SharedFlag flag_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace understudy

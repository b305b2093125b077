#include "abort-flag.h"
#include "addon-state.h"
#include "errors.h"

namespace understudy {

Napi::Function AbortFlag::Define(Napi::Env env) {
  return DefineClass(env, "AbortFlag", {
    InstanceMethod<&AbortFlag::Guarded<&AbortFlag::Abort>>("abort"),
    InstanceAccessor<&AbortFlag::Guarded<&AbortFlag::Aborted>>("aborted"),
  });
}

// A JS callback outside Guarded: only a Napi::Error may leave it (the flag's
// make_shared can throw bad_alloc).
AbortFlag::AbortFlag(const Napi::CallbackInfo& info) try : Napi::ObjectWrap<AbortFlag>(info) {
} catch (const Napi::Error&) {
  throw;
} catch (const std::exception& e) {
  throw MakeError(info.Env(), CodeOf(e), MessageOf(e));
}

Napi::Value AbortFlag::Abort(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

Napi::Value AbortFlag::Aborted(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), flag_->load());
}

SharedFlag AbortFlag::From(Napi::Env env, const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return std::make_shared<std::atomic<bool>>(false);
  if (!AddonState::Get(env).IsInstance(value, AddonState::kAbortFlag)) {
    ThrowTypeError(env, "Expected AbortFlag for abort but received another value");
  }
  return Unwrap(value.As<Napi::Object>())->flag_;
}

}  // namespace understudy

// JS objects for native handles are made only by native code (a loaded model, a
// created context); `new Model()` from JavaScript must be refused. Native code
// sets the handle in a thread-local slot while it calls the constructor, and the
// constructor takes it from there.
#pragma once
#include <napi.h>
#include <memory>
#include "addon-state.h"
#include "errors.h"

namespace understudy {

template <typename Handle>
class NativeConstruct {
 public:
  // Calls the class's JS constructor with `handle` waiting in the slot.
  static Napi::Object New(Napi::Env env, AddonState::ClassId id, std::shared_ptr<Handle> handle) {
    slot_ = &handle;
    struct Clear {
      ~Clear() { slot_ = nullptr; }
    } clear;
    return AddonState::Get(env).Class(id).New({});
  }

  // In the C++ constructor: the waiting handle, or a TypeError with `hint`.
  static std::shared_ptr<Handle> Take(Napi::Env env, const char* hint) {
    if (slot_ == nullptr) ThrowTypeError(env, hint);
    return *slot_;
  }

 private:
  static inline thread_local std::shared_ptr<Handle>* slot_ = nullptr;
};

}  // namespace understudy

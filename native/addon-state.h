// Per-environment state: each Node environment (the main thread, every worker
// thread) that loads the addon gets its own class constructors. Node destroys the
// state when that environment ends, so nothing leaks across threads.
#pragma once
#include <napi.h>

namespace understudy {

class AddonState {
 public:
  enum ClassId { kModel, kContext, kAbortFlag, kLoraAdapter, kClassCount };

  static AddonState& Get(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

  void SetClass(ClassId id, Napi::Function ctor) { classes_[id] = Napi::Persistent(ctor); }
  Napi::Function Class(ClassId id) const { return classes_[id].Value(); }
  bool IsInstance(const Napi::Value& value, ClassId id) const {
    return value.IsObject() && value.As<Napi::Object>().InstanceOf(classes_[id].Value());
  }

 private:
  Napi::FunctionReference classes_[kClassCount];
};

}  // namespace understudy

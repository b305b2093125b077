// Per-environment state: each Node environment (the main thread, every worker
// thread) that loads the addon gets its own class constructors. Node destroys the
// state when that environment ends, so nothing leaks across threads.
//
// TearingDown() turns true when the environment starts to end, before Node
// finalizes the remaining JS objects: from then on, handles are freed at once
// rather than handed to libuv threads that will not run any more.
#pragma once
#include <napi.h>

namespace understudy {

class AddonState {
 public:
  enum ClassId { kModel, kContext, kAbortFlag, kLoraAdapter, kTrainer, kClassCount };

  static AddonState& Get(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

  void SetClass(ClassId id, Napi::Function ctor) { classes_[id] = Napi::Persistent(ctor); }
  Napi::Function Class(ClassId id) const { return classes_[id].Value(); }
  bool IsInstance(const Napi::Value& value, ClassId id) const {
    return value.IsObject() && value.As<Napi::Object>().InstanceOf(classes_[id].Value());
  }

  // Cleanup hooks run in reverse order of registration, so this one (added at
  // module init, after Node-API's own) runs before the objects are finalized.
  void WatchTeardown(Napi::Env env) {
    napi_add_env_cleanup_hook(env, Hook, this);
    env_ = env;
  }
  bool TearingDown() const { return tearing_down_; }

  ~AddonState() {
    if (env_ && !tearing_down_) napi_remove_env_cleanup_hook(env_, Hook, this);
  }

 private:
  static void Hook(void* self) { static_cast<AddonState*>(self)->tearing_down_ = true; }
  Napi::FunctionReference classes_[kClassCount];
  napi_env env_ = nullptr;
  bool tearing_down_ = false;
};

}  // namespace understudy

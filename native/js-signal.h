// A coalescing wake-up from a worker thread to the JS thread. Notify() may be
// called for every token; at most one call is queued at a time, and the JS side
// drains everything that accumulated since the last wake-up.
#pragma once
#include <napi.h>
#include <atomic>
#include <functional>
#include <memory>

namespace understudy {

class JsSignal {
 public:
  using Drain = std::function<void(Napi::Env, Napi::Function)>;

  JsSignal(Napi::Env env, Napi::Function callback, const char* name, Drain drain)
      : state_(std::make_shared<State>()) {
    state_->drain = std::move(drain);
    callback_ = Napi::Persistent(callback);
    tsfn_ = Napi::ThreadSafeFunction::New(env, callback, name, 0, 1);
    // The async work itself keeps the loop alive; the signal must not.
    tsfn_.Unref(env);
  }

  // Worker thread: ask for a drain on the JS thread, unless one is pending.
  void Notify() {
    if (state_->scheduled.exchange(true)) return;
    auto state = state_;
    tsfn_.NonBlockingCall([state](Napi::Env env, Napi::Function cb) {
      state->scheduled.store(false);
      if (env != nullptr && !state->closed) state->drain(env, cb);
    });
  }

  // JS thread: drain now (the work has ended) and stop further drains.
  void Close(Napi::Env env) {
    if (state_->closed) return;
    state_->drain(env, callback_.Value());
    state_->closed = true;
    tsfn_.Release();
  }

 private:
  struct State {
    std::atomic<bool> scheduled{false};
    bool closed = false;  // JS thread only
    Drain drain;
  };
  std::shared_ptr<State> state_;
  Napi::FunctionReference callback_;
  Napi::ThreadSafeFunction tsfn_;
};

}  // namespace understudy

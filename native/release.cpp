#include "release.h"
#include "addon-state.h"

namespace understudy {
namespace {

void Resolve(Napi::Env env, Napi::Function, Napi::Promise::Deferred* deferred, void*) {
  // env is null when the environment has ended first: the finalizer cleans up.
  if (env == nullptr) return;
  try {
    deferred->Resolve(env.Undefined());
  } catch (const Napi::Error&) {
    // The environment is ending (a worker that exits): nobody is left to tell.
  }
}

using Tsfn = Napi::TypedThreadSafeFunction<Napi::Promise::Deferred, void, Resolve>;

// Holds the last reference to a handle while a libuv thread drops it. Raw
// Node-API work rather than Napi::AsyncWorker: its completion touches no JS (an
// AsyncWorker opens a handle scope there, which fails, uncaught, while a worker
// thread's environment is ending).
struct Drop {
  std::shared_ptr<void> handle;
  napi_async_work work = nullptr;
};

void DropExecute(napi_env, void* data) { static_cast<Drop*>(data)->handle.reset(); }

void DropComplete(napi_env env, napi_status, void* data) {
  auto* drop = static_cast<Drop*>(data);
  napi_delete_async_work(env, drop->work);
  delete drop;  // frees the handle here if the work was cancelled before it ran
}

}  // namespace

// Shared by Fire() (any thread) and the thread-safe function's finalizer (JS
// thread, also when the environment ends): once finalized, the function must
// not be called any more.
struct ReleaseSignal::State {
  std::mutex mutex;
  bool open = true;
  bool fired = false;
  Tsfn tsfn;
};

std::shared_ptr<ReleaseSignal> ReleaseSignal::New(Napi::Env env, Napi::Promise* promise) {
  auto* deferred = new Napi::Promise::Deferred(Napi::Promise::Deferred::New(env));
  *promise = deferred->Promise();
  auto signal = std::make_shared<ReleaseSignal>();
  signal->state_ = std::make_shared<State>();
  auto* state = new std::shared_ptr<State>(signal->state_);
  // Referenced, so the process waits for a pending release (imminent: the
  // handle's users have been told to stop) rather than exit with the promise
  // unsettled.
  signal->state_->tsfn = Tsfn::New(env, "understudy.release", 0, 1, deferred,
      [](Napi::Env, std::shared_ptr<State>* state, Napi::Promise::Deferred* deferred) {
        {
          std::lock_guard<std::mutex> lock((*state)->mutex);
          (*state)->open = false;
        }
        delete state;
        delete deferred;
      },
      state);
  return signal;
}

void ReleaseSignal::Fire() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->fired) return;
  state_->fired = true;
  if (!state_->open) return;
  state_->tsfn.NonBlockingCall();
  state_->tsfn.Release();
}

void DropLater(Napi::Env env, std::shared_ptr<void> handle) {
  // Someone else (a running call) still holds it and will free it.
  if (!handle || handle.use_count() > 1 || AddonState::Get(env).TearingDown()) return;
  auto* drop = new Drop{std::move(handle)};
  napi_value name;
  if (napi_create_string_utf8(env, "understudy.release", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, nullptr, name, DropExecute, DropComplete, drop, &drop->work) != napi_ok) {
    delete drop;  // freed here, then
    return;
  }
  if (napi_queue_async_work(env, drop->work) != napi_ok) {
    napi_delete_async_work(env, drop->work);
    delete drop;
  }
}

}  // namespace understudy

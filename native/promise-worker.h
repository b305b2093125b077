// Base for every blocking call: runs Execute() on a libuv worker thread and settles
// a Promise on the JS thread. It keeps a strong reference to its owner (the JS
// object whose native state it uses) until it settles, so the owner cannot be
// garbage collected mid-call. A Failure thrown in Run() becomes a rejection whose
// error has the Failure's code; any other exception (llama.cpp throws
// std::runtime_error and std::bad_alloc) becomes NATIVE_ERROR or OUT_OF_MEMORY,
// never an uncaught exception on a worker thread.
#pragma once
#include <napi.h>
#include "errors.h"

namespace understudy {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, Napi::Object owner)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {
    if (!owner.IsEmpty()) owner_ = Napi::Persistent(owner);
  }

  // Queues the work and returns the promise it will settle.
  Napi::Promise Start() {
    Queue();
    return deferred_.Promise();
  }

 protected:
  // Runs on the worker thread. Throw Failure to reject with a code.
  virtual void Run() = 0;
  // Runs on the JS thread once Run() returned normally.
  virtual Napi::Value Result(Napi::Env env) = 0;
  // Runs on the JS thread before the promise settles either way.
  virtual void Settle(Napi::Env) {}

 private:
  void Execute() final {
    try {
      Run();
    } catch (const Failure& f) {
      code_ = f.code;
      SetError(f.what());
    } catch (const std::bad_alloc&) {
      code_ = "OUT_OF_MEMORY";
      SetError("out of memory");
    } catch (const std::exception& e) {
      code_ = "NATIVE_ERROR";
      SetError(e.what());
    } catch (...) {
      code_ = "NATIVE_ERROR";
      SetError("an unknown native exception");
    }
  }

  void OnOK() final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Value value;
    try {
      Settle(env);
      value = Result(env);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
      return;
    } catch (const std::exception& e) {  // building the result ran out of memory, say
      deferred_.Reject(MakeError(env, CodeOf(e), MessageOf(e)).Value());
      return;
    }
    deferred_.Resolve(value);
  }

  void OnError(const Napi::Error& e) final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      Settle(env);
    } catch (const std::exception&) {
      // The rejection below matters more than a failure while flushing.
    }
    deferred_.Reject(MakeError(env, code_.empty() ? "NATIVE_ERROR" : code_, e.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  std::string code_;
};

}  // namespace understudy

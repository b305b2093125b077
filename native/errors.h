// Errors that cross from C++ into JavaScript. Every error carries a stable string
// `code` (the same codes the TypeScript layer documents), so callers never have to
// parse messages.
#pragma once
#include <napi.h>
#include <new>
#include <stdexcept>
#include <string>

namespace understudy {

// Thrown inside worker threads (never across the N-API boundary); the worker base
// turns it into a rejected promise with `err.code`.
struct Failure : std::runtime_error {
  std::string code;
  Failure(std::string code, const std::string& message)
      : std::runtime_error(message), code(std::move(code)) {}
};

inline Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// For synchronous calls on the JS thread: throws a JS exception with a code.
[[noreturn]] inline void ThrowError(Napi::Env env, const std::string& code, const std::string& message) {
  throw MakeError(env, code, message);
}

[[noreturn]] inline void ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError err = Napi::TypeError::New(env, message);
  err.Set("code", Napi::String::New(env, "INVALID_ARGUMENT"));
  throw err;
}

// The code for a C++ exception that escaped llama.cpp or the standard library.
inline std::string CodeOf(const std::exception& e) {
  if (const auto* f = dynamic_cast<const Failure*>(&e)) return f->code;
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "OUT_OF_MEMORY";
  return "NATIVE_ERROR";
}

inline std::string MessageOf(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of memory";
  return e.what();
}

// For binding methods on the JS thread that call into llama.cpp: node-addon-api
// passes only Napi::Error on to JavaScript, and any other C++ exception leaving
// a callback would terminate the process. This turns those into coded JS errors.
template <typename Fn>
Napi::Value GuardNative(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw MakeError(env, CodeOf(e), MessageOf(e));
  } catch (...) {
    throw MakeError(env, "NATIVE_ERROR", "an unknown native exception");
  }
}

// GuardNative for a free function registered with Napi::Function::New<>.
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value GuardedFn(const Napi::CallbackInfo& info) {
  return GuardNative(info.Env(), [&]() -> Napi::Value { return Fn(info); });
}

}  // namespace understudy

// Inside an ObjectWrap class: `template <auto M> Napi::Value Guarded(...)`, so
// that Define() registers InstanceMethod<&T::Guarded<&T::Method>> and no method
// can let a C++ exception reach node-addon-api (which would terminate).
#define UNDERSTUDY_GUARDED_METHODS                                                  \
  template <auto Method>                                                            \
  Napi::Value Guarded(const Napi::CallbackInfo& info) {                            \
    return ::understudy::GuardNative(info.Env(), [&]() -> Napi::Value { return (this->*Method)(info); }); \
  }


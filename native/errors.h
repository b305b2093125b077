// Errors that cross from C++ into JavaScript. Every error carries a stable string
// `code` (the same codes the TypeScript layer documents), so callers never have to
// parse messages.
#pragma once
#include <napi.h>
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

}  // namespace understudy

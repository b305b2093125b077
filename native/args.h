// Reading option objects passed from TypeScript. The TS layer validates every
// option with user-facing messages; these checks only keep a wrong value from
// reaching llama.cpp if the binding is called directly.
#pragma once
#include <napi.h>
#include <string>
#include "errors.h"

namespace understudy::args {

inline Napi::Object OptionsAt(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject()) ThrowTypeError(info.Env(), "Expected object for options but received another value");
  return info[i].As<Napi::Object>();
}

inline double Number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) ThrowTypeError(o.Env(), std::string("Expected number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

inline int64_t Integer(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  double d = Number(o, key, static_cast<double>(fallback));
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    ThrowTypeError(o.Env(), std::string("Expected integer in range for ") + key);
  }
  return static_cast<int64_t>(d);
}

inline bool Bool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) ThrowTypeError(o.Env(), std::string("Expected boolean for ") + key);
  return v.As<Napi::Boolean>().Value();
}

inline std::string String(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowTypeError(info.Env(), std::string("Expected string for ") + name);
  }
  return info[i].As<Napi::String>().Utf8Value();
}

inline Napi::Function OptionalFunction(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return Napi::Function();
  if (!info[i].IsFunction()) ThrowTypeError(info.Env(), std::string("Expected function for ") + name);
  return info[i].As<Napi::Function>();
}

inline Napi::Int32Array Tokens(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowTypeError(info.Env(), "Expected Int32Array for tokens");
  }
  return info[i].As<Napi::Int32Array>();
}

}  // namespace understudy::args

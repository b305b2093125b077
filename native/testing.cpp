// Hooks that let the tests drive small native mechanisms directly, with exact
// inputs a model would rarely produce (split UTF-8 characters, stop strings that
// straddle tokens).
#include "testing.h"
#include "args.h"
#include "release.h"
#include "text-stream.h"

namespace understudy {

// textStreamChunks(pieces: Uint8Array[], stops: string[]) -> { chunks: string[], stopped: boolean }
// Feeds the pieces one by one, as generation does per token, and returns the text
// each step released.
Napi::Value TextStreamChunks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsArray()) {
    ThrowTypeError(env, "Expected (Uint8Array[], string[])");
  }
  Napi::Array pieces = info[0].As<Napi::Array>();
  Napi::Array stop_list = info[1].As<Napi::Array>();
  std::vector<std::string> stops;
  for (uint32_t i = 0; i < stop_list.Length(); i++) {
    Napi::Value v = stop_list.Get(i);
    if (!v.IsString()) ThrowTypeError(env, "Expected string[] for stops");
    stops.push_back(v.As<Napi::String>().Utf8Value());
  }
  TextStream stream(stops);
  Napi::Array chunks = Napi::Array::New(env);
  bool stopped = false;
  for (uint32_t i = 0; i < pieces.Length() && !stopped; i++) {
    Napi::Value v = pieces.Get(i);
    if (!v.IsTypedArray()) ThrowTypeError(env, "Expected Uint8Array pieces");
    Napi::Uint8Array bytes = v.As<Napi::Uint8Array>();
    stopped = stream.Push(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
    chunks.Set(chunks.Length(), Napi::String::New(env, stream.TakeReady()));
  }
  if (!stopped) chunks.Set(chunks.Length(), Napi::String::New(env, stream.Finish()));
  Napi::Object out = Napi::Object::New(env);
  out.Set("chunks", chunks);
  out.Set("stopped", stopped);
  return out;
}

}  // namespace understudy

namespace understudy {

Napi::Value LiveHandleCounts(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("models", LiveHandles::models.load());
  out.Set("contexts", LiveHandles::contexts.load());
  out.Set("adapters", LiveHandles::adapters.load());
  out.Set("trainers", LiveHandles::trainers.load());
  return out;
}

}  // namespace understudy

#include "request.h"
#include "errors.h"

namespace understudy {

struct Request::Delivery {
  std::shared_ptr<Request> request;
  Napi::Promise::Deferred deferred;
  Napi::FunctionReference on_text;
  Napi::ObjectReference owner;
  bool settled = false;
};

namespace {
using Delivery = Request::Delivery;

// Tokens that come faster than this reach JS together: the JS thread then does
// not compete with the compute threads for a core on every token. Slower tokens
// still go out one by one, at once.
constexpr auto kStreamInterval = std::chrono::microseconds(2000);

Request::Call g_text = Request::Call::kText;
Request::Call g_finish = Request::Call::kFinish;

double Ms(Clock::time_point from, Clock::time_point to) {
  return from == Clock::time_point{} || to == Clock::time_point{} ? 0
         : std::chrono::duration<double, std::milli>(to - from).count();
}

void SendText(Napi::Env env, Delivery* d) {
  std::string text;
  {
    std::lock_guard<std::mutex> lock(d->request->outbox_mutex);
    text.swap(d->request->outbox);
  }
  if (!text.empty() && !d->on_text.IsEmpty()) d->on_text.Call({Napi::String::New(env, text)});
}

Napi::Object ResultOf(Napi::Env env, const Request& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("text", Napi::String::New(env, r.text));
  Napi::Int32Array tokens = Napi::Int32Array::New(env, r.tokens.size());
  std::copy(r.tokens.begin(), r.tokens.end(), tokens.Data());
  out.Set("tokens", tokens);
  out.Set("promptTokens", static_cast<double>(r.prompt.size()));
  out.Set("reusedPromptTokens", r.reused);
  out.Set("stopReason", r.stop_reason);
  Napi::Object timings = Napi::Object::New(env);
  timings.Set("queueMs", Ms(r.submitted, r.admitted));
  timings.Set("promptMs", Ms(r.admitted, r.prompt_done));
  timings.Set("firstTokenMs", Ms(r.submitted, r.first_token));
  timings.Set("generationMs", Ms(r.prompt_done, r.finished));
  timings.Set("totalMs", Ms(r.submitted, r.finished));
  out.Set("timings", timings);
  return out;
}

}  // namespace

void Request::Emit(const std::string& piece) {
  if (piece.empty()) return;
  text += piece;
  if (!streaming) return;
  {
    std::lock_guard<std::mutex> lock(outbox_mutex);
    outbox += piece;
  }
  auto now = Clock::now();
  if (now - last_sent < kStreamInterval) return;  // goes with a later token or with Finish()
  last_sent = now;
  tsfn.NonBlockingCall(&g_text);
}

void Request::Finish() {
  finished = Clock::now();
  tsfn.NonBlockingCall(&g_finish);
  tsfn.Release();
}

// node-addon-api passes only Napi::Error on from here (any other exception
// would end the process), and a throwing text callback must not keep the
// promise from settling: each part is caught on its own.
void Request::CallJs(Napi::Env env, Napi::Function, Delivery* d, Call* call) {
  if (env == nullptr || d->settled) return;
  Napi::HandleScope scope(env);
  try {
    SendText(env, d);
  } catch (const std::exception&) {
    // This chunk is lost to the stream; the result still carries the whole text.
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
  }
  if (*call != Call::kFinish) return;
  // Finish comes after every text call from the same thread, so all text has
  // gone out before the promise settles.
  d->settled = true;
  const Request& r = *d->request;
  try {
    if (r.error_code.empty()) d->deferred.Resolve(ResultOf(env, r));
    else d->deferred.Reject(MakeError(env, r.error_code, r.error_message).Value());
  } catch (const std::exception& e) {
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    try {
      d->deferred.Reject(MakeError(env, CodeOf(e), MessageOf(e)).Value());
    } catch (const std::exception&) {
      // Nothing more can be done from native code.
    }
  }
}

void AttachDelivery(Napi::Env env, const std::shared_ptr<Request>& request, Napi::Promise::Deferred deferred,
                    Napi::Function on_text, Napi::Object owner) {
  auto* d = new Delivery{request, deferred, Napi::FunctionReference(), Napi::Persistent(owner), false};
  if (!on_text.IsEmpty()) {
    d->on_text = Napi::Persistent(on_text);
    request->streaming = true;
  }
  // The function stays referenced until Finish() releases it, so the process
  // does not exit with a generation in flight.
  request->tsfn = Request::Tsfn::New(env, "understudy.generation", 0, 1, d,
      [](Napi::Env env, void*, Delivery* d) {
        // Finalized without Finish() having run (the environment is going away).
        // While a worker's environment is ending, even making the error can
        // throw (JS can no longer run); an exception leaving this finalizer
        // would terminate the whole process, and nobody is left to tell.
        if (!d->settled && env != nullptr) {
          d->settled = true;
          try {
            d->deferred.Reject(MakeError(env, "DISPOSED", "the environment ended during generation").Value());
          } catch (...) {
            if (env.IsExceptionPending()) env.GetAndClearPendingException();
          }
        }
        delete d;
      });
}

}  // namespace understudy

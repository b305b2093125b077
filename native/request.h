// One generation request as the scheduler sees it: its prompt and sampler, its
// progress, its result, and the way back to JS (a thread-safe function per
// request, which streams text while it runs and settles its promise at the end).
#pragma once
#include <napi.h>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include "abort-flag.h"
#include "llama.h"
#include "sampling.h"
#include "text-stream.h"

namespace understudy {

using Clock = std::chrono::steady_clock;

struct Request {
  Request(std::vector<llama_token> prompt, SamplingOptions opts, std::unique_ptr<Sampler> sampler, SharedFlag abort)
      : prompt(std::move(prompt)), opts(std::move(opts)), sampler(std::move(sampler)), abort(std::move(abort)),
        stream(this->opts.stop) {}

  // Input (fixed once submitted).
  std::vector<llama_token> prompt;
  SamplingOptions opts;
  std::unique_ptr<Sampler> sampler;
  SharedFlag abort;

  // Progress (scheduler thread only).
  TextStream stream;
  std::vector<llama_token> tokens;  // generated, end-of-generation tokens excluded
  std::string text;                 // emitted so far
  int32_t reused = 0;               // prompt tokens found in the slot's cache
  Clock::time_point submitted = Clock::now(), admitted{}, prompt_done{}, first_token{}, finished{};
  bool has_first_token = false;
  std::string stop_reason;
  std::string error_code, error_message;  // set when it failed

  // Text waiting for the JS thread, and when it was last sent for.
  std::mutex outbox_mutex;
  std::string outbox;
  Clock::time_point last_sent{};
  bool streaming = false;  // someone listens for text as it comes

  // Delivery; the scheduler calls Emit() per token and Finish() once.
  struct Delivery;
  enum class Call { kText, kFinish };
  static void CallJs(Napi::Env env, Napi::Function, Delivery* d, Call* call);
  using Tsfn = Napi::TypedThreadSafeFunction<Delivery, Call, CallJs>;
  Tsfn tsfn;

  void Emit(const std::string& piece);
  void Finish();
  void Fail(std::string code, std::string message) {
    error_code = std::move(code);
    error_message = std::move(message);
    Finish();
  }
};

// JS thread: makes the thread-safe function that streams `request`'s text to
// `on_text` (if any) and settles `deferred`; `owner` (the JS Context) is kept
// alive until then.
void AttachDelivery(Napi::Env env, const std::shared_ptr<Request>& request, Napi::Promise::Deferred deferred,
                    Napi::Function on_text, Napi::Object owner);

}  // namespace understudy

#include "generation.h"
#include <chrono>
#include <mutex>
#include "args.h"
#include "js-signal.h"
#include "promise-worker.h"
#include "sampling.h"
#include "text-stream.h"

namespace understudy {
namespace {

using Clock = std::chrono::steady_clock;

// Tokens that come faster than this reach JS together (see JsSignal).
constexpr std::chrono::microseconds kStreamInterval{2000};

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Text produced on the worker thread and not yet handed to JS.
struct Outbox {
  std::mutex mutex;
  std::string text;
};

class GenerateWorker : public PromiseWorker {
 public:
  GenerateWorker(Napi::Env env, Napi::Object owner, std::shared_ptr<ContextHandle> handle,
                 std::vector<llama_token> prompt, SamplingOptions sampling, std::unique_ptr<Sampler> sampler,
                 Napi::Function on_text, SharedFlag abort)
      : PromiseWorker(env, "understudy.generate", owner), h_(std::move(handle)), prompt_(std::move(prompt)),
        opts_(std::move(sampling)), sampler_(std::move(sampler)), abort_(std::move(abort)), stream_(opts_.stop),
        outbox_(std::make_shared<Outbox>()) {
    if (!on_text.IsEmpty()) {
      auto outbox = outbox_;
      signal_ = std::make_unique<JsSignal>(env, on_text, "understudy.generateText",
          [outbox](Napi::Env env, Napi::Function cb) {
            std::string text;
            {
              std::lock_guard<std::mutex> lock(outbox->mutex);
              text.swap(outbox->text);
            }
            if (!text.empty()) cb.Call({Napi::String::New(env, text)});
          },
          kStreamInterval);
    }
    h_->active_abort = abort_;
  }

 protected:
  void Run() override {
    const auto t_start = Clock::now();
    llama_context* ctx = h_->ctx;
    const int32_t n_ctx = static_cast<int32_t>(llama_n_ctx_seq(ctx));
    const int32_t n_prompt = static_cast<int32_t>(prompt_.size());
    if (n_prompt > n_ctx) {
      throw Failure("CONTEXT_OVERFLOW", "the prompt has " + std::to_string(n_prompt) +
                    " tokens but the context holds " + std::to_string(n_ctx));
    }
    int32_t n_past = ReusePrefix();
    reused_ = n_past;
    // Prompt processing, in batches of the context's batch size; only the last
    // token's logits are needed.
    while (n_past < n_prompt) {
      const int32_t n = std::min(h_->batch_capacity, n_prompt - n_past);
      FillBatch(prompt_.data() + n_past, n, n_past, n_past + n == n_prompt);
      Decode();
      h_->cached.insert(h_->cached.end(), prompt_.begin() + n_past, prompt_.begin() + n_past + n);
      n_past += n;
    }
    prompt_ms_ = MsSince(t_start);

    Sampler& sampler = *sampler_;
    sampler.AcceptHistory(prompt_);
    const llama_vocab* vocab = h_->model->vocab;
    const auto t_gen = Clock::now();
    char piece[256];
    for (;;) {
      CheckAbort();
      llama_token token = sampler.Sample(ctx);
      if (first_token_ms_ < 0) first_token_ms_ = MsSince(t_start);
      if (!opts_.ignore_eos && llama_vocab_is_eog(vocab, token)) { stop_reason_ = "eos"; break; }
      tokens_.push_back(token);
      int32_t n = llama_token_to_piece(vocab, token, piece, sizeof piece, 0, opts_.render_special);
      bool stopped = stream_.Push(piece, n > 0 ? static_cast<size_t>(n) : 0);
      Emit(stream_.TakeReady());
      if (stopped) { stop_reason_ = "stop"; break; }
      if (static_cast<int32_t>(tokens_.size()) >= opts_.max_tokens) { stop_reason_ = "maxTokens"; break; }
      if (n_past >= n_ctx) { stop_reason_ = "contextFull"; break; }
      FillBatch(&token, 1, n_past, true);
      Decode();
      h_->cached.push_back(token);
      n_past++;
    }
    if (stop_reason_ != "stop") Emit(stream_.Finish());
    generation_ms_ = MsSince(t_gen);
    total_ms_ = MsSince(t_start);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("text", Napi::String::New(env, text_));
    Napi::Int32Array tokens = Napi::Int32Array::New(env, tokens_.size());
    std::copy(tokens_.begin(), tokens_.end(), tokens.Data());
    out.Set("tokens", tokens);
    out.Set("promptTokens", static_cast<double>(prompt_.size()));
    out.Set("reusedPromptTokens", reused_);
    out.Set("stopReason", stop_reason_);
    Napi::Object timings = Napi::Object::New(env);
    timings.Set("promptMs", prompt_ms_);
    timings.Set("firstTokenMs", first_token_ms_);
    timings.Set("generationMs", generation_ms_);
    timings.Set("totalMs", total_ms_);
    out.Set("timings", timings);
    return out;
  }

  void Settle(Napi::Env env) override {
    if (signal_) signal_->Close(env);
    h_->active_abort.reset();
    h_->busy.store(false);
  }

 private:
  // Keeps the longest cached prefix shared with this prompt and drops the rest.
  // At least the prompt's last token is evaluated again, for its logits.
  int32_t ReusePrefix() {
    auto& cached = h_->cached;
    size_t keep = 0;
    while (keep < cached.size() && keep < prompt_.size() && cached[keep] == prompt_[keep]) keep++;
    if (keep == prompt_.size()) keep--;
    llama_memory_t mem = llama_get_memory(h_->ctx);
    if (!llama_memory_seq_rm(mem, 0, static_cast<llama_pos>(keep), -1)) {
      llama_memory_clear(mem, true);  // this memory cannot drop a tail: start over
      keep = 0;
    }
    cached.resize(keep);
    return static_cast<int32_t>(keep);
  }

  void FillBatch(const llama_token* tokens, int32_t n, int32_t pos, bool logits_last) {
    llama_batch& b = h_->batch;
    b.n_tokens = n;
    for (int32_t i = 0; i < n; i++) {
      b.token[i] = tokens[i];
      b.pos[i] = pos + i;
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = 0;
      b.logits[i] = logits_last && i == n - 1;
    }
  }

  void Decode() {
    int32_t rc = llama_decode(h_->ctx, h_->batch);
    if (rc == 0) return;
    // What was decoded is uncertain now; forget the cache rather than trust it.
    llama_memory_clear(llama_get_memory(h_->ctx), true);
    h_->cached.clear();
    CheckAbort();
    if (rc == 1) throw Failure("CONTEXT_OVERFLOW", "no room left in the context's KV cache");
    throw Failure("DECODE_FAILED", "llama_decode failed with code " + std::to_string(rc));
  }

  void CheckAbort() {
    if (h_->disposed.load()) throw Failure("DISPOSED", "the context was disposed during generation");
    if (abort_->load()) throw Failure("ABORTED", "generation was aborted");
  }

  void Emit(std::string text) {
    if (text.empty()) return;
    text_ += text;
    if (!signal_) return;
    {
      std::lock_guard<std::mutex> lock(outbox_->mutex);
      outbox_->text += text;
    }
    signal_->Notify();
  }

  std::shared_ptr<ContextHandle> h_;
  std::vector<llama_token> prompt_;
  SamplingOptions opts_;
  std::unique_ptr<Sampler> sampler_;
  SharedFlag abort_;
  TextStream stream_;
  std::shared_ptr<Outbox> outbox_;
  std::unique_ptr<JsSignal> signal_;
  std::string text_;
  std::vector<llama_token> tokens_;
  int32_t reused_ = 0;
  std::string stop_reason_ = "maxTokens";
  double prompt_ms_ = 0, first_token_ms_ = -1, generation_ms_ = 0, total_ms_ = 0;
};

}  // namespace

Napi::Value StartGeneration(const Napi::CallbackInfo& info, std::shared_ptr<ContextHandle> handle, Napi::Value owner) {
  Napi::Env env = info.Env();
  Napi::Int32Array tokens = args::Tokens(info, 0);
  const int32_t n_vocab = llama_vocab_n_tokens(handle->model->vocab);
  std::vector<llama_token> prompt(tokens.Data(), tokens.Data() + tokens.ElementLength());
  if (prompt.empty()) ThrowError(env, "INVALID_ARGUMENT", "the prompt has no tokens");
  for (llama_token t : prompt) {
    if (t < 0 || t >= n_vocab) ThrowError(env, "INVALID_ARGUMENT", "prompt token " + std::to_string(t) + " is outside the vocabulary");
  }
  SamplingOptions sampling = ReadSamplingOptions(args::OptionsAt(info, 1));
  // Built here, on the JS thread, so a grammar that does not parse fails the call itself.
  std::unique_ptr<Sampler> sampler;
  try {
    sampler = std::make_unique<Sampler>(handle->model->vocab, sampling);
  } catch (const Failure& f) {
    ThrowError(env, f.code, f.what());
  }
  Napi::Function on_text = args::OptionalFunction(info, 2, "onText");
  SharedFlag abort = AbortFlag::From(env, info.Length() > 3 ? info[3] : env.Undefined());
  if (handle->busy.exchange(true)) ThrowError(env, "BUSY", "the context is already generating");
  auto* worker = new GenerateWorker(env, owner.As<Napi::Object>(), std::move(handle), std::move(prompt),
                                    std::move(sampling), std::move(sampler), on_text, std::move(abort));
  return worker->Start();
}

}  // namespace understudy

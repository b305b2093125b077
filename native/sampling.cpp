#include "sampling.h"
#include "args.h"
#include "log.h"

namespace understudy {

SamplingOptions ReadSamplingOptions(const Napi::Object& o) {
  SamplingOptions s;
  s.temperature = static_cast<float>(args::Number(o, "temperature", s.temperature));
  s.top_k = static_cast<int32_t>(args::Integer(o, "topK", s.top_k, 0, 1 << 24));
  s.top_p = static_cast<float>(args::Number(o, "topP", s.top_p));
  s.min_p = static_cast<float>(args::Number(o, "minP", s.min_p));
  s.repeat_penalty = static_cast<float>(args::Number(o, "repeatPenalty", s.repeat_penalty));
  s.repeat_last_n = static_cast<int32_t>(args::Integer(o, "repeatLastN", s.repeat_last_n, 0, 1 << 24));
  s.frequency_penalty = static_cast<float>(args::Number(o, "frequencyPenalty", s.frequency_penalty));
  s.presence_penalty = static_cast<float>(args::Number(o, "presencePenalty", s.presence_penalty));
  s.seed = static_cast<uint32_t>(args::Integer(o, "seed", 0, 0, UINT32_MAX));
  s.max_tokens = static_cast<int32_t>(args::Integer(o, "maxTokens", s.max_tokens, 1, INT32_MAX));
  s.ignore_eos = args::Bool(o, "ignoreEos", false);
  s.render_special = args::Bool(o, "renderSpecial", false);
  Napi::Value grammar = o.Get("grammar");
  if (grammar.IsString()) s.grammar = grammar.As<Napi::String>().Utf8Value();
  else if (!grammar.IsUndefined()) ThrowTypeError(o.Env(), "Expected string for grammar");
  Napi::Value stop = o.Get("stop");
  if (stop.IsArray()) {
    Napi::Array arr = stop.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsString()) ThrowTypeError(o.Env(), "Expected string[] for stop");
      std::string str = v.As<Napi::String>().Utf8Value();
      if (!str.empty()) s.stop.push_back(std::move(str));
    }
  } else if (!stop.IsUndefined()) {
    ThrowTypeError(o.Env(), "Expected string[] for stop");
  }
  return s;
}

Sampler::Sampler(const llama_vocab* vocab, const SamplingOptions& o) {
  llama_sampler_chain_params params = llama_sampler_chain_default_params();
  params.no_perf = true;
  chain_ = llama_sampler_chain_init(params);
  if (!o.grammar.empty()) {
    log::BeginCapture();
    llama_sampler* grammar = llama_sampler_init_grammar(vocab, o.grammar.c_str(), "root");
    std::string why = log::TakeCaptured();
    if (!grammar) {
      llama_sampler_free(chain_);
      throw Failure("INVALID_GRAMMAR", "the grammar does not parse" + (why.empty() ? "" : ": " + why));
    }
    llama_sampler_chain_add(chain_, grammar);
  }
  const bool penalties = o.repeat_penalty != 1.0f || o.frequency_penalty != 0 || o.presence_penalty != 0;
  if (penalties && o.repeat_last_n != 0) {
    window_ = o.repeat_last_n;
    penalties_ = llama_sampler_init_penalties(llama_vocab_n_tokens(vocab), o.repeat_last_n, o.repeat_penalty,
                                              o.frequency_penalty, o.presence_penalty);
    llama_sampler_chain_add(chain_, penalties_);
  }
  if (o.temperature <= 0) {
    llama_sampler_chain_add(chain_, llama_sampler_init_greedy());
    return;
  }
  if (o.top_k > 0) llama_sampler_chain_add(chain_, llama_sampler_init_top_k(o.top_k));
  if (o.top_p < 1.0f) llama_sampler_chain_add(chain_, llama_sampler_init_top_p(o.top_p, 1));
  if (o.min_p > 0) llama_sampler_chain_add(chain_, llama_sampler_init_min_p(o.min_p, 1));
  llama_sampler_chain_add(chain_, llama_sampler_init_temp(o.temperature));
  llama_sampler_chain_add(chain_, llama_sampler_init_dist(o.seed));
}

// Only the penalty window sees the prompt: the grammar constrains the output
// alone, and would reject the prompt's tokens.
void Sampler::AcceptHistory(const std::vector<llama_token>& tokens) {
  if (!penalties_) return;
  size_t from = window_ < 0 || static_cast<size_t>(window_) >= tokens.size() ? 0 : tokens.size() - window_;
  for (size_t i = from; i < tokens.size(); i++) llama_sampler_accept(penalties_, tokens[i]);
}

}  // namespace understudy

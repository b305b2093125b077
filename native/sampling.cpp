#include "sampling.h"
#include <cmath>
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

Sampler::Sampler(const llama_vocab* vocab, const SamplingOptions& o) : vocab_(vocab) {
  if (!o.grammar.empty()) {
    log::BeginCapture();
    grammar_ = llama_sampler_init_grammar(vocab, o.grammar.c_str(), "root");
    std::string why = log::TakeCaptured();
    if (!grammar_) {
      throw Failure("INVALID_GRAMMAR", "the grammar does not parse" + (why.empty() ? "" : ": " + why) +
                    " (with the log level at error or below, llama.cpp prints the parser's reason on stderr)");
    }
  }
  llama_sampler_chain_params params = llama_sampler_chain_default_params();
  params.no_perf = true;
  chain_ = llama_sampler_chain_init(params);
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

Sampler::~Sampler() {
  if (chain_) llama_sampler_free(chain_);
  if (grammar_) llama_sampler_free(grammar_);
}

// llama_sampler_sample() with the grammar taken apart, because llama.cpp does
// not survive a grammar that rules out every token (a character or token id the
// vocabulary cannot produce): it picks a token anyway and then throws while
// accepting it, or aborts the process when that token ends the generation. So
// the grammar filters first, and if nothing is left the request fails here.
llama_token Sampler::Sample(llama_context* ctx, int32_t at) {
  const float* logits = llama_get_logits_ith(ctx, at);
  if (!logits) throw Failure("NATIVE_ERROR", "llama.cpp has no logits for this sequence");
  const int32_t n_vocab = llama_vocab_n_tokens(vocab_);
  cur_.resize(static_cast<size_t>(n_vocab));
  for (llama_token t = 0; t < n_vocab; t++) cur_[t] = llama_token_data{t, logits[t], 0.0f};
  llama_token_data_array arr{cur_.data(), cur_.size(), -1, false};
  if (grammar_) {
    try {
      llama_sampler_apply(grammar_, &arr);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      throw Failure("INVALID_GRAMMAR", std::string("the grammar failed while sampling: ") + e.what());
    }
    allowed_.assign(static_cast<size_t>(n_vocab), 0);
    bool any = false;
    for (size_t i = 0; i < arr.size; i++) {
      if (arr.data[i].logit != -INFINITY) {
        allowed_[arr.data[i].id] = 1;
        any = true;
      }
    }
    if (!any) {
      throw Failure("INVALID_GRAMMAR", "the grammar allows no token this model can produce after " +
                    std::to_string(sampled_) + " generated tokens: its vocabulary cannot spell what the grammar asks for next");
    }
  }
  llama_sampler_apply(chain_, &arr);
  if (arr.selected < 0 || static_cast<size_t>(arr.selected) >= arr.size) {
    throw Failure("NATIVE_ERROR", "sampling selected no token (check the sampling options)");
  }
  const llama_token token = arr.data[arr.selected].id;
  if (token < 0 || token >= n_vocab) throw Failure("NATIVE_ERROR", "sampling selected a token outside the vocabulary");
  if (grammar_) {
    // A token the grammar ruled out (reachable only through odd penalties that
    // turn logits into NaN) would make llama.cpp abort while accepting it.
    if (!allowed_[token]) {
      throw Failure("NATIVE_ERROR", "sampling chose a token the grammar rules out (the sampling options turned the logits into NaN)");
    }
    try {
      llama_sampler_accept(grammar_, token);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      throw Failure("INVALID_GRAMMAR", std::string("the grammar failed while sampling: ") + e.what());
    }
  }
  llama_sampler_accept(chain_, token);
  sampled_++;
  return token;
}

// Only the penalty window sees the prompt: the grammar constrains the output
// alone, and would reject the prompt's tokens.
void Sampler::AcceptHistory(const std::vector<llama_token>& tokens) {
  if (!penalties_) return;
  size_t from = window_ < 0 || static_cast<size_t>(window_) >= tokens.size() ? 0 : tokens.size() - window_;
  for (size_t i = from; i < tokens.size(); i++) llama_sampler_accept(penalties_, tokens[i]);
}

}  // namespace understudy

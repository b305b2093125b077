// The sampler chain for one generation, built from llama.cpp's samplers in the
// usual order: the grammar (which rules tokens out), penalties, then top-k,
// top-p, min-p, temperature and a seeded draw; or a plain argmax when the
// temperature is 0.
#pragma once
#include <napi.h>
#include <string>
#include <vector>
#include "llama.h"

namespace understudy {

struct SamplingOptions {
  float temperature = 0;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  float frequency_penalty = 0;
  float presence_penalty = 0;
  uint32_t seed = 0;
  int32_t max_tokens = 256;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool render_special = false;
  std::string grammar;  // GBNF, root rule "root"; empty for none
};

SamplingOptions ReadSamplingOptions(const Napi::Object& o);

class Sampler {
 public:
  // Throws Failure("INVALID_GRAMMAR") when the grammar does not parse.
  Sampler(const llama_vocab* vocab, const SamplingOptions& opts);
  ~Sampler() { llama_sampler_free(chain_); }
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Feeds the prompt's tail to the penalty window.
  void AcceptHistory(const std::vector<llama_token>& tokens);
  // Samples from the logits of batch position `at` and records the choice.
  llama_token Sample(llama_context* ctx, int32_t at) { return llama_sampler_sample(chain_, ctx, at); }

 private:
  llama_sampler* chain_;
  llama_sampler* penalties_ = nullptr;  // owned by the chain
  int32_t window_ = 0;
};

}  // namespace understudy

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
  // Parses the grammar, if any: then it may take long, and it recurses as deep
  // as the grammar nests, so it runs on a parse thread (parse-thread.h). Throws
  // Failure("INVALID_GRAMMAR") when the grammar does not parse.
  Sampler(const llama_vocab* vocab, const SamplingOptions& opts);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Feeds the prompt's tail to the penalty window.
  void AcceptHistory(const std::vector<llama_token>& tokens);
  // Samples from the logits of batch position `at` and records the choice.
  // Throws Failure("INVALID_GRAMMAR") when the grammar allows no token the
  // model can produce, and Failure("NATIVE_ERROR") when sampling finds none.
  llama_token Sample(llama_context* ctx, int32_t at);

 private:
  const llama_vocab* vocab_;
  llama_sampler* grammar_ = nullptr;  // apart from the chain: see Sample()
  llama_sampler* chain_ = nullptr;
  llama_sampler* penalties_ = nullptr;  // owned by the chain
  int32_t window_ = 0;
  int32_t sampled_ = 0;                  // tokens sampled so far
  std::vector<llama_token_data> cur_;    // candidates, reused between tokens
  std::vector<char> allowed_;            // by token id: the grammar allows it now
};

}  // namespace understudy

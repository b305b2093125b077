#include "train-checks.h"
#include <string>
#include "errors.h"
#include "llama-internals.h"

namespace understudy {
namespace {

std::string Meta(const llama_model* model, const char* key) {
  char buf[256];
  int n = llama_model_meta_val_str(model, key, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, std::min<size_t>(n, sizeof buf - 1));
}

// Architectures whose graphs have a backward pass at this llama.cpp version and
// that the tests train. Others use LayerNorm, GELU, soft-capping, fused SwiGLU
// or expert routing, whose backward ops ggml lacks.
bool Supported(const std::string& arch) { return arch == "llama"; }

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::vector<ggml_tensor*> CheckTrainable(const ModelHandle& model, const AdapterHandle& adapter) {
  const llama_model* m = model.model;
  if (model.vocab_only) throw Failure("TRAINING_UNSUPPORTED", "a vocab-only model cannot be trained: load it without vocabOnly");
  if (adapter.model.get() != &model) throw Failure("INVALID_ARGUMENT", "the adapter was loaded for another model");
  const std::string arch = Meta(m, "general.architecture");
  if (!Supported(arch)) {
    throw Failure("TRAINING_UNSUPPORTED",
                  "LoRA training supports the llama architecture (Llama, Mistral and their kin) at this llama.cpp version, not '" +
                  arch + "': its graph uses operations without a backward pass (LayerNorm, GELU, soft-capping, fused SwiGLU or experts)");
  }
  if (internals::ExpertCount(m) > 0) {
    throw Failure("TRAINING_UNSUPPORTED", "mixture-of-experts models cannot be trained at this llama.cpp version: expert routing (MUL_MAT_ID) has no backward pass");
  }
  const std::string layout = internals::WeightLayoutProblem(m);
  if (!layout.empty()) throw Failure("TRAINING_UNSUPPORTED", "this model cannot be trained as loaded: " + layout);

  std::vector<ggml_tensor*> params = internals::AdapterTensors(adapter.adapter);
  if (params.empty()) throw Failure("INVALID_ADAPTER", "the adapter has no tensors to train");
  for (ggml_tensor* t : params) {
    const std::string name = t->name;
    if (t->type != GGML_TYPE_F32) {
      throw Failure("INVALID_ADAPTER", "adapter tensor " + name + " is " + ggml_type_name(t->type) + ": only F32 adapters can be trained");
    }
    if (name.rfind("blk.", 0) != 0) {
      throw Failure("TRAINING_UNSUPPORTED", "adapter tensor " + name + " is outside the repeating layers: only their matrices can be trained");
    }
    if (name.find(".attn_k.") != std::string::npos || name.find(".attn_v.") != std::string::npos) {
      throw Failure("TRAINING_UNSUPPORTED", "adapter tensor " + name +
                    " adapts attn_k or attn_v, which get no gradient at this llama.cpp version (attention reads K and V back from the cache)");
    }
    if (!EndsWith(name, ".lora_a") && !EndsWith(name, ".lora_b")) {
      throw Failure("INVALID_ADAPTER", "adapter tensor " + name + " is neither a lora_a nor a lora_b");
    }
    if (!t->buffer || !ggml_backend_buffer_is_host(t->buffer)) {
      throw Failure("TRAINING_UNSUPPORTED", "adapter tensor " + name + " is not in CPU memory, where this llama.cpp version trains");
    }
  }
  return params;
}

}  // namespace understudy

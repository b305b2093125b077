#include "llama-internals.h"
#include <algorithm>
// Internal headers of the vendored tree (not on the include path on purpose:
// nothing else may use them).
#include "../vendor/llama.cpp/src/llama-adapter.h"
#include "../vendor/llama.cpp/src/llama-context.h"
#include "../vendor/llama.cpp/src/llama-model.h"

namespace understudy::internals {

ggml_backend_sched_t ContextScheduler(llama_context* ctx) { return ctx->get_sched(); }

std::vector<ggml_tensor*> AdapterTensors(llama_adapter_lora* adapter) {
  std::vector<std::string> names;
  for (const auto& [name, _] : adapter->ab_map) names.push_back(name);
  std::sort(names.begin(), names.end());
  std::vector<ggml_tensor*> out;
  for (const auto& name : names) {
    const auto& w = adapter->ab_map.at(name);
    out.push_back(w.a);
    out.push_back(w.b);
  }
  return out;
}

uint32_t TrainContextSize(const llama_model* model) { return model->hparams.n_ctx_train; }

void SetTrainContextSize(llama_model* model, uint32_t n) { model->hparams.n_ctx_train = n; }

uint32_t GraphNodeBudget(const llama_model* model) {
  uint32_t budget = std::max<uint32_t>(1024u, 8u * static_cast<uint32_t>(model->n_tensors()));
  for (const llama_adapter_lora* lora : model->loras) budget += lora->get_n_nodes();
  return budget;
}

std::string WeightLayoutProblem(const llama_model* model) {
  for (const auto& [name, tensor] : model->tensors_by_name) {
    if (!tensor->buffer) continue;
    ggml_backend_buffer_type_t buft = ggml_backend_buffer_get_type(tensor->buffer);
    if (!ggml_backend_buft_is_host(buft)) {
      const std::string type = ggml_backend_buft_name(buft);
      // CPU buffer types that are not host memory hold repacked weights (CPU_REPACK, AMX, KleidiAI).
      if (type.rfind("CPU", 0) == 0) {
        return "its weights are repacked for faster CPU inference (" + name + " is in " + type +
               "), and repacked weights have no backward pass: load the model with { trainable: true }";
      }
      return "its weights are on a GPU (" + name + " is in " + type +
             "), where this llama.cpp version cannot train: load the model with { trainable: true }";
    }
  }
  return "";
}

uint32_t ExpertCount(const llama_model* model) { return model->hparams.n_expert; }

std::vector<Matrix> LayerMatrices(const llama_model* model) {
  std::vector<Matrix> out;
  for (const auto& [name, tensor] : model->tensors_by_name) {
    if (name.rfind("blk.", 0) != 0 || name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0) continue;
    if (ggml_n_dims(tensor) != 2) continue;
    out.push_back({name, tensor->ne[0], tensor->ne[1]});
  }
  return out;
}

}  // namespace understudy::internals

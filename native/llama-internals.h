// What training needs that llama.cpp's public API does not expose, read from its
// internal headers. The tree is pinned (scripts/fetch-llama.mjs), and these few
// accessors are the only code that touches llama.cpp's internals, so an upgrade
// has one file to check.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "ggml-backend.h"
#include "llama.h"

namespace understudy::internals {

// The scheduler that runs the context's graphs, the training graphs included.
ggml_backend_sched_t ContextScheduler(llama_context* ctx);

// The adapter's A and B tensors, ordered by name.
std::vector<ggml_tensor*> AdapterTensors(llama_adapter_lora* adapter);

// llama_opt_init() writes the training window into the model's n_ctx_train, and
// llama_opt_epoch() reads it back as the window; other contexts of the model
// read the real value, so the trainer sets it around each step only.
uint32_t TrainContextSize(const llama_model* model);
void SetTrainContextSize(llama_model* model, uint32_t n);

// The graph-node budget of a new context of a plain (llama-like) model: what
// llama_context::graph_max_nodes() computes, 8 per model tensor (at least 1024)
// plus 6 per A/B pair of every adapter loaded on the model.
uint32_t GraphNodeBudget(const llama_model* model);

// Why the model's weights cannot take part in a training graph on the CPU
// (repacked for faster CPU inference, or resident on a GPU), or "".
std::string WeightLayoutProblem(const llama_model* model);

// Number of experts (MoE), 0 for dense models.
uint32_t ExpertCount(const llama_model* model);

struct Matrix {
  std::string name;
  int64_t n_in;
  int64_t n_out;
};
// The 2-D weights of the repeating layers (blk.N.*.weight).
std::vector<Matrix> LayerMatrices(const llama_model* model);

}  // namespace understudy::internals

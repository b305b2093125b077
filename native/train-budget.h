// The graph-node budget of a training context. llama.cpp sizes every graph of a
// context when the context is made, for inference: about 8 nodes per model
// tensor, plus 6 per A/B pair of each adapter loaded on the model. A training
// step's graph (forward, backward and one AdamW node per parameter) is about
// twice as big, and ggml aborts the process when a graph outgrows its budget.
// The only public knob is the adapters loaded on the model, so the trainer
// loads unused rank-1 "padding" adapters until the budget covers the step.
#pragma once
#include <vector>
#include "llama.h"

namespace understudy {

// Nodes a training step of this model needs, with a margin, for an adapter of
// `pairs` A/B pairs.
uint32_t TrainingNodesNeeded(const llama_model* model, size_t pairs);

// Loads padding adapters until a context made now gets `needed` nodes; the
// caller frees them (llama_adapter_lora_free) after the training context.
std::vector<llama_adapter_lora*> PadNodeBudget(llama_model* model, uint32_t needed);

}  // namespace understudy

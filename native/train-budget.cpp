#include "train-budget.h"
#include <cstdio>
#include <memory>
#include <string>
#include "errors.h"
#include "gguf.h"
#include "llama-internals.h"

namespace understudy {
namespace {

std::string Architecture(const llama_model* model) {
  char buf[128];
  int n = llama_model_meta_val_str(model, "general.architecture", buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, std::min<size_t>(n, sizeof buf - 1));
}

// One rank-1 adapter over every 2-D layer weight: the most node budget one
// adapter can add. Its B is zero, and it is never applied to a context.
llama_adapter_lora* PaddingAdapter(llama_model* model, const std::vector<internals::Matrix>& matrices) {
  size_t floats = 0;
  for (const auto& m : matrices) floats += m.n_in + m.n_out;
  ggml_init_params params = {
      /*.mem_size   =*/ floats * sizeof(float) + 2 * matrices.size() * ggml_tensor_overhead() + 1024,
      /*.mem_buffer =*/ nullptr,
      /*.no_alloc   =*/ false,
  };
  std::unique_ptr<ggml_context, decltype(&ggml_free)> ctx(ggml_init(params), ggml_free);
  std::unique_ptr<gguf_context, decltype(&gguf_free)> gguf(gguf_init_empty(), gguf_free);
  if (!ctx || !gguf) throw std::bad_alloc();
  const std::string arch = Architecture(model);
  gguf_set_val_str(gguf.get(), "general.architecture", arch.c_str());
  gguf_set_val_str(gguf.get(), "general.type", "adapter");
  gguf_set_val_str(gguf.get(), "adapter.type", "lora");
  gguf_set_val_f32(gguf.get(), "adapter.lora.alpha", 1.0f);
  for (const auto& m : matrices) {
    ggml_tensor* a = ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F32, m.n_in, 1);
    ggml_tensor* b = ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F32, 1, m.n_out);
    ggml_set_zero(a);
    ggml_set_zero(b);
    ggml_set_name(a, (m.name + ".lora_a").c_str());
    ggml_set_name(b, (m.name + ".lora_b").c_str());
    gguf_add_tensor(gguf.get(), a);
    gguf_add_tensor(gguf.get(), b);
  }
  std::unique_ptr<FILE, decltype(&fclose)> file(tmpfile(), fclose);
  if (!file) throw Failure("IO_ERROR", "could not create a temporary file for the training context's padding adapter");
  if (!gguf_write_to_file_ptr(gguf.get(), file.get(), false) || fflush(file.get()) != 0) {
    throw Failure("IO_ERROR", "could not write the training context's padding adapter to a temporary file");
  }
  rewind(file.get());
  llama_adapter_lora* adapter = llama_adapter_lora_init_from_file_ptr(model, file.get());
  if (!adapter) throw Failure("NATIVE_ERROR", "llama.cpp refused the training context's padding adapter");
  return adapter;
}

}  // namespace

uint32_t TrainingNodesNeeded(const llama_model* model, size_t pairs) {
  // Measured on llama models of 2, 5 and 16 layers with 1, 3 and 5 targets
  // (the run result's graphNodes): 9 + 69 per layer + 18 per A/B pair, exactly.
  // A quarter more, and a larger constant, cover what those models lack.
  const uint32_t layers = static_cast<uint32_t>(llama_model_n_layer(model));
  const uint32_t measured = 64u + 80u * layers + 24u * static_cast<uint32_t>(pairs);
  return measured + measured / 4;
}

std::vector<llama_adapter_lora*> PadNodeBudget(llama_model* model, uint32_t needed) {
  std::vector<llama_adapter_lora*> padding;
  const auto matrices = internals::LayerMatrices(model);
  try {
    while (internals::GraphNodeBudget(model) < needed) {
      if (matrices.empty() || padding.size() >= 64) {
        throw Failure("TRAINING_UNSUPPORTED", "the training graph of this model needs " + std::to_string(needed) +
                      " nodes, more than a llama.cpp context can be given");
      }
      padding.push_back(PaddingAdapter(model, matrices));
    }
  } catch (...) {
    for (auto* a : padding) llama_adapter_lora_free(a);
    throw;
  }
  return padding;
}

}  // namespace understudy

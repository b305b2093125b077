// What llama_opt_epoch() cannot do by itself, done from ggml's eval callback
// while a training step's graph runs (see ../shared/TRAINING-NOTES.md, "the four
// gaps"):
// - the loss counts only the positions the mask selects: it is computed here
//   from the logits, and the gradient of the positions that do not count is
//   zeroed (the rest rescaled) right after the cross-entropy backward node;
// - the gradient accumulators llama.cpp never clears are zeroed at the start of
//   every step, so a step applies its own gradient and not the sum of all so far;
// - the global gradient norm is clipped before the first AdamW node runs.
// The callback splits the graph only at these few nodes, so it costs little.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>
#include "ggml-backend.h"

namespace understudy {

class TrainingHooks {
 public:
  struct Step {
    const int32_t* labels = nullptr;  // window entries
    const uint8_t* mask = nullptr;    // window entries: 1 where the label counts
    int64_t window = 0;
    bool train = false;
    float max_grad_norm = 0;  // 0: no clipping
  };

  explicit TrainingHooks(std::vector<ggml_tensor*> params);

  // Before each step.
  void Begin(const Step& step);
  // After each step (checks what the first training step found).
  void Finish();
  // After it: the masked mean loss (NaN when no position counted), the counted
  // positions, the gradient norm before clipping (NaN for an evaluation), whether
  // it was clipped, and the graph's size.
  double loss() const { return loss_; }
  int64_t counted() const { return counted_; }
  bool saw_loss() const { return saw_loss_; }
  double GradNorm() const;
  bool clipped() const { return clipped_; }
  int64_t nodes() const { return index_; }
  // Set when the graph did not look like a training step (no optimizer node for
  // a parameter, say); the step's result must not be trusted.
  const std::string& problem() const { return problem_; }

  // ggml_backend_sched_eval_callback.
  static bool Callback(ggml_tensor* t, bool ask, void* self);

 private:
  bool Ask(ggml_tensor* t);
  void Computed(ggml_tensor* t);
  void MaskedLoss(const ggml_tensor* logits);
  void MaskGradient(ggml_tensor* grad);
  void ZeroGradients();
  double SquaredNorm() const;
  void ClipGradients();

  std::unordered_set<const ggml_tensor*> params_;
  // The persistent gradient accumulators, one per parameter, found on the
  // first training step as the gradient inputs of the AdamW nodes.
  std::vector<ggml_tensor*> grads_;
  bool grads_known_ = false;
  // Position (in graph order) of the node just before the first AdamW node, and
  // its name: the graph is rebuilt each step but keeps its shape.
  int64_t clip_index_ = -1;
  std::string clip_name_;

  Step step_;
  const ggml_tensor* last_ = nullptr;  // the node asked about last
  int64_t index_ = 0;
  double loss_ = 0;
  int64_t counted_ = 0;
  bool saw_loss_ = false;
  bool clipped_ = false;
  double norm_ = -1;
  std::string problem_;
};

}  // namespace understudy

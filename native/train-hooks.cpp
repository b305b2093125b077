#include "train-hooks.h"
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace understudy {
namespace {

// Rows of an F32 [width, rows] tensor, read in place when the buffer is in host
// memory (the CPU backend) and copied otherwise.
class F32Rows {
 public:
  explicit F32Rows(const ggml_tensor* t) : tensor_(t) {
    if (t->buffer && ggml_backend_buffer_is_host(t->buffer)) {
      data_ = static_cast<float*>(t->data);
    } else {
      copy_.resize(ggml_nelements(t));
      ggml_backend_tensor_get(t, copy_.data(), 0, ggml_nbytes(t));
      data_ = copy_.data();
    }
  }
  float* row(int64_t r) { return data_ + r * tensor_->ne[0]; }
  // Writes a copy back to the device; nothing to do in host memory.
  void Store() {
    if (!copy_.empty()) ggml_backend_tensor_set(const_cast<ggml_tensor*>(tensor_), copy_.data(), 0, ggml_nbytes(tensor_));
  }

 private:
  const ggml_tensor* tensor_;
  float* data_ = nullptr;
  std::vector<float> copy_;
};

bool Contiguous2d(const ggml_tensor* t) {
  return t->type == GGML_TYPE_F32 && ggml_is_contiguous(t) && t->ne[2] == 1 && t->ne[3] == 1;
}

}  // namespace

TrainingHooks::TrainingHooks(std::vector<ggml_tensor*> params) : params_(params.begin(), params.end()) {}

void TrainingHooks::Begin(const Step& step) {
  step_ = step;
  last_ = nullptr;
  index_ = 0;
  loss_ = std::numeric_limits<double>::quiet_NaN();
  counted_ = 0;
  saw_loss_ = false;
  clipped_ = false;
  norm_ = -1;
  problem_.clear();
}

void TrainingHooks::Finish() {
  if (!step_.train || grads_known_) return;
  if (grads_.size() != params_.size()) {
    problem_ = "the training graph updates " + std::to_string(grads_.size()) + " of the adapter's " +
               std::to_string(params_.size()) + " tensors";
    grads_.clear();
    clip_index_ = -1;
    return;
  }
  grads_known_ = true;
}

bool TrainingHooks::Callback(ggml_tensor* t, bool ask, void* self) {
  auto* hooks = static_cast<TrainingHooks*>(self);
  if (ask) return hooks->Ask(t);
  hooks->Computed(t);
  return true;  // go on with the graph
}

bool TrainingHooks::Ask(ggml_tensor* t) {
  const int64_t index = index_++;
  const ggml_tensor* previous = last_;
  last_ = t;
  switch (t->op) {
    case GGML_OP_CROSS_ENTROPY_LOSS:
    case GGML_OP_CROSS_ENTROPY_LOSS_BACK:
      return true;
    case GGML_OP_OPT_STEP_ADAMW:
      if (!grads_known_ && step_.train) {
        if (clip_index_ < 0 && previous) {
          clip_index_ = index - 1;
          clip_name_ = previous->name;
        }
        ggml_tensor* grad = t->src[1];
        if (params_.count(t->src[0])) grads_.push_back(grad->view_src ? grad->view_src : grad);
      }
      return false;
    default:
      break;
  }
  // The node before the first AdamW node, on steps after the first: every
  // gradient is complete there and no parameter has moved yet.
  return step_.train && grads_known_ && index == clip_index_ && clip_name_ == t->name;
}

void TrainingHooks::Computed(ggml_tensor* t) {
  if (t->op == GGML_OP_CROSS_ENTROPY_LOSS) {
    if (step_.train) ZeroGradients();
    MaskedLoss(t->src[0]);
    return;
  }
  if (t->op == GGML_OP_CROSS_ENTROPY_LOSS_BACK) {
    MaskGradient(t);
    return;
  }
  ClipGradients();
}

void TrainingHooks::MaskedLoss(const ggml_tensor* logits) {
  saw_loss_ = true;
  if (!Contiguous2d(logits) || logits->ne[1] != step_.window) {
    problem_ = "the training graph's logits are not [vocabulary, window] F32";
    return;
  }
  F32Rows rows(logits);
  const int64_t width = logits->ne[0];
  double sum = 0;
  int64_t counted = 0;
  for (int64_t r = 0; r < step_.window; r++) {
    if (!step_.mask[r]) continue;
    const float* row = rows.row(r);
    float max = row[0];
    for (int64_t i = 1; i < width; i++) max = std::max(max, row[i]);
    double exp_sum = 0;
    for (int64_t i = 0; i < width; i++) exp_sum += std::exp(static_cast<double>(row[i] - max));
    sum += std::log(exp_sum) + max - row[step_.labels[r]];
    counted++;
  }
  counted_ = counted;
  loss_ = counted ? sum / counted : std::numeric_limits<double>::quiet_NaN();
}

// llama.cpp's loss is the mean over every row of the window. Its gradient for a
// row is (softmax - label) / rows; for the masked mean it is (softmax - label) /
// counted on counted rows and 0 elsewhere.
void TrainingHooks::MaskGradient(ggml_tensor* grad) {
  if (!Contiguous2d(grad) || grad->ne[1] != step_.window) {
    problem_ = "the training graph's loss gradient is not [vocabulary, window] F32";
    return;
  }
  F32Rows rows(grad);
  const int64_t width = grad->ne[0];
  int64_t counted = 0;
  for (int64_t r = 0; r < step_.window; r++) counted += step_.mask[r] ? 1 : 0;
  const float scale = counted ? static_cast<float>(step_.window) / static_cast<float>(counted) : 0.0f;
  for (int64_t r = 0; r < step_.window; r++) {
    float* row = rows.row(r);
    if (!step_.mask[r]) {
      std::memset(row, 0, width * sizeof(float));
    } else {
      for (int64_t i = 0; i < width; i++) row[i] *= scale;
    }
  }
  rows.Store();
}

void TrainingHooks::ZeroGradients() {
  for (ggml_tensor* g : grads_) ggml_backend_tensor_memset(g, 0, 0, ggml_nbytes(g));
}

double TrainingHooks::SquaredNorm() const {
  double sum = 0;
  for (ggml_tensor* g : grads_) {
    F32Rows data(g);
    const float* p = data.row(0);
    for (int64_t i = 0, n = ggml_nelements(g); i < n; i++) sum += static_cast<double>(p[i]) * p[i];
  }
  return sum;
}

void TrainingHooks::ClipGradients() {
  norm_ = std::sqrt(SquaredNorm());
  if (step_.max_grad_norm <= 0 || !(norm_ > step_.max_grad_norm)) return;
  const float scale = static_cast<float>(step_.max_grad_norm / norm_);
  for (ggml_tensor* g : grads_) {
    F32Rows data(g);
    float* p = data.row(0);
    for (int64_t i = 0, n = ggml_nelements(g); i < n; i++) p[i] *= scale;
    data.Store();
  }
  clipped_ = true;
}

double TrainingHooks::GradNorm() const {
  if (!step_.train) return std::numeric_limits<double>::quiet_NaN();
  return norm_ >= 0 ? norm_ : std::sqrt(SquaredNorm());
}

}  // namespace understudy

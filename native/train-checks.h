// What must hold before a training graph is built: ggml asserts (ending the
// process) on a missing backward op, a quantized gradient or a bad shape, so
// every case it would reach is refused here with a coded error.
#pragma once
#include <vector>
#include "handles.h"

namespace understudy {

// Throws Failure (TRAINING_UNSUPPORTED, INVALID_ARGUMENT) unless this adapter
// of this model can be trained; returns the tensors to train.
std::vector<ggml_tensor*> CheckTrainable(const ModelHandle& model, const AdapterHandle& adapter);

}  // namespace understudy

// Loading ggml's backend modules in a build with CPU variants
// (UNDERSTUDY_CPU_VARIANTS): which CPU module to load is chosen once per process.
#pragma once
#include <napi.h>

namespace understudy {

// loadBackends(dir, cpuVariant | null) -> { dynamic, cpu: { module, features } }
// Loads the modules in `dir` once per process: the best CPU variant for this CPU
// (ggml scores each), or the named one. Later calls only report. A build
// without variants loads nothing and reports its built-in CPU code.
Napi::Value LoadBackends(const Napi::CallbackInfo& info);

}  // namespace understudy

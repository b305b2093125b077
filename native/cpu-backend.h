// The few functions of ggml's CPU backend that Understudy calls itself (thread
// pools, thread counts). A source build links them; a build with CPU variants
// has them only in the libggml-cpu-<variant>.so loaded at run time, so they are
// looked up there, through the registry, as llama.cpp does.
#pragma once
#include "ggml-backend.h"
#include "ggml-cpu.h"

namespace understudy::cpu_backend {

// nullptr when the pool cannot start (or no CPU backend is loaded).
ggml_threadpool* NewThreadpool(ggml_threadpool_params* params);
void FreeThreadpool(ggml_threadpool* pool);
// Sets the thread count of `backend` when it is the CPU backend; no-op otherwise.
void SetThreadsIfCpu(ggml_backend_t backend, int threads);

}  // namespace understudy::cpu_backend

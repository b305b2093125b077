#include "cpu-backend.h"
#include <atomic>
#include <mutex>

namespace understudy::cpu_backend {

#ifdef UNDERSTUDY_CPU_VARIANTS
namespace {

using NewFn = ggml_threadpool* (*)(ggml_threadpool_params*);
using FreeFn = void (*)(ggml_threadpool*);
using SetThreadsFn = void (*)(ggml_backend_t, int);

struct Functions {
  NewFn new_pool = nullptr;
  FreeFn free_pool = nullptr;
  SetThreadsFn set_threads = nullptr;
};

// Looked up once the CPU module is registered (loadBackends); until then (never,
// in practice: nothing runs before it) the lookup is retried, not cached empty.
const Functions& Lookup() {
  static Functions fns;
  static std::once_flag once;
  static std::atomic<bool> ready{false};
  if (!ready.load(std::memory_order_acquire)) {
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU");
    if (reg) {
      std::call_once(once, [reg] {
        fns.new_pool = reinterpret_cast<NewFn>(ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new"));
        fns.free_pool = reinterpret_cast<FreeFn>(ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free"));
        fns.set_threads = reinterpret_cast<SetThreadsFn>(ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads"));
        ready.store(true, std::memory_order_release);
      });
    }
  }
  return fns;
}

}  // namespace

ggml_threadpool* NewThreadpool(ggml_threadpool_params* params) {
  return Lookup().new_pool ? Lookup().new_pool(params) : nullptr;
}

void FreeThreadpool(ggml_threadpool* pool) {
  if (pool && Lookup().free_pool) Lookup().free_pool(pool);
}

void SetThreadsIfCpu(ggml_backend_t backend, int threads) {
  ggml_backend_dev_t dev = ggml_backend_get_device(backend);
  if (dev && ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU && Lookup().set_threads) {
    Lookup().set_threads(backend, threads);
  }
}
#else
ggml_threadpool* NewThreadpool(ggml_threadpool_params* params) { return ggml_threadpool_new(params); }

void FreeThreadpool(ggml_threadpool* pool) {
  if (pool) ggml_threadpool_free(pool);
}

void SetThreadsIfCpu(ggml_backend_t backend, int threads) {
  if (ggml_backend_is_cpu(backend)) ggml_backend_cpu_set_n_threads(backend, threads);
}
#endif

}  // namespace understudy::cpu_backend

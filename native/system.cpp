#include "system.h"
#include "ggml-backend.h"
#include "llama.h"

namespace understudy {
namespace {

const char* DeviceTypeName(enum ggml_backend_dev_type t) {
  switch (t) {
    case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
    case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
    case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
    case GGML_BACKEND_DEVICE_TYPE_ACCEL: return "accel";
    default: return "other";
  }
}

}  // namespace

Napi::Value SystemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("llamaCommit", UNDERSTUDY_LLAMA_COMMIT);
  out.Set("gpu", UNDERSTUDY_GPU);
  out.Set("features", llama_print_system_info());
  out.Set("supportsGpuOffload", llama_supports_gpu_offload());
  out.Set("supportsMmap", llama_supports_mmap());
  out.Set("maxDevices", static_cast<double>(llama_max_devices()));
  Napi::Array backends = Napi::Array::New(env);
  for (size_t i = 0; i < ggml_backend_reg_count(); i++) {
    backends.Set(static_cast<uint32_t>(i), ggml_backend_reg_name(ggml_backend_reg_get(i)));
  }
  out.Set("backends", backends);
  Napi::Array devices = Napi::Array::New(env);
  for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(dev, &free, &total);
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", ggml_backend_dev_name(dev));
    d.Set("description", ggml_backend_dev_description(dev));
    d.Set("type", DeviceTypeName(ggml_backend_dev_type(dev)));
    d.Set("backend", ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev)));
    d.Set("memoryFree", static_cast<double>(free));
    d.Set("memoryTotal", static_cast<double>(total));
    devices.Set(static_cast<uint32_t>(i), d);
  }
  out.Set("devices", devices);
  return out;
}

}  // namespace understudy

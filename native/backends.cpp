#include "backends.h"
#ifndef _WIN32
#include <dlfcn.h>
#endif
#include <filesystem>
#include <mutex>
#include <string>
#include "errors.h"
#include "ggml-backend.h"

namespace understudy {
namespace {

std::mutex load_mutex;
bool load_done = false;
// A failed load is remembered and thrown again: ggml's registry cannot be reset.
std::string load_error_code;
std::string load_error_message;

bool VariantNameIsPlain(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    if (!ok) return false;
  }
  return name != "." && name != "..";
}

ggml_backend_reg_t CpuRegistration() {
  for (size_t i = 0; i < ggml_backend_reg_count(); i++) {
    ggml_backend_reg_t reg = ggml_backend_reg_get(i);
    for (size_t d = 0; d < ggml_backend_reg_dev_count(reg); d++) {
      if (ggml_backend_dev_type(ggml_backend_reg_dev_get(reg, d)) == GGML_BACKEND_DEVICE_TYPE_CPU) return reg;
    }
  }
  return nullptr;
}

#ifdef UNDERSTUDY_CPU_VARIANTS
// Throws (as load_error_*) when the modules cannot give us a CPU backend.
void LoadModules(const std::string& dir, const std::string& variant) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (variant.empty()) {
    ggml_backend_load_all_from_path(dir.c_str());
  } else {
    for (const char* gpu : {"cuda", "hip"}) {
      fs::path module = fs::path(dir) / (std::string("libggml-") + gpu + ".so");
      if (fs::exists(module, ec)) ggml_backend_load(module.c_str());
    }
    fs::path module = fs::path(dir) / ("libggml-cpu-" + variant + ".so");
    if (!fs::exists(module, ec)) {
      throw Failure("INVALID_CONFIG", "UNDERSTUDY_CPU_VARIANT is " + variant + " but there is no " +
                    module.filename().string() + " in " + dir);
    }
    if (!ggml_backend_load(module.c_str())) {
      throw Failure("INVALID_CONFIG", "UNDERSTUDY_CPU_VARIANT is " + variant +
                    " but this CPU lacks instructions it needs (or " + module.string() + " failed to load)");
    }
  }
  if (!CpuRegistration()) {
    throw Failure("BINDING_NOT_FOUND", "no CPU module (libggml-cpu-*.so) in " + dir +
                  " could be loaded on this CPU: reinstall the package");
  }
}
#endif

}  // namespace

Napi::Value LoadBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "Expected string for dir");
  if (info.Length() > 1 && !info[1].IsString() && !info[1].IsNull() && !info[1].IsUndefined()) {
    ThrowTypeError(env, "Expected string or null for cpuVariant");
  }
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::string variant = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (!variant.empty() && !VariantNameIsPlain(variant)) {
    ThrowError(env, "INVALID_CONFIG", "UNDERSTUDY_CPU_VARIANT must be a variant name such as haswell or x64");
  }
  std::lock_guard<std::mutex> lock(load_mutex);
#ifdef UNDERSTUDY_CPU_VARIANTS
  if (!load_done) {
    load_done = true;
    try {
      LoadModules(dir, variant);
    } catch (const std::exception& e) {
      load_error_code = CodeOf(e);
      load_error_message = "loading the CPU modules from " + dir + " failed: " + MessageOf(e);
      if (const auto* f = dynamic_cast<const Failure*>(&e)) load_error_message = f->what();
    } catch (...) {
      load_error_code = "NATIVE_ERROR";
      load_error_message = "loading the CPU modules from " + dir + " failed with an unknown native exception";
    }
  }
  if (!load_error_code.empty()) ThrowError(env, load_error_code, load_error_message);
#else
  load_done = true;
#endif
  Napi::Object out = Napi::Object::New(env);
#ifdef UNDERSTUDY_CPU_VARIANTS
  out.Set("dynamic", true);
#else
  out.Set("dynamic", false);
#endif
  ggml_backend_reg_t cpu = CpuRegistration();
  if (cpu) {
    Napi::Object desc = Napi::Object::New(env);
    Napi::Object features = Napi::Object::New(env);
    void* fn = ggml_backend_reg_get_proc_address(cpu, "ggml_backend_get_features");
    if (fn) {
      auto get_features = reinterpret_cast<ggml_backend_get_features_t>(fn);
      for (ggml_backend_feature* f = get_features(cpu); f && f->name; f++) features.Set(f->name, f->value);
#ifndef _WIN32
      Dl_info where{};
      // The file the CPU code came from: a libggml-cpu-<variant>.so, or the addon itself.
      if (dladdr(fn, &where) && where.dli_fname) desc.Set("module", where.dli_fname);
#endif
    }
    desc.Set("features", features);
    out.Set("cpu", desc);
  } else {
    out.Set("cpu", env.Null());
  }
  return out;
}

}  // namespace understudy

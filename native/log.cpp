#include "log.h"
#include <atomic>
#include <cstdio>
#include <mutex>
#include "llama.h"

namespace understudy::log {
namespace {

std::atomic<int> g_level{kNone};
thread_local bool t_capturing = false;
thread_local std::string t_captured;
thread_local int t_last_level = kInfo;

int FromGgml(ggml_log_level level) {
  switch (level) {
    case GGML_LOG_LEVEL_DEBUG: return kDebug;
    case GGML_LOG_LEVEL_INFO: return kInfo;
    case GGML_LOG_LEVEL_WARN: return kWarn;
    case GGML_LOG_LEVEL_ERROR: return kError;
    default: return -1;  // GGML_LOG_LEVEL_CONT / NONE: continues the previous line
  }
}

// Called by llama.cpp's C code, on any thread: an exception must not leave it
// (the string append can throw bad_alloc), so a line that cannot be captured is
// dropped from the captured reason.
void OnLog(ggml_log_level ggml_level, const char* text, void*) noexcept {
  if (text == nullptr) return;
  int level = FromGgml(ggml_level);
  if (level < 0) level = t_last_level;
  t_last_level = level;
  if (t_capturing && level >= kWarn && t_captured.size() < 4096) {
    try {
      t_captured += text;
    } catch (...) {
    }
  }
  if (level >= g_level.load(std::memory_order_relaxed)) {
    // llama.cpp's own diagnostics, shown only when the user asked for them.
    fputs(text, stderr);
  }
}

}  // namespace

void Install() {
  static std::once_flag once;
  std::call_once(once, [] { llama_log_set(OnLog, nullptr); });
}

void SetLevel(int level) { g_level.store(level); }
int GetLevel() { return g_level.load(); }

void BeginCapture() {
  t_capturing = true;
  t_captured.clear();
}

std::string TakeCaptured() {
  t_capturing = false;
  std::string out;
  out.swap(t_captured);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  // Keep the last line or two: the reason is at the end, after llama.cpp's context.
  size_t cut = out.size() > 600 ? out.rfind('\n', out.size() - 600) : std::string::npos;
  if (cut != std::string::npos) out = out.substr(cut + 1);
  for (auto& c : out) if (c == '\n') c = ';';
  return out;
}

}  // namespace understudy::log

// llama.cpp and ggml log through one process-wide callback. We print what is at or
// above the chosen level to stderr (nothing by default) and keep, per thread, the
// last warnings and errors, so a failed call can say why llama.cpp refused.
#pragma once
#include <string>

namespace understudy::log {

enum Level { kDebug = 1, kInfo = 2, kWarn = 3, kError = 4, kNone = 5 };

void Install();
void SetLevel(int level);
int GetLevel();
// Starts collecting warnings and errors on the calling thread.
void BeginCapture();
// Returns what was collected since BeginCapture(), trimmed, and stops collecting.
std::string TakeCaptured();

}  // namespace understudy::log

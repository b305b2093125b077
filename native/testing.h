#pragma once
#include <napi.h>

namespace understudy {
Napi::Value TextStreamChunks(const Napi::CallbackInfo& info);
}

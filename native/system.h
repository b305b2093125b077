// What this build of the addon can run on: backends, devices, build flags.
#pragma once
#include <napi.h>

namespace understudy {

// systemInfo() -> { llamaCommit, gpu, features, backends, devices, ... }
Napi::Value SystemInfo(const Napi::CallbackInfo& info);

}  // namespace understudy

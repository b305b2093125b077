// Disposal that JavaScript can await. A handle's memory goes on whichever thread
// lets go of it last (a worker, the JS thread), so dispose() cannot know when that
// is: it hangs a ReleaseSignal on the handle, and the handle's destructor fires
// it once everything is freed. The signal then settles the promise on the JS thread.
#pragma once
#include <napi.h>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace understudy {

class ReleaseSignal {
 public:
  // JS thread: a signal and the promise that Fire() resolves.
  static std::shared_ptr<ReleaseSignal> New(Napi::Env env, Napi::Promise* promise);
  // Any thread, once: resolves the promise (a no-op once the environment has ended).
  void Fire();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// The signals waiting on one handle; the handle's destructor fires them last.
class ReleaseWaiters {
 public:
  void Add(std::shared_ptr<ReleaseSignal> signal) {
    std::lock_guard<std::mutex> lock(mutex_);
    signals_.push_back(std::move(signal));
  }
  void FireAll() {
    std::vector<std::shared_ptr<ReleaseSignal>> signals;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      signals.swap(signals_);
    }
    for (auto& s : signals) s->Fire();
  }

 private:
  std::mutex mutex_;
  std::vector<std::shared_ptr<ReleaseSignal>> signals_;
};

// JS thread: lets go of `handle`. When this is the last reference, the memory is
// freed on a libuv worker thread rather than here: freeing a context waits for
// its threads (and a decode in progress) to stop, which must not stall the event
// loop. While the environment is shutting down, it is freed here at once.
void DropLater(Napi::Env env, std::shared_ptr<void> handle);

// The native handles alive in this process, for the tests' leak checks.
struct LiveHandles {
  static inline std::atomic<int> models{0};
  static inline std::atomic<int> contexts{0};
  static inline std::atomic<int> adapters{0};
  static inline std::atomic<int> trainers{0};
};

}  // namespace understudy

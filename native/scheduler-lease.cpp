#include <chrono>
#include <thread>
#include "handles.h"
#if defined(__linux__)
#include <csignal>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace understudy {
namespace {

// The thread has returned from its work but may not have exited yet (it still
// unwinds its stack and thread-locals). Waiting for the OS to drop it makes
// "dispose() resolved" mean "its threads are gone" (bounded, in case it lingers).
void AwaitExit(long thread) {
#if defined(__linux__)
  const pid_t pid = getpid();
  for (int i = 0; i < 20000 && syscall(SYS_tgkill, pid, static_cast<pid_t>(thread), 0) == 0; i++) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
#else
  (void)thread;
#endif
}

}  // namespace

long SchedulerLease::CurrentThread() {
#if defined(__linux__)
  static thread_local const long id = static_cast<long>(syscall(SYS_gettid));
  return id;
#else
  return 0;
#endif
}

SchedulerLease::SchedulerLease(std::shared_ptr<State> state) : state_(std::move(state)) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->held = true;
}

SchedulerLease::~SchedulerLease() {
  const long self = CurrentThread();
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->held = false;
  state_->exiting = self != 0 && self == state_->scheduler_thread.load() ? self : 0;
  state_->cv.notify_all();
}

void SchedulerLease::Wait(State& state) {
  long thread;
  {
    std::unique_lock<std::mutex> lock(state.mutex);
    state.cv.wait(lock, [&] { return !state.held; });
    thread = state.exiting;
  }
  if (thread != 0) AwaitExit(thread);
}

}  // namespace understudy

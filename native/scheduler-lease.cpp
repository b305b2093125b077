#include "handles.h"

namespace understudy {

SchedulerLease::SchedulerLease(std::shared_ptr<State> state) : state_(std::move(state)) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->held = true;
}

SchedulerLease::~SchedulerLease() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->held = false;
  state_->cv.notify_all();
}

void SchedulerLease::Wait(State& state) {
  std::unique_lock<std::mutex> lock(state.mutex);
  state.cv.wait(lock, [&] { return !state.held; });
}

}  // namespace understudy

// Scheduler: serves up to n_seq_max generations at once on one context, with
// continuous batching. Its own thread owns the llama_context while any request
// is active; each step decodes, in one batch, the next token of every generating
// sequence plus as much of the newcomers' prompts as the batch has room for, so
// a long prompt never stalls the others for more than one batch. Finished
// sequences free their slot at once; requests beyond the slots wait in a
// bounded queue.
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include "request.h"

namespace understudy {

struct ContextHandle;

class Scheduler {
 public:
  Scheduler(ContextHandle* owner, int32_t slots, size_t max_queued);
  // Joins the thread (after Shutdown()): the context that owns this scheduler
  // is freed only once its thread has exited. Never runs on that thread, which
  // holds no reference to the context.
  ~Scheduler();

  // JS thread or a parse thread, while the caller holds the context's lease.
  // Queues the request; false when the queue is full.
  bool Submit(std::shared_ptr<Request> request);
  // JS thread: no request active or waiting.
  bool Idle();
  // JS thread: runs `fn` between steps, if no request is active or waiting, and
  // returns whether it ran. For calls that change the whole context (adapters,
  // clearing the cache) and must not overlap a step still finishing.
  template <typename Fn>
  bool Exclusive(Fn&& fn) {
    if (!Idle()) return false;  // busy: say so at once rather than wait out a decode
    std::lock_guard<std::mutex> step(step_mutex_);  // at most the tail of the last step
    if (!Idle()) return false;
    fn();
    return true;
  }
  // Stops the thread after failing what is active or queued (dispose).
  void Shutdown();
  // Cached tokens in all slots (0 while busy); JS thread.
  size_t CachedTokens();
  // Forgets every slot's cache; only inside Exclusive().
  void ClearCaches();

 private:
  struct Slot {
    std::shared_ptr<Request> request;
    std::vector<llama_token> cached;  // tokens in this sequence's KV cache
    size_t prompt_pos = 0;            // next prompt token to evaluate
    llama_token next = -1;            // sampled, to be evaluated next step
    int32_t logits_at = -1;           // batch index of this slot's logits, or -1
    uint64_t adapters_version = 0;    // AdaptersVersion() when the cache was made
  };
  // The sum of the applied adapters' versions: it changes when one of them is trained.
  uint64_t AdaptersVersion() const;

  void Run();
  void Admit();
  void AdmitTo(llama_memory_t mem, size_t seq, Slot& slot, Request& r);
  void Forget(size_t seq);
  size_t PickSlot(const std::vector<llama_token>& prompt);
  std::shared_ptr<Request> Release(Slot& slot);
  bool Step();
  void Sample(Slot& slot);
  // Fails the requests in slots (after an exception in a step).
  void FailActive(const std::string& code, const std::string& message);
  void FailAll(const std::string& code, const std::string& message);

  ContextHandle* owner_;
  std::vector<Slot> slots_;
  size_t max_queued_;
  std::mutex mutex_;
  std::mutex step_mutex_;  // held by the scheduler thread for each Admit() + Step()
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Request>> queue_;  // guarded by mutex_
  size_t active_ = 0;                           // guarded by mutex_
  bool running_ = false;                        // guarded by mutex_: thread started
  std::thread thread_;                          // guarded by mutex_
  bool stopping_ = false;                       // guarded by mutex_
};

}  // namespace understudy

#include "scheduler.h"
#include <algorithm>
#include <thread>
#include "errors.h"
#include "handles.h"

namespace understudy {
namespace {

size_t CommonPrefix(const std::vector<llama_token>& a, const std::vector<llama_token>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) n++;
  return n;
}

void AddToken(llama_batch& b, llama_token token, llama_pos pos, llama_seq_id seq, bool logits) {
  const int32_t k = b.n_tokens++;
  b.token[k] = token;
  b.pos[k] = pos;
  b.n_seq_id[k] = 1;
  b.seq_id[k][0] = seq;
  b.logits[k] = logits;
}

}  // namespace

Scheduler::Scheduler(ContextHandle* owner, int32_t slots, size_t max_queued)
    : owner_(owner), slots_(static_cast<size_t>(std::max(1, slots))), max_queued_(max_queued) {}

Scheduler::~Scheduler() {
  Shutdown();
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    thread.swap(thread_);
  }
  if (!thread.joinable()) return;
  // Cannot happen (the thread holds no reference to the context), but joining
  // itself would throw from a destructor and end the process.
  if (thread.get_id() == std::this_thread::get_id()) {
    thread.detach();
    return;
  }
  thread.join();
}

bool Scheduler::Submit(std::shared_ptr<Request> request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      request->Fail("DISPOSED", "the context has been disposed");
      return true;
    }
    const size_t free_slots = slots_.size() - active_;
    if (queue_.size() >= max_queued_ + free_slots) return false;
    if (!running_) {
      // The thread holds nothing: the context's destructor stops and joins it.
      try {
        thread_ = std::thread([this] { Run(); });
      } catch (const std::exception& e) {
        request->Fail("NATIVE_ERROR", std::string("could not start the generation thread: ") + e.what());
        return true;
      }
      running_ = true;
    }
    queue_.push_back(std::move(request));
  }
  wake_.notify_one();
  return true;
}

bool Scheduler::Idle() {
  std::lock_guard<std::mutex> lock(mutex_);
  return active_ == 0 && queue_.empty();
}

void Scheduler::Shutdown() {
  bool had_thread;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    had_thread = running_;
  }
  wake_.notify_all();
  if (!had_thread) FailAll("DISPOSED", "the context has been disposed");
}

size_t Scheduler::CachedTokens() {
  size_t n = 0;
  Exclusive([&] {
    for (const auto& s : slots_) n += s.cached.size();
  });
  return n;
}

void Scheduler::ClearCaches() {
  for (auto& s : slots_) s.cached.clear();
  llama_memory_clear(llama_get_memory(owner_->ctx), true);
}

void Scheduler::Run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty() || active_ > 0; });
      if (stopping_) break;
    }
    std::lock_guard<std::mutex> step(step_mutex_);
    // Nothing may escape this thread: an exception here would abort the
    // process. What the step was doing fails; the context goes on serving.
    try {
      Admit();
      Step();
    } catch (const std::exception& e) {
      FailActive(CodeOf(e), "generation failed in llama.cpp: " + MessageOf(e));
    } catch (...) {
      FailActive("NATIVE_ERROR", "generation failed in llama.cpp with an unknown exception");
    }
  }
  FailAll("DISPOSED", "the context was disposed during generation");
}

// Moves waiting requests into free slots, each into the slot whose cache shares
// the longest prefix with its prompt, and drops the rest of that cache.
void Scheduler::Admit() {
  // A free slot whose cache was computed before an applied adapter was trained
  // further holds stale keys and values: it starts over. (Its adapters change
  // only between steps, and `request` only on this thread.)
  const uint64_t version = AdaptersVersion();
  for (size_t i = 0; i < slots_.size(); i++) {
    if (!slots_[i].request && slots_[i].adapters_version != version) {
      if (!slots_[i].cached.empty()) Forget(i);
      slots_[i].adapters_version = version;
    }
  }
  std::vector<std::pair<size_t, std::shared_ptr<Request>>> admitted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!queue_.empty() && active_ < slots_.size()) {
      auto request = std::move(queue_.front());
      queue_.pop_front();
      size_t seq = PickSlot(request->prompt);
      slots_[seq].request = request;  // taken now, so the next pick skips it
      active_++;
      admitted.emplace_back(seq, std::move(request));
    }
  }
  llama_memory_t mem = llama_get_memory(owner_->ctx);
  for (auto& [seq, request] : admitted) {
    Slot& slot = slots_[seq];
    try {
      AdmitTo(mem, seq, slot, *request);
    } catch (const std::exception& e) {
      Forget(seq);
      Release(slot)->Fail(CodeOf(e), MessageOf(e));
    }
  }
}

// Points the slot's cache at the request's prompt: keeps the shared prefix.
void Scheduler::AdmitTo(llama_memory_t mem, size_t seq, Slot& slot, Request& r) {
  if (!r.sampler) throw Failure("NATIVE_ERROR", "the request reached the scheduler without a sampler");
  size_t keep = CommonPrefix(slot.cached, r.prompt);
  if (keep == r.prompt.size()) keep--;  // the last prompt token is evaluated again, for its logits
  if (!llama_memory_seq_rm(mem, static_cast<llama_seq_id>(seq), static_cast<llama_pos>(keep), -1)) {
    llama_memory_seq_rm(mem, static_cast<llama_seq_id>(seq), -1, -1);  // cannot cut a tail: start over
    keep = 0;
  }
  slot.cached.resize(keep);
  slot.prompt_pos = keep;
  slot.next = -1;
  r.reused = static_cast<int32_t>(keep);
  r.admitted = Clock::now();
  r.sampler->AcceptHistory(r.prompt);
}

uint64_t Scheduler::AdaptersVersion() const {
  uint64_t sum = 0;
  for (const auto& a : owner_->adapters) sum += a->version.load();
  return sum;
}

// Drops a sequence's cache: after a failure, what it holds is not known.
void Scheduler::Forget(size_t seq) {
  slots_[seq].cached.clear();
  try {
    llama_memory_seq_rm(llama_get_memory(owner_->ctx), static_cast<llama_seq_id>(seq), -1, -1);
  } catch (...) {
    // Already failing; the next admission into this slot starts from nothing anyway.
  }
}

size_t Scheduler::PickSlot(const std::vector<llama_token>& prompt) {
  size_t best = slots_.size(), best_len = 0;
  for (size_t i = 0; i < slots_.size(); i++) {
    if (slots_[i].request) continue;
    size_t len = CommonPrefix(slots_[i].cached, prompt);
    if (best == slots_.size() || len > best_len) {
      best = i;
      best_len = len;
    }
  }
  return best;
}

// Frees the slot and hands back its request, to be settled after: a caller who
// awaits the result must find the slot already free.
std::shared_ptr<Request> Scheduler::Release(Slot& slot) {
  std::shared_ptr<Request> request = std::move(slot.request);
  slot.next = -1;
  slot.logits_at = -1;
  std::lock_guard<std::mutex> lock(mutex_);
  active_--;
  return request;
}

// One decode: the next token of every generating sequence, then prompt tokens of
// newcomers while the batch has room. Returns false when there was nothing to do.
bool Scheduler::Step() {
  llama_context* ctx = owner_->ctx;
  llama_batch& b = owner_->batch;
  b.n_tokens = 0;
  std::vector<int32_t> evaluating(slots_.size(), 0);  // tokens each slot put in this batch
  for (size_t seq = 0; seq < slots_.size(); seq++) {
    Slot& s = slots_[seq];
    s.logits_at = -1;
    if (!s.request) continue;
    if (s.request->abort->load()) {
      Release(s)->Fail("ABORTED", "generation was aborted");
      continue;
    }
    if (s.next >= 0) {
      s.logits_at = b.n_tokens;
      AddToken(b, s.next, static_cast<llama_pos>(s.cached.size()), static_cast<llama_seq_id>(seq), true);
      evaluating[seq] = 1;
    }
  }
  for (size_t seq = 0; seq < slots_.size() && b.n_tokens < owner_->batch_capacity; seq++) {
    Slot& s = slots_[seq];
    if (!s.request || s.next >= 0) continue;
    const auto& prompt = s.request->prompt;
    const size_t n = std::min(prompt.size() - s.prompt_pos, static_cast<size_t>(owner_->batch_capacity - b.n_tokens));
    const bool last = s.prompt_pos + n == prompt.size();
    for (size_t i = 0; i < n; i++) {
      AddToken(b, prompt[s.prompt_pos + i], static_cast<llama_pos>(s.cached.size() + i), static_cast<llama_seq_id>(seq),
               last && i == n - 1);
    }
    if (last) s.logits_at = b.n_tokens - 1;
    evaluating[seq] = static_cast<int32_t>(n);
  }
  if (b.n_tokens == 0) return false;

  const int32_t rc = llama_decode(ctx, b);
  if (rc != 0) {
    if (owner_->disposed.load()) return false;  // Run() fails everything on its way out
    for (size_t seq = 0; seq < slots_.size(); seq++) {
      Slot& s = slots_[seq];
      if (!s.request || evaluating[seq] == 0) continue;
      llama_memory_seq_rm(llama_get_memory(ctx), static_cast<llama_seq_id>(seq), -1, -1);
      s.cached.clear();
      auto request = Release(s);
      if (rc == 1) request->Fail("CONTEXT_OVERFLOW", "no room left in the context's KV cache for this sequence");
      else request->Fail("DECODE_FAILED", "llama_decode failed with code " + std::to_string(rc));
    }
    return true;
  }
  for (size_t seq = 0; seq < slots_.size(); seq++) {
    Slot& s = slots_[seq];
    if (!s.request || evaluating[seq] == 0) continue;
    if (s.next >= 0) {
      s.cached.push_back(s.next);
      s.next = -1;
    } else {
      const auto& prompt = s.request->prompt;
      s.cached.insert(s.cached.end(), prompt.begin() + s.prompt_pos, prompt.begin() + s.prompt_pos + evaluating[seq]);
      s.prompt_pos += evaluating[seq];
      if (s.prompt_pos == prompt.size()) s.request->prompt_done = Clock::now();
    }
    if (s.logits_at < 0) continue;
    try {
      Sample(s);
    } catch (const std::exception& e) {
      // This request alone fails (a grammar the vocabulary cannot satisfy, say);
      // its cache holds exactly what was evaluated, so it stays usable.
      s.next = -1;
      if (s.request) Release(s)->Fail(CodeOf(e), MessageOf(e));
    }
  }
  return true;
}

void Scheduler::Sample(Slot& slot) {
  Request& r = *slot.request;
  const llama_vocab* vocab = owner_->model->vocab;
  llama_token token = r.sampler->Sample(owner_->ctx, slot.logits_at);
  if (!r.has_first_token) {
    r.has_first_token = true;
    r.first_token = Clock::now();
  }
  std::string reason;
  if (!r.opts.ignore_eos && llama_vocab_is_eog(vocab, token)) {
    reason = "eos";
  } else {
    r.tokens.push_back(token);
    char piece[256];
    int32_t n = llama_token_to_piece(vocab, token, piece, sizeof piece, 0, r.opts.render_special);
    bool stopped = r.stream.Push(piece, n > 0 ? static_cast<size_t>(n) : 0);
    r.Emit(r.stream.TakeReady());
    if (stopped) reason = "stop";
    else if (static_cast<int32_t>(r.tokens.size()) >= r.opts.max_tokens) reason = "maxTokens";
    else if (static_cast<int32_t>(slot.cached.size()) >= static_cast<int32_t>(llama_n_ctx_seq(owner_->ctx))) reason = "contextFull";
  }
  if (reason.empty()) {
    slot.next = token;
    return;
  }
  if (reason != "stop") r.Emit(r.stream.Finish());
  r.stop_reason = reason;
  Release(slot)->Finish();
}

void Scheduler::FailActive(const std::string& code, const std::string& message) {
  for (size_t seq = 0; seq < slots_.size(); seq++) {
    if (!slots_[seq].request) continue;
    Forget(seq);
    Release(slots_[seq])->Fail(code, message);
  }
}

void Scheduler::FailAll(const std::string& code, const std::string& message) {
  for (size_t seq = 0; seq < slots_.size(); seq++) {
    if (slots_[seq].request) Release(slots_[seq])->Fail(code, message);
  }
  std::deque<std::shared_ptr<Request>> waiting;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    waiting.swap(queue_);
  }
  for (auto& r : waiting) r->Fail(code, message);
}

}  // namespace understudy

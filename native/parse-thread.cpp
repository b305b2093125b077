#include "parse-thread.h"
#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#endif
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include "errors.h"

namespace understudy {
namespace {

constexpr int kMaxThreads = 4;
constexpr auto kIdleExit = std::chrono::seconds(10);

// Never destroyed: a thread may still be finishing a job while the process exits.
struct Pool {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> jobs;
  int threads = 0;
  int idle = 0;
};

Pool& ThePool() {
  static Pool* pool = new Pool();
  return *pool;
}

void Serve() {
  Pool& p = ThePool();
  std::unique_lock<std::mutex> lock(p.mutex);
  for (;;) {
    p.idle++;
    const bool got = p.wake.wait_for(lock, kIdleExit, [&] { return !p.jobs.empty(); });
    p.idle--;
    if (!got) break;
    std::function<void()> job = std::move(p.jobs.front());
    p.jobs.pop_front();
    lock.unlock();
    try {
      job();
    } catch (...) {
      // Jobs settle their own requests; nothing may leave this thread.
    }
    job = nullptr;  // its captures are released outside the lock
    lock.lock();
  }
  p.threads--;
}

#ifdef _WIN32
DWORD WINAPI ThreadMain(LPVOID) {
  Serve();
  return 0;
}

bool StartThread() {
  HANDLE h = CreateThread(nullptr, kParseStackBytes, ThreadMain, nullptr, STACK_SIZE_PARAM_IS_A_RESERVATION, nullptr);
  if (!h) return false;
  CloseHandle(h);
  return true;
}
#else
void* ThreadMain(void*) {
  Serve();
  return nullptr;
}

bool StartThread() {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_t thread;
  const bool ok = pthread_attr_setstacksize(&attr, kParseStackBytes) == 0 &&
                  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                  pthread_create(&thread, &attr, ThreadMain, nullptr) == 0;
  pthread_attr_destroy(&attr);
  return ok;
}
#endif

}  // namespace

void RunOnParseThread(std::function<void()> job) {
  Pool& p = ThePool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.jobs.push_back(std::move(job));
  if (p.idle > static_cast<int>(p.jobs.size()) - 1) {
    p.wake.notify_one();
    return;
  }
  if (p.threads < kMaxThreads && StartThread()) {
    p.threads++;
    return;
  }
  if (p.threads > 0) return;  // a running thread takes it when it is free
  p.jobs.pop_back();
  throw Failure("NATIVE_ERROR", "could not start a thread to parse the grammar");
}

}  // namespace understudy

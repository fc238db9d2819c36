// Ready notifications behind ObjectRef futures (loom/_private/futures.py):
// the core worker's OnReady puts the caller's token on one queue, and one
// Python thread per process takes tokens off it and completes the futures.
// No thread per ref and no polling: the taker sleeps until a token lands.
//
//   _core.notify_when_ready(ref, 7)   # 7 is queued once ref is ready
//   _core.take_ready(-1)              # [7], blocking with the GIL released
#include <deque>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bindings.h"

namespace loom::py {
namespace {

// Thread-safe. Push runs on whichever thread makes an object ready (an
// event loop among them), so it only takes the lock and appends.
class ReadyQueue {
 public:
  void Push(int64_t token) {
    absl::MutexLock lock(&mu_);
    tokens_.push_back(token);
  }
  // Every queued token, once there is one; empty at the timeout
  // (timeout_ms < 0: none).
  std::vector<int64_t> Take(int64_t timeout_ms) {
    absl::MutexLock lock(&mu_);
    auto any = [this]()
                   ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !tokens_.empty(); };
    if (timeout_ms < 0) {
      mu_.Await(absl::Condition(&any));
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&any),
                           absl::Milliseconds(timeout_ms));
    }
    std::vector<int64_t> out(tokens_.begin(), tokens_.end());
    tokens_.clear();
    return out;
  }

 private:
  absl::Mutex mu_;
  std::deque<int64_t> tokens_ ABSL_GUARDED_BY(mu_);
};

// Never destroyed: a callback may still push while the process exits.
ReadyQueue& Queue() {
  static ReadyQueue* queue = new ReadyQueue;
  return *queue;
}

}  // namespace

void PushReadyToken(int64_t token) { Queue().Push(token); }

void BindFutures(pyb::module_& m) {
  m.def(
      "notify_when_ready",
      [](const PyObjectRef& ref, int64_t token) {
        Core().OnReady(ref.id(), [token] { Queue().Push(token); });
      },
      pyb::arg("ref"), pyb::arg("token"));
  m.def(
      "take_ready",
      [](int64_t timeout_ms) {
        pyb::gil_scoped_release release;
        return Queue().Take(timeout_ms);
      },
      pyb::arg("timeout_ms"));
}

}  // namespace loom::py

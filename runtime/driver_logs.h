// runtime/driver_logs.h
//
// DriverLogs: a driver's subscription to what its job's workers print, on
// every node. Raylets publish the lines to the head; this long-polls the
// head for them (PollLogs; its own call, so tasks pay nothing for it) and
// queues them, bounded, until a printer takes them: a C++ driver's printer
// thread (api.cc) or a Python driver's log thread, which print
// "(pid=N, ip=IP) text" on stdout, or stderr for what workers wrote there.
//
//   DriverLogs logs({&loop, &clients, gcs_address, job});
//   logs.Start();
//   for (const auto& line : logs.Take(absl::Seconds(1))) Print(line);
//   logs.Flush(absl::Seconds(2));  // before the job ends: its last lines
//   logs.Shutdown();               // Take returns what is left, then none
//
// Thread-safe.
#ifndef LOOM_RUNTIME_DRIVER_LOGS_H_
#define LOOM_RUNTIME_DRIVER_LOGS_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"

namespace loom {

class DriverLogs {
 public:
  struct Line {
    int64_t pid = 0;
    bool is_err = false;
    std::string ip;
    std::string text;
  };
  // How long one poll waits at the head for lines.
  static constexpr absl::Duration kPollWait = absl::Seconds(30);
  // The wait after a failed poll (the head is down or restarting).
  static constexpr absl::Duration kRetryWait = absl::Milliseconds(500);
  // Lines queued for the printer, at most (the newest are dropped past it,
  // and the printer is told how many).
  static constexpr size_t kMaxQueuedBytes = 16 << 20;

  struct Options {
    EventLoop* loop = nullptr;
    ClientPool* clients = nullptr;
    std::string gcs_address;
    JobId job;
  };
  explicit DriverLogs(Options options) : options_(std::move(options)) {}
  ~DriverLogs() { Shutdown(); }

  void Start();
  // Waits up to `timeout` for lines and returns those queued (none after
  // the timeout, or once shut down and emptied).
  std::vector<Line> Take(absl::Duration timeout);
  // Asks the head to have every raylet publish the job's lines now, then
  // waits until they are queued; gives up after `timeout`.
  absl::Status Flush(absl::Duration timeout);
  // Stops polling and wakes Take; what is queued can still be taken.
  void Shutdown();

  // "(pid=N, ip=IP) text"
  static std::string Format(const Line& line);

 private:
  void Poll(int64_t after_seq);
  void Queue(std::vector<Line> lines, int64_t seq, int64_t head_dropped);

  Options options_;
  CallsInFlight calls_;
  mutable absl::Mutex mu_;
  std::deque<Line> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t queued_seq_ ABSL_GUARDED_BY(mu_) = 0;    // the head's, last queued
  int64_t head_dropped_ ABSL_GUARDED_BY(mu_) = 0;  // reported so far
  int64_t dropped_here_ ABSL_GUARDED_BY(mu_) = 0;  // queue full, unreported
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_DRIVER_LOGS_H_

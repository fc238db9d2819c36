// src/gcs/log_channel.h
//
// LogChannel: what workers print, on its way from the raylets to each job's
// driver. Raylets publish batches of lines (PublishLogs); every open job
// keeps its own numbered buffer, bounded in bytes (when full, the oldest
// batches go first and their lines are counted as dropped), and its driver
// long-polls for the batches after the last one it printed (PollLogs).
// Jobs open when they are added and are forgotten a while after they end.
//
//   channel.Open(job);
//   channel.Publish(job, std::move(batch));   // numbered, wakes the driver
//   channel.Poll(job, after_seq, absl::Seconds(30),
//                [](std::vector<rpc::LogBatch> b, int64_t last, int64_t
//                dropped) {...});
//   channel.End(job);      // polls answered, nothing more kept
//   channel.Forget(job);   // a while later
//
// Not thread-safe: every method runs on the GCS event loop.
#ifndef LOOM_GCS_LOG_CHANNEL_H_
#define LOOM_GCS_LOG_CHANNEL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "proto/gcs.pb.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"

namespace prometheus {
class Counter;
}

namespace loom::gcs {

class LogChannel {
 public:
  // A job's buffer holds at most this many bytes of batches.
  static constexpr size_t kMaxBytesPerJob = 4 << 20;

  using PollCallback = std::function<void(std::vector<rpc::LogBatch>,
                                          int64_t last_seq, int64_t dropped)>;

  struct Options {
    EventLoop* loop = nullptr;
    size_t max_bytes_per_job = kMaxBytesPerJob;
    prometheus::Counter* dropped_lines = nullptr;  // optional
  };
  explicit LogChannel(Options options) : options_(options) {}

  // The job may publish and be polled from now on.
  void Open(const JobId& job);
  // The job ended: its waiting polls are answered now, later polls do not
  // wait, and nothing more is kept for it (its driver already asked for
  // the last lines). A poll left waiting would also hold up the server's
  // shutdown, whose callers may be gone.
  void End(const JobId& job);
  // Drops the job's buffer; its waiting polls are answered with nothing.
  void Forget(const JobId& job);
  bool IsOpen(const JobId& job) const { return jobs_.contains(job); }

  // Numbers the batch, keeps it and wakes the job's polls. NotFound for a
  // job that is not open or has ended (nothing is kept).
  absl::Status Publish(const JobId& job, rpc::LogBatch batch);
  // Answers at once when the job has batches after `after_seq` (or
  // `after_seq` is ahead of the job's last: the head restarted), else on
  // the next publish or after `timeout` with none. NotFound (answered at
  // once) for a job that is not open.
  absl::Status Poll(const JobId& job, int64_t after_seq, absl::Duration timeout,
                    PollCallback done);
  // The job's last sequence number (0 for one not open).
  int64_t last_seq(const JobId& job) const;
  // Bytes held for all jobs.
  size_t bytes() const;

 private:
  struct Waiter {
    uint64_t id;
    int64_t after_seq;
    PollCallback done;
  };
  struct Job {
    std::deque<rpc::LogBatch> batches;
    size_t bytes = 0;
    int64_t last_seq = 0;
    int64_t dropped = 0;  // lines dropped when the buffer was full
    bool ended = false;
    std::list<Waiter> waiters;
  };
  static std::vector<rpc::LogBatch> After(const Job& job, int64_t seq);

  Options options_;
  uint64_t next_waiter_ = 0;
  absl::flat_hash_map<JobId, Job> jobs_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_LOG_CHANNEL_H_

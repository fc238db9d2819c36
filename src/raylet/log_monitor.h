// src/raylet/log_monitor.h
//
// LogMonitor: follows what this node's workers print and publishes it to
// the head, line by line, per job, so that each job's driver prints it
// wherever it runs. Its files, in <logs_dir>, .out for stdout and .err for
// stderr: python-<job hex>.out, where Python workers append records
// "(pid=N) text\n", and cpp-<job hex>-<pid>.out, a C++ worker's own stdout
// once it serves the job (plain text). A thread of its own wakes when such a
// file grows (inotify; no timer while idle), reads the new complete lines and
// sends them in batches (PublishLogs, one call at a time). While the head
// cannot be reached the lines wait in a buffer bounded in bytes: past the bound
// the oldest are dropped, counted in loom_raylet_log_lines_dropped_total
// and logged once per outage.
//
//   LogMonitor logs({session_dir + "/logs", node_ip, gcs_address, &clients,
//                    &metrics});
//   logs.Start();
//   logs.Flush(job, [](absl::Status s) {...});  // the job's lines, now
//   logs.Stop();
//
// Thread-safe.
#ifndef LOOM_SRC_RAYLET_LOG_MONITOR_H_
#define LOOM_SRC_RAYLET_LOG_MONITOR_H_

#include <atomic>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/gcs.pb.h"
#include "src/common/client_pool.h"
#include "src/common/ids.h"
#include "src/common/metrics.h"

namespace loom::raylet {

// A followed file, by its name.
struct OutputFile {
  JobId job;
  bool is_err = false;
  int64_t pid = 0;  // the writer's (cpp-...); 0: each line names it
};
// "python-0a000000.out", "cpp-0a000000-123.err" -> what it holds; nullopt
// for any other name.
class LogMonitor {
 public:
  // Lines waiting for the head, at most (the oldest go first past it).
  static constexpr size_t kMaxPendingBytes = 8 << 20;
  // What one PublishLogs carries, at most.
  static constexpr size_t kMaxRequestBytes = 1 << 20;
  static constexpr int kMaxLinesPerBatch = 10000;
  // A longer line is sent in pieces of this size.
  static constexpr size_t kMaxLineBytes = 64 << 10;
  static constexpr absl::Duration kSendTimeout = absl::Seconds(2);
  // The wait before sending again after the head could not be reached.
  static constexpr absl::Duration kRetryWait = absl::Milliseconds(500);

  struct Options {
    std::string logs_dir;
    std::string node_ip;  // put on every batch
    std::string gcs_address;
    ClientPool* clients = nullptr;
    Metrics* metrics = nullptr;  // optional
    size_t max_pending_bytes = kMaxPendingBytes;
  };
  explicit LogMonitor(Options options);
  ~LogMonitor();

  void Start();
  // Reads the job's files now and sends everything waiting; `done` (on the
  // monitor's thread) says whether the head took it.
  void Flush(const JobId& job, std::function<void(absl::Status)> done);
  void Stop();

  // Lines waiting for the head, and their bytes (for tests).
  size_t pending_lines() const;
  size_t pending_bytes() const;
  // Lines dropped because the head did not take them in time.
  int64_t dropped_lines() const { return dropped_total_.load(); }

 private:
  struct File {
    OutputFile what;
    int64_t offset = 0;
    std::string partial;  // a line not ended yet
  };
  struct Pending {
    JobId job;
    rpc::LogLine line;
    size_t bytes;
  };
  void Run();
  // Reads what `path` gained since last time (a followed file's name).
  void Read(const std::string& name);
  // Every followed file's name in the directory.
  std::vector<std::string> ListFiles() const;
  void Add(const OutputFile& from, absl::string_view line);
  // Sends what waits, in requests; false when the head did not take one.
  bool Send();

  Options options_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  // The monitor thread's own.
  absl::flat_hash_map<std::string, File> files_;
  bool outage_ = false;
  int64_t dropped_in_outage_ = 0;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<JobId, std::function<void(absl::Status)>>> flushes_
      ABSL_GUARDED_BY(mu_);
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  std::atomic<int64_t> dropped_total_{0};
  prometheus::Counter* dropped_ = nullptr;
  prometheus::Counter* sent_ = nullptr;
};

std::optional<OutputFile> ParseOutputFileName(absl::string_view name);
// "(pid=12) text" -> 12 and "text"; a line without the prefix: 0.
std::pair<int64_t, absl::string_view> ParseOutputLine(absl::string_view line);

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_LOG_MONITOR_H_

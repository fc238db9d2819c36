// src/gcs/transfer_log.h
//
// TransferLog: the object transfers between nodes that raylets report with
// task events (ReportTaskEventsRequest.transfers), kept per job (the job of
// the task that made the object) up to a bound, for `loom timeline`. What
// the bound or a raylet drops is counted and said.
//
//   TransferLog transfers({.max_per_job = 100000});
//   transfers.Report(request);
//   transfers.List(list_request, &reply);  // when list_request.transfers()
#ifndef LOOM_GCS_TRANSFER_LOG_H_
#define LOOM_GCS_TRANSFER_LOG_H_

#include <cstdint>
#include <deque>
#include <map>

#include "absl/synchronization/mutex.h"
#include "proto/gcs.pb.h"

namespace loom::gcs {

// Thread-safe.
class TransferLog {
 public:
  struct Options {
    int64_t max_per_job = 100000;
  };
  explicit TransferLog(Options options) : options_(options) {}

  void Report(const rpc::ReportTaskEventsRequest& req);
  // Adds the transfers of the jobs req's job_id filters name (each a hex
  // prefix; every job without one), oldest first.
  void List(const rpc::ListTasksRequest& req, rpc::ListTasksReply* reply) const;

 private:
  const Options options_;
  mutable absl::Mutex mu_;
  std::map<uint32_t, std::deque<rpc::ObjectTransfer>> jobs_
      ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_TRANSFER_LOG_H_

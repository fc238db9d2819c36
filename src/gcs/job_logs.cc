// The head's side of the workers' output (docs/observability.md): raylets
// publish batches of lines, drivers poll their job's, and a flush asks
// every raylet to send what it has read so far.
#include "absl/strings/str_cat.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/peer_call.h"

namespace loom::gcs {
namespace {

// How long an ended job's lines stay for its driver's last poll, and the
// limits on what one PublishLogs may carry.
constexpr absl::Duration kEndedJobLogs = absl::Seconds(10);
constexpr int kMaxLinesPerBatch = 10000;
constexpr size_t kMaxLineBytes = 64 << 10;
constexpr size_t kMaxNodeIpBytes = 256;
constexpr int64_t kMaxPollMs = 60000;
constexpr int64_t kDefaultFlushMs = 2000;

// The job a poll or flush of its output names, once its wait is in range.
absl::StatusOr<JobId> AskedJob(const std::string& job_id, int64_t timeout_ms) {
  auto job = ParseId<JobId>(job_id, "job_id");
  if (job.ok() && (timeout_ms < 0 || timeout_ms > kMaxPollMs)) {
    return absl::InvalidArgumentError("timeout_ms must be in [0, 60000]");
  }
  return job;
}

}  // namespace

void GcsServer::ForgetLogsLater(const std::string& job_id) {
  auto job = JobId::FromBinary(job_id);
  if (!job.ok()) return;
  logs_.End(*job);
  loop_.PostAfter(kEndedJobLogs, [this, job = *job] { logs_.Forget(job); });
}

void GcsServer::HandlePublishLogs(const rpc::PublishLogsRequest& req,
                                  rpc::PublishLogsReply* reply, Done done) {
  // Validate the whole request before publishing any of it.
  for (const auto& b : req.batches()) {
    auto job = ParseId<JobId>(b.job_id(), "job_id");
    if (!job.ok()) return done(job.status());
    if (b.node_ip().size() > kMaxNodeIpBytes) {
      return done(absl::InvalidArgumentError("node_ip too long"));
    }
    if (b.lines_size() > kMaxLinesPerBatch) {
      return done(absl::InvalidArgumentError(
          absl::StrCat("more than ", kMaxLinesPerBatch, " lines in a batch")));
    }
    for (const auto& l : b.lines()) {
      if (l.pid() < 0) return done(absl::InvalidArgumentError("negative pid"));
      if (l.text().size() > kMaxLineBytes) {
        return done(absl::InvalidArgumentError("line longer than 64 KiB"));
      }
    }
  }
  for (const auto& b : req.batches()) {
    // Lines of a job that ended (or that this head does not know) have
    // no driver to go to: dropped.
    logs_.Publish(*JobId::FromBinary(b.job_id()), b).IgnoreError();
  }
  done(absl::OkStatus());
}

void GcsServer::HandlePollLogs(const rpc::PollLogsRequest& req,
                               rpc::PollLogsReply* reply, Done done) {
  auto job = AskedJob(req.job_id(), req.timeout_ms());
  if (!job.ok()) return done(job.status());
  absl::Status s =
      logs_.Poll(*job, req.after_seq(), absl::Milliseconds(req.timeout_ms()),
                 [reply, done](std::vector<rpc::LogBatch> batches, int64_t last,
                               int64_t dropped) {
                   for (auto& b : batches) *reply->add_batches() = std::move(b);
                   reply->set_last_seq(last);
                   reply->set_dropped_lines(dropped);
                   done(absl::OkStatus());
                 });
  if (!s.ok()) done(s);
}

void GcsServer::HandleFlushLogs(const rpc::FlushLogsRequest& req,
                                rpc::FlushLogsReply* reply, Done done) {
  auto job = AskedJob(req.job_id(), req.timeout_ms());
  if (!job.ok()) return done(job.status());
  std::vector<std::string> raylets;
  for (const NodeState& alive : nodes_.alive()) {
    raylets.push_back(RayletAddress(*nodes_.Find(alive.node_id)));
  }
  rpc::FlushJobLogsRequest flush;
  flush.set_job_id(req.job_id());
  // A raylet that cannot flush (gone, slow) is not waited for longer than
  // the timeout.
  CallPeers<rpc::Raylet, rpc::FlushJobLogsReply>(
      clients_, log_flushes_, loop_, raylets,
      std::vector<rpc::FlushJobLogsRequest>(raylets.size(), flush),
      req.timeout_ms() > 0 ? req.timeout_ms() : kDefaultFlushMs,
      &rpc::Raylet::Stub::PrepareAsyncFlushLogs, "",
      [this, id = *job, reply, done](std::vector<rpc::FlushJobLogsReply>,
                                     std::vector<std::string>) {
        reply->set_last_seq(logs_.last_seq(id));
        done(absl::OkStatus());
      });
}

}  // namespace loom::gcs

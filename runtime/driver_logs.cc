#include "runtime/driver_logs.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"

namespace loom {

std::string DriverLogs::Format(const Line& line) {
  if (line.pid == 0 && line.ip.empty()) return line.text;  // Loom's own
  return absl::StrCat("(pid=", line.pid, ", ip=", line.ip, ") ", line.text);
}

void DriverLogs::Start() { Poll(0); }

void DriverLogs::Shutdown() {
  calls_.Shutdown();
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

void DriverLogs::Poll(int64_t after_seq) {
  struct Call {
    rpc::Context ctx;
    rpc::PollLogsRequest req;
    rpc::PollLogsReply reply;
  };
  auto* call = new Call;
  call->req.set_job_id(options_.job.Binary());
  call->req.set_after_seq(after_seq);
  call->req.set_timeout_ms(absl::ToInt64Milliseconds(kPollWait));
  rpc::SetTimeout(&call->ctx,
                  absl::ToInt64Milliseconds(kPollWait + absl::Seconds(5)));
  if (!calls_.Start(&call->ctx)) return delete call;  // shut down
  rpc::AsyncCall(
      *options_.clients->Stub<rpc::Gcs>(options_.gcs_address),
      &rpc::Gcs::Stub::PrepareAsyncPollLogs, &call->ctx, call->req,
      &call->reply, [this, call, after_seq](grpc::Status s) {
        if (s.error_code() == grpc::StatusCode::CANCELLED) {
          calls_.Finish(&call->ctx);  // shutting down
          delete call;
          return;
        }
        int64_t next = after_seq;
        if (s.ok()) {
          // A restarted head numbers from 1 again and sends all it has.
          std::vector<Line> lines;
          for (const auto& b : call->reply.batches()) {
            if (b.seq() <= after_seq && call->reply.last_seq() >= after_seq) {
              continue;  // seen
            }
            for (const auto& l : b.lines()) {
              lines.push_back({l.pid(), l.is_err(), b.node_ip(), l.text()});
            }
          }
          next = call->reply.last_seq();
          Queue(std::move(lines), next, call->reply.dropped_lines());
        }
        absl::Duration wait = s.ok() ? absl::ZeroDuration() : kRetryWait;
        options_.loop->PostAfter(wait, [this, next] { Poll(next); });
        calls_.Finish(&call->ctx);
        delete call;
      });
}

void DriverLogs::Queue(std::vector<Line> lines, int64_t seq,
                       int64_t head_dropped) {
  absl::MutexLock lock(&mu_);
  for (auto& l : lines) {
    size_t bytes = l.text.size() + l.ip.size() + 32;
    if (queued_bytes_ + bytes > kMaxQueuedBytes) {
      ++dropped_here_;  // the printer is behind: this line is lost
      continue;
    }
    queued_bytes_ += bytes;
    queue_.push_back(std::move(l));
  }
  int64_t dropped = dropped_here_;
  if (head_dropped > head_dropped_) dropped += head_dropped - head_dropped_;
  head_dropped_ = std::max(head_dropped_, head_dropped);
  if (dropped > 0) {
    queue_.push_back({0, true, "",
                      absl::StrCat("(loom) ", dropped,
                                   " lines of worker output were dropped "
                                   "(printed faster than they could be "
                                   "delivered)")});
    dropped_here_ = 0;
  }
  queued_seq_ = seq;
}

std::vector<DriverLogs::Line> DriverLogs::Take(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || shut_down_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  std::vector<Line> out(std::make_move_iterator(queue_.begin()),
                        std::make_move_iterator(queue_.end()));
  queue_.clear();
  queued_bytes_ = 0;
  return out;
}

absl::Status DriverLogs::Flush(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  rpc::FlushLogsRequest req;
  req.set_job_id(options_.job.Binary());
  req.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  rpc::FlushLogsReply reply;
  rpc::Context ctx;
  rpc::SetTimeout(&ctx,
                  absl::ToInt64Milliseconds(timeout + absl::Milliseconds(500)));
  absl::Status s =
      rpc::ToAbsl(options_.clients->Stub<rpc::Gcs>(options_.gcs_address)
                      ->FlushLogs(&ctx, req, &reply));
  if (!s.ok()) return s;
  int64_t target = reply.last_seq();
  absl::MutexLock lock(&mu_);
  auto queued = [this, target]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return queued_seq_ >= target || shut_down_;
  };
  if (!mu_.AwaitWithDeadline(absl::Condition(&queued), deadline)) {
    return absl::DeadlineExceededError("worker output still on its way");
  }
  return absl::OkStatus();
}

}  // namespace loom

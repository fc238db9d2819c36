#include "src/raylet/gcs_link.h"

#include <google/protobuf/util/message_differencer.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/time/clock.h"
#include "src/common/rpc.h"
#include "src/common/tls.h"
#include "src/common/version.h"

namespace loom::raylet {

GcsLink::GcsLink(Options options)
    : options_(std::move(options)),
      stub_(rpc::Gcs::NewStub(rpc::MakeChannel(options_.gcs_address))) {}

rpc::RegisterNodeRequest GcsLink::Registration() const {
  rpc::RegisterNodeRequest req;
  *req.mutable_node() = options_.self;
  req.set_protocol_version(kProtocolVersion);
  req.set_build_version(BuildVersion());
  if (options_.fill_held) options_.fill_held(&req);
  return req;
}

absl::Status GcsLink::RegisterBlocking(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(50);
  while (true) {
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 2000);
    rpc::RegisterNodeRequest req = Registration();
    rpc::RegisterNodeReply reply;
    grpc::Status s = stub_->RegisterNode(&ctx, req, &reply);
    if (s.ok()) {
      connected_ = true;
      head_timeout_ = absl::Milliseconds(reply.heartbeat_timeout_ms());
      return absl::OkStatus();
    }
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return rpc::ToAbsl(s);
    }
    if (absl::Now() + backoff > deadline) {
      return HeadUnreachableError(options_.gcs_address, s.error_message());
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(1));
  }
}

void GcsLink::StartHeartbeats() {
  // The first at once: its reply brings the cluster view, which a node that
  // just joined needs before it spreads or spills work.
  options_.loop->Post([this] { HeartbeatSoon(); });
}

absl::Duration GcsLink::Period() const {
  absl::Duration period = options_.heartbeat_period;
  if (quiet_ < kQuietBeats) return period;
  return std::max(period, std::min(4 * period, head_timeout_ / 3));
}

void GcsLink::Active() {
  if (quiet_ < kQuietBeats) return;
  quiet_ = 0;
  HeartbeatSoon();
}

void GcsLink::HeartbeatSoon() {
  if (stopped_) return;
  if (in_flight_) {
    again_ = true;
    return;
  }
  ++chain_;  // the one scheduled after the period is dropped
  Heartbeat();
}

void GcsLink::Heartbeat() {
  if (stopped_) return;
  in_flight_ = true;
  struct Call {
    rpc::Context ctx;
    rpc::HeartbeatRequest req;
    rpc::HeartbeatReply reply;
  };
  auto call = std::make_shared<Call>();
  options_.fill_heartbeat(&call->req);
  rpc::SetTimeout(&call->ctx, 2000);
  rpc::AsyncCall(
      *stub_, &rpc::Gcs::Stub::PrepareAsyncHeartbeat, &call->ctx, call->req,
      &call->reply, [this, call](grpc::Status s) {
        options_.loop->Post([this, call, s] {
          in_flight_ = false;
          if (s.ok()) {
            using google::protobuf::util::MessageDifferencer;
            bool same = MessageDifferencer::Equals(call->req, last_sent_) &&
                        MessageDifferencer::Equals(call->reply, last_heard_);
            quiet_ = same ? quiet_ + 1 : 0;
            last_sent_ = call->req;
            last_heard_ = call->reply;
          } else {
            quiet_ = 0;
          }
          absl::Duration next = Period();
          if (s.ok()) {
            if (!connected_) spdlog::info("head is back");
            connected_ = true;
            failures_ = 0;
            options_.on_view(call->reply);
          } else if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
            spdlog::warn("head does not know this node; registering again");
            ReRegister();
          } else if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
            stopped_ = true;
            if (options_.on_refused) options_.on_refused(rpc::ToAbsl(s));
            return;
          } else {
            if (connected_) {
              spdlog::warn("head unreachable: {}; backing off",
                           s.error_message());
            }
            connected_ = false;
            // Try again soon (at most 500 ms apart): a restarted head
            // must hear from its nodes quickly.
            next = std::min(rpc::HeadBackoff(failures_++),
                            options_.heartbeat_period);
          }
          if (again_ && s.ok()) next = absl::ZeroDuration();
          again_ = false;
          options_.loop->PostAfter(next, [this, chain = chain_] {
            if (chain == chain_) Heartbeat();
          });
        });
      });
}

void GcsLink::ReRegister() {
  struct Call {
    rpc::Context ctx;
    rpc::RegisterNodeRequest req;
    rpc::RegisterNodeReply reply;
  };
  auto call = std::make_shared<Call>();
  call->req = Registration();
  rpc::SetTimeout(&call->ctx, 2000);
  rpc::AsyncCall(
      *stub_, &rpc::Gcs::Stub::PrepareAsyncRegisterNode, &call->ctx, call->req,
      &call->reply, [this, call](grpc::Status s) {
        if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          options_.loop->Post([this, s] {
            stopped_ = true;
            if (options_.on_refused) options_.on_refused(rpc::ToAbsl(s));
          });
        } else if (!s.ok()) {
          spdlog::warn("re-register failed: {}", s.error_message());
        } else {
          options_.loop->Post([this, call] {
            head_timeout_ =
                absl::Milliseconds(call->reply.heartbeat_timeout_ms());
            if (options_.on_reregistered) options_.on_reregistered(call->reply);
          });
        }
      });
}

template <typename Request, typename Reply>
void GcsLink::Report(rpc::PrepareUnary<rpc::Gcs::Stub, Request, Reply> send,
                     Request req, absl::Time give_up, int tries) {
  struct Call {
    rpc::Context ctx;
    Request req;
    Reply reply;
  };
  auto call = std::make_shared<Call>();
  call->req = std::move(req);
  rpc::SetTimeout(&call->ctx, 5000);
  rpc::AsyncCall(
      *stub_, send, &call->ctx, call->req, &call->reply,
      [this, send, call, give_up, tries](grpc::Status s) {
        // Reports say the same thing twice harmlessly: one the head was too
        // busy to answer in time is sent again, as one it never got.
        if (!rpc::HeadUnreachable(s) &&
            s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
          if (!s.ok()) {
            spdlog::warn("the head refused a report: {}", s.error_message());
          }
          return;
        }
        if (absl::Now() >= give_up) {
          spdlog::error("the head never heard a report: {}",
                        rpc::HeadGone(s).error_message());
          return;
        }
        options_.loop->PostAfter(
            rpc::HeadBackoff(tries), [this, send, call, give_up, tries] {
              Report<Request, Reply>(send, std::move(call->req), give_up,
                                     tries + 1);
            });
      });
}

void GcsLink::MarkJobFinished(const std::string& job_id, bool driver_died) {
  rpc::MarkJobFinishedRequest req;
  req.set_job_id(job_id);
  req.set_driver_died(driver_died);
  Report<rpc::MarkJobFinishedRequest, rpc::MarkJobFinishedReply>(
      &rpc::Gcs::Stub::PrepareAsyncMarkJobFinished, std::move(req),
      absl::Now() + rpc::HeadWait());
}

void GcsLink::ReportWorkerDeath(const WorkerId& worker,
                                const std::string& address, const JobId& job,
                                const std::string& cause) {
  rpc::ReportWorkerDeathRequest req;
  req.set_worker_id(worker.Binary());
  req.set_address(address);
  req.set_job_id(job.Binary());
  req.set_cause(cause);
  Report<rpc::ReportWorkerDeathRequest, rpc::ReportWorkerDeathReply>(
      &rpc::Gcs::Stub::PrepareAsyncReportWorkerDeath, std::move(req),
      absl::Now() + rpc::HeadWait());
}

void GcsLink::ScheduleLease(
    rpc::ScheduleLeaseRequest req,
    std::function<void(absl::Status, const rpc::ScheduleLeaseReply&)> done) {
  struct Call {
    rpc::Context ctx;
    rpc::ScheduleLeaseRequest req;
    rpc::ScheduleLeaseReply reply;
  };
  auto call = std::make_shared<Call>();
  call->req = std::move(req);
  rpc::SetTimeout(&call->ctx, 2000);
  rpc::AsyncCall(*stub_, &rpc::Gcs::Stub::PrepareAsyncScheduleLease, &call->ctx,
                 call->req, &call->reply,
                 [this, call, done = std::move(done)](grpc::Status s) {
                   options_.loop->Post(
                       [call, done, s] { done(rpc::ToAbsl(s), call->reply); });
                 });
}

void GcsLink::Unregister() {
  stopped_ = true;
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 500);
  rpc::UnregisterNodeRequest req;
  req.set_node_id(options_.self.node_id());
  rpc::UnregisterNodeReply reply;
  stub_->UnregisterNode(&ctx, req, &reply);
}

}  // namespace loom::raylet

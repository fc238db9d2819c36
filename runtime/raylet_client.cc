#include "runtime/raylet_client.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"

namespace loom {
namespace {
constexpr int64_t kTimeoutMs = 10000;

// Calls that may run twice (reads, and writes that set a value whatever
// was there): a head too busy to answer one within kTimeoutMs (hundreds of
// processes starting at once on a loaded machine) is asked again until
// HeadWait() has passed, as an unreachable one is, instead of failing the
// task that needed its function's code or the driver exporting it.
template <typename Call>
absl::Status CallHeadAgainWhenSlow(Call call) {
  absl::Time give_up = absl::Now() + rpc::HeadWait();
  while (true) {
    grpc::Status s = rpc::CallHead(kTimeoutMs, call);
    if (s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED ||
        absl::Now() >= give_up) {
      return rpc::ToAbsl(s);
    }
  }
}
}  // namespace

RayletClient::RayletClient(const std::string& raylet_address,
                           const std::string& gcs_address)
    : raylet_(rpc::Raylet::NewStub(rpc::MakeChannel(raylet_address))) {
  if (!gcs_address.empty()) {
    gcs_ = rpc::Gcs::NewStub(rpc::MakeChannel(gcs_address));
  }
}

RayletClient::~RayletClient() {
  absl::MutexLock lock(&mu_);
  auto done = [this]()
                  ABSL_SHARED_LOCKS_REQUIRED(mu_) { return inflight_ == 0; };
  mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(6));
}

absl::StatusOr<JobId> RayletClient::AddJob(int64_t pid,
                                           const std::string& address,
                                           const rpc::WorkerRuntime& runtime,
                                           rpc::JobQuota* quota) {
  if (!gcs_) return absl::FailedPreconditionError("no head address");
  rpc::AddJobRequest req;
  req.set_driver_pid(pid);
  req.set_driver_address(address);
  *req.mutable_runtime() = runtime;
  if (const char* id = std::getenv("LOOM_JOB_SUBMISSION_ID")) {
    req.set_submission_id(id);
  }
  rpc::AddJobReply reply;
  // Asked again, the head answers with the job it made for this driver.
  absl::Status s = CallHeadAgainWhenSlow(
      [&](rpc::Context* ctx) { return gcs_->AddJob(ctx, req, &reply); });
  if (!s.ok()) return s;
  if (quota != nullptr) *quota = reply.quota();
  return ParseId<JobId>(reply.job_id(), "job_id");
}

absl::Status RayletClient::SetJobNode(const JobId& job, int64_t pid,
                                      const std::string& address,
                                      const NodeId& node) {
  if (!gcs_) return absl::FailedPreconditionError("no head address");
  if (address.empty()) {
    return absl::FailedPreconditionError("no driver address to name the job");
  }
  // AddJob asked again by the same driver answers with its job, and records
  // the node it names (gcs_server.cc).
  rpc::AddJobRequest req;
  req.set_driver_pid(pid);
  req.set_driver_address(address);
  req.set_node_id(node.Binary());
  rpc::AddJobReply reply;
  absl::Status s = CallHeadAgainWhenSlow(
      [&](rpc::Context* ctx) { return gcs_->AddJob(ctx, req, &reply); });
  if (!s.ok()) return s;
  if (reply.job_id() != job.Binary()) {
    return absl::InternalError("the head answered with another job");
  }
  return absl::OkStatus();
}

absl::Status RayletClient::MarkJobFinished(const JobId& job) {
  if (!gcs_) return absl::OkStatus();
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 2000);
  rpc::MarkJobFinishedRequest req;
  req.set_job_id(job.Binary());
  rpc::MarkJobFinishedReply reply;
  return rpc::ToAbsl(gcs_->MarkJobFinished(&ctx, req, &reply));
}

absl::StatusOr<NodeId> RayletClient::RegisterDriver(
    const JobId& job, int64_t pid, const WorkerId& worker,
    const rpc::WorkerRuntime& runtime) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, kTimeoutMs);
  rpc::RegisterDriverRequest req;
  req.set_job_id(job.Binary());
  req.set_pid(pid);
  req.set_worker_id(worker.Binary());
  *req.mutable_runtime() = runtime;
  rpc::RegisterDriverReply reply;
  absl::Status s = rpc::ToAbsl(raylet_->RegisterDriver(&ctx, req, &reply));
  if (!s.ok()) return s;
  return ParseId<NodeId>(reply.node_id(), "node_id");
}

absl::StatusOr<bool> RayletClient::KvPutWith(const std::string& ns,
                                             const std::string& key,
                                             const std::string& value,
                                             bool overwrite) {
  rpc::KvPutRequest req;
  req.set_ns(ns);
  req.set_key(key);
  req.set_value(value);
  req.set_overwrite(overwrite);
  rpc::KvPutReply reply;
  auto call = [&](rpc::Context* ctx) { return gcs_->KvPut(ctx, req, &reply); };
  // Put-if-absent is not asked twice: the second would find its own value.
  absl::Status s = overwrite ? CallHeadAgainWhenSlow(call)
                             : rpc::ToAbsl(rpc::CallHead(kTimeoutMs, call));
  if (!s.ok()) return s;
  return reply.added();
}

absl::Status RayletClient::KvPut(const std::string& ns, const std::string& key,
                                 const std::string& value) {
  return KvPutWith(ns, key, value, /*overwrite=*/true).status();
}

absl::StatusOr<std::vector<std::string>> RayletClient::KvKeys(
    const std::string& ns, const std::string& prefix) {
  rpc::KvKeysRequest req;
  req.set_ns(ns);
  req.set_prefix(prefix);
  rpc::KvKeysReply reply;
  absl::Status s = CallHeadAgainWhenSlow(
      [&](rpc::Context* ctx) { return gcs_->KvKeys(ctx, req, &reply); });
  if (!s.ok()) return s;
  return std::vector<std::string>(reply.keys().begin(), reply.keys().end());
}

absl::StatusOr<bool> RayletClient::KvPutIfAbsent(const std::string& ns,
                                                 const std::string& key,
                                                 const std::string& value) {
  return KvPutWith(ns, key, value, /*overwrite=*/false);
}

absl::StatusOr<std::optional<std::string>> RayletClient::KvGet(
    const std::string& ns, const std::string& key) {
  rpc::KvGetRequest req;
  req.set_ns(ns);
  req.set_key(key);
  rpc::KvGetReply reply;
  // Through the raylet, which asks the head over its own channel: a worker
  // that only loads its functions opens no connection to the head.
  absl::Status s = CallHeadAgainWhenSlow(
      [&](rpc::Context* ctx) { return raylet_->KvGet(ctx, req, &reply); });
  if (!s.ok()) return s;
  if (!reply.found()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(*reply.mutable_value()));
}

absl::StatusOr<bool> RayletClient::KvDel(const std::string& ns,
                                         const std::string& key) {
  if (!gcs_) return absl::FailedPreconditionError("no head address");
  rpc::KvDelRequest req;
  req.set_ns(ns);
  req.set_key(key);
  rpc::KvDelReply reply;
  absl::Status s =
      rpc::ToAbsl(rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
        return gcs_->KvDel(ctx, req, &reply);
      }));
  if (!s.ok()) return s;
  return reply.deleted();
}

absl::StatusOr<rpc::GetClusterStatusReply> RayletClient::GetClusterStatus() {
  rpc::GetClusterStatusReply reply;
  absl::Status s =
      rpc::ToAbsl(rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
        return gcs_->GetClusterStatus(ctx, rpc::GetClusterStatusRequest(),
                                      &reply);
      }));
  if (!s.ok()) return s;
  return reply;
}

absl::StatusOr<std::string> RayletClient::CreatePlacementGroup(
    const rpc::PlacementGroupInfo& group) {
  rpc::CreatePlacementGroupRequest req;
  *req.mutable_group() = group;
  rpc::CreatePlacementGroupReply reply;
  absl::Status s =
      rpc::ToAbsl(rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
        return gcs_->CreatePlacementGroup(ctx, req, &reply);
      }));
  if (!s.ok()) return s;
  return reply.pg_id();
}

absl::StatusOr<rpc::PlacementGroupInfo> RayletClient::GetPlacementGroup(
    const std::string& pg_id, bool wait_ready, int64_t timeout_ms) {
  rpc::GetPlacementGroupRequest req;
  req.set_pg_id(pg_id);
  req.set_wait_ready(wait_ready);
  rpc::GetPlacementGroupReply reply;
  absl::Status s = rpc::ToAbsl(rpc::CallHead(
      wait_ready ? timeout_ms : kTimeoutMs, [&](rpc::Context* ctx) {
        return gcs_->GetPlacementGroup(ctx, req, &reply);
      }));
  if (!s.ok()) return s;
  return reply.group();
}

absl::Status RayletClient::RemovePlacementGroup(const std::string& pg_id) {
  rpc::RemovePlacementGroupRequest req;
  req.set_pg_id(pg_id);
  rpc::RemovePlacementGroupReply reply;
  return rpc::ToAbsl(rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
    return gcs_->RemovePlacementGroup(ctx, req, &reply);
  }));
}

absl::StatusOr<rpc::ListPlacementGroupsReply>
RayletClient::ListPlacementGroups() {
  rpc::ListPlacementGroupsReply reply;
  absl::Status s =
      rpc::ToAbsl(rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
        return gcs_->ListPlacementGroups(ctx, rpc::ListPlacementGroupsRequest(),
                                         &reply);
      }));
  if (!s.ok()) return s;
  return reply;
}

absl::StatusOr<NodeId> RayletClient::RegisterWorker(
    const WorkerId& worker, int64_t pid, int port,
    const std::string& control_key) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, kTimeoutMs);
  rpc::RegisterWorkerRequest req;
  req.set_worker_id(worker.Binary());
  req.set_pid(pid);
  req.set_port(port);
  req.set_control_key(control_key);
  rpc::RegisterWorkerReply reply;
  absl::Status s = rpc::ToAbsl(raylet_->RegisterWorker(&ctx, req, &reply));
  if (!s.ok()) return s;
  return ParseId<NodeId>(reply.node_id(), "node_id");
}

absl::Status RayletClient::NotifyBlocked(const WorkerId& worker, bool blocked) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, kTimeoutMs);
  rpc::NotifyBlockedRequest req;
  req.set_worker_id(worker.Binary());
  req.set_blocked(blocked);
  rpc::NotifyBlockedReply reply;
  return rpc::ToAbsl(raylet_->NotifyBlocked(&ctx, req, &reply));
}

absl::Status RayletClient::PullObject(const ObjectId& id,
                                      const NodeId& source) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 600000);
  rpc::PullObjectRequest req;
  req.set_object_id(id.Binary());
  req.set_source_node_id(source.Binary());
  rpc::PullObjectReply reply;
  return rpc::ToAbsl(raylet_->PullObject(&ctx, req, &reply));
}

void RayletClient::PullObjects(
    const std::vector<std::pair<ObjectId, NodeId>>& objects, int window) {
  struct Call {
    rpc::Context ctx;
    rpc::PullObjectRequest req;
    rpc::PullObjectReply reply;
  };
  std::vector<Call> calls(objects.size());
  absl::Mutex mu;
  size_t started = 0, finished = 0;
  mu.Lock();
  while (finished < objects.size()) {
    // Keep `window` in flight; the calls start outside the lock (a
    // callback may run on this thread).
    while (started < objects.size() &&
           started - finished < static_cast<size_t>(std::max(1, window))) {
      Call& call = calls[started];
      rpc::SetTimeout(&call.ctx, 600000);
      call.req.set_object_id(objects[started].first.Binary());
      call.req.set_source_node_id(objects[started].second.Binary());
      ++started;
      mu.Unlock();
      rpc::AsyncCall(*raylet_, &rpc::Raylet::Stub::PrepareAsyncPullObject,
                     &call.ctx, call.req, &call.reply, [&](grpc::Status) {
                       absl::MutexLock lock(&mu);
                       ++finished;
                     });
      mu.Lock();
    }
    size_t seen = finished;
    auto progress = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
      return finished != seen;
    };
    mu.Await(absl::Condition(&progress));
  }
  mu.Unlock();
}

void RayletClient::FreeObject(const ObjectId& id, const NodeId& holder) {
  struct Call {
    rpc::Context ctx;
    rpc::FreeObjectsRequest req;
    rpc::FreeObjectsReply reply;
  };
  auto* call = new Call;
  call->req.add_object_ids(id.Binary());
  call->req.add_node_ids(holder.Binary());
  rpc::SetTimeout(&call->ctx, 5000);
  {
    absl::MutexLock lock(&mu_);
    ++inflight_;
  }
  rpc::AsyncCall(*raylet_, &rpc::Raylet::Stub::PrepareAsyncFreeObjects,
                 &call->ctx, call->req, &call->reply,
                 [this, call](grpc::Status) {
                   delete call;
                   absl::MutexLock lock(&mu_);
                   --inflight_;
                 });
}

absl::Status RayletClient::ReportTaskStats(
    const rpc::ReportTaskStatsRequest& stats) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 2000);
  rpc::ReportTaskStatsReply reply;
  return rpc::ToAbsl(raylet_->ReportTaskStats(&ctx, stats, &reply));
}

absl::StatusOr<rpc::ActorInfo> RayletClient::RegisterActor(
    const rpc::RegisterActorRequest& req) {
  if (!gcs_) return absl::FailedPreconditionError("no head address");
  rpc::RegisterActorReply reply;
  int tries = 0;
  absl::Status s =
      rpc::ToAbsl(rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
        ++tries;
        return gcs_->RegisterActor(ctx, req, &reply);
      }));
  if (tries > 1 && absl::IsAlreadyExists(s) &&
      absl::StrContains(s.message(), "registered twice")) {
    // A try whose reply the head's restart lost had registered it.
    rpc::GetActorRequest get;
    get.set_actor_id(req.creation().actor_id());
    return GetActor(get);
  }
  if (!s.ok()) return s;
  return reply.actor();
}

absl::StatusOr<rpc::ActorInfo> RayletClient::GetActor(
    const rpc::GetActorRequest& req) {
  if (!gcs_) return absl::FailedPreconditionError("no head address");
  rpc::GetActorReply reply;
  absl::Status s =
      rpc::ToAbsl(rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
        return gcs_->GetActor(ctx, req, &reply);
      }));
  if (!s.ok()) return s;
  return reply.actor();
}

absl::Status RayletClient::KillActor(const rpc::KillActorRequest& req) {
  if (!gcs_) return absl::FailedPreconditionError("no head address");
  rpc::KillActorReply reply;
  return rpc::ToAbsl(rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
    return gcs_->KillActor(ctx, req, &reply);
  }));
}

}  // namespace loom

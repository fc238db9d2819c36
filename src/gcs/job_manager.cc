#include "src/gcs/job_manager.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proto/raylet.grpc.pb.h"
#include "scheduler/resource_set.h"
#include "src/common/async_call.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"

namespace loom::gcs {
namespace {

constexpr size_t kMaxIdLength = 128;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// runtime_env's env_vars (a JSON object of strings), as Ray takes them.
std::map<std::string, std::string> EnvVars(const std::string& runtime_env) {
  std::map<std::string, std::string> out;
  google::protobuf::Struct env;
  if (runtime_env.empty() ||
      !google::protobuf::util::JsonStringToMessage(runtime_env, &env).ok()) {
    return out;
  }
  auto it = env.fields().find("env_vars");
  if (it == env.fields().end() || !it->second.has_struct_value()) return out;
  for (const auto& [k, v] : it->second.struct_value().fields()) {
    if (v.has_string_value()) out[k] = v.string_value();
  }
  return out;
}

template <typename Req, typename Reply>
struct Call {
  rpc::Context ctx;
  Req req;
  Reply reply;
};

}  // namespace

std::string NewSubmissionId() {
  static constexpr char kChars[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device rd;
  std::mt19937_64 gen(rd());
  std::string id = "raysubmit_";
  for (int i = 0; i < 16; ++i) id += kChars[gen() % (sizeof(kChars) - 1)];
  return id;
}

JobManager::JobManager(Options options) : options_(std::move(options)) {
  options_.loop->Post([this] { PlacePeriodically(); });
}

JobManager::~JobManager() { stopped_ = true; }

absl::Status JobManager::Load(const StoreClient::Table& rows) {
  for (const auto& [key, value] : rows) {
    rpc::JobSubmission job;
    if (!job.ParseFromString(value) || job.submission_id() != key) {
      return absl::DataLossError(
          "a row of the submissions table does not parse");
    }
    jobs_[key] = std::move(job);
  }
  return absl::OkStatus();
}

void JobManager::Submit(
    rpc::JobSubmission job,
    std::function<void(absl::StatusOr<rpc::JobSubmission>)> done) {
  if (absl::StripAsciiWhitespace(job.entrypoint()).empty()) {
    return done(absl::InvalidArgumentError("a job needs an entrypoint"));
  }
  if (job.submission_id().empty()) job.set_submission_id(NewSubmissionId());
  // Ids name files on the node.
  if (!IsPlainName(job.submission_id(), kMaxIdLength)) {
    return done(absl::InvalidArgumentError(absl::StrCat(
        "submission_id '", job.submission_id(),
        "': up to 128 letters, digits, '_', '-' and '.', not starting "
        "with '.'")));
  }
  if (auto it = jobs_.find(job.submission_id()); it != jobs_.end()) {
    return done(it->second);  // the same id again: that job, not another
  }
  if (auto r = ResourcesFromProto(job.entrypoint_resources()); !r.ok()) {
    return done(r.status());
  }
  job.set_status(rpc::JobSubmission::PENDING);
  job.set_message("waiting for a node to run the entrypoint");
  job.set_start_time_ms(NowMs());
  job.set_log_file(absl::StrCat("job-driver-", job.submission_id(), ".log"));
  std::string id = job.submission_id();
  jobs_[id] = job;
  Save(job, [this, job, done] {
    done(job);
    PlacePending();
  });
}

absl::StatusOr<rpc::JobSubmission*> JobManager::Find(const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("no job with submission id ", id));
  }
  return &it->second;
}

absl::StatusOr<rpc::JobSubmission> JobManager::Get(const std::string& id) {
  auto job = Find(id);
  if (!job.ok()) return job.status();
  return **job;
}

std::vector<rpc::JobSubmission> JobManager::List() const {
  std::vector<rpc::JobSubmission> out;
  for (const auto& [id, job] : jobs_) out.push_back(job);
  return out;
}

void JobManager::Stop(const std::string& id,
                      std::function<void(absl::StatusOr<bool>)> done) {
  auto found = Find(id);
  if (!found.ok()) return done(found.status());
  rpc::JobSubmission& job = **found;
  if (Ended(job.status())) return done(false);
  job.set_stop_requested(true);
  if (job.status() == rpc::JobSubmission::PENDING && !starting_.count(id)) {
    End(job, rpc::JobSubmission::STOPPED, "stopped before it started");
    return done(true);
  }
  Save(job);
  done(true);
  if (job.status() != rpc::JobSubmission::RUNNING) return;  // once started
  if (const rpc::NodeInfo* found = options_.nodes->Find(job.node_id())) {
    const rpc::NodeInfo& node = *found;
    auto* call = new Call<rpc::StopEntrypointRequest, rpc::StopEntrypointReply>;
    call->req.set_submission_id(id);
    rpc::SetTimeout(&call->ctx, 5000);
    if (!calls_.Start(&call->ctx)) return delete call;
    rpc::AsyncCall(*options_.clients->Stub<rpc::Raylet>(RayletAddress(node)),
                   &rpc::Raylet::Stub::PrepareAsyncStopEntrypoint, &call->ctx,
                   call->req, &call->reply, [this, call](grpc::Status s) {
                     calls_.Finish(&call->ctx);
                     if (!s.ok()) {
                       spdlog::warn("stopping job {}: {}",
                                    call->req.submission_id(),
                                    s.error_message());
                     }
                     delete call;
                   });
  }
}

void JobManager::Delete(const std::string& id,
                        std::function<void(absl::StatusOr<bool>)> done) {
  auto found = Find(id);
  if (!found.ok()) return done(found.status());
  if (!Ended((*found)->status())) {
    return done(absl::FailedPreconditionError(absl::StrCat(
        "job ", id, " is ", rpc::JobSubmission::Status_Name((*found)->status()),
        ": stop it first")));
  }
  jobs_.erase(id);
  options_.store->Delete("submissions", id,
                         [done](absl::StatusOr<bool> deleted) {
                           if (!deleted.ok()) return done(deleted.status());
                           done(true);
                         });
}

void JobManager::OnEntrypointExit(const rpc::ReportEntrypointExitRequest& req) {
  auto it = jobs_.find(req.submission_id());
  if (it == jobs_.end() || Ended(it->second.status())) return;
  rpc::JobSubmission& job = it->second;
  // The report can overtake StartEntrypoint's reply (a quick command): the
  // node that ran it is where its output is read from.
  if (job.node_id().empty()) job.set_node_id(req.node_id());
  job.set_exit_code(req.exit_code());
  if (job.stop_requested()) {
    return End(job, rpc::JobSubmission::STOPPED, "stopped by a user");
  }
  if (!req.message().empty()) {
    job.set_error_type("ENTRYPOINT_START_FAILED");
    return End(job, rpc::JobSubmission::FAILED, req.message());
  }
  if (req.exit_code() == 0 && req.signal() == 0) {
    return End(job, rpc::JobSubmission::SUCCEEDED, "the entrypoint exited 0");
  }
  job.set_error_type("JOB_ENTRYPOINT_COMMAND_ERROR");
  End(job, rpc::JobSubmission::FAILED,
      req.signal() != 0
          ? absl::StrCat("the entrypoint was killed by signal ", req.signal())
          : absl::StrCat("the entrypoint exited with code ", req.exit_code()));
}

void JobManager::OnNodeDead(const std::string& node_id) {
  for (auto& [id, job] : jobs_) {
    if (job.status() != rpc::JobSubmission::RUNNING ||
        job.node_id() != node_id) {
      continue;
    }
    job.set_error_type("NODE_DIED");
    End(job, rpc::JobSubmission::FAILED,
        absl::StrCat("the node running the entrypoint (",
                     HexEncode(node_id).substr(0, 12), ") died"));
  }
}

const rpc::NodeInfo* JobManager::PickNode(const rpc::JobSubmission& job) const {
  auto demand = ResourcesFromProto(job.entrypoint_resources());
  if (!demand.ok()) return nullptr;
  const rpc::NodeInfo* pick = nullptr;
  for (const NodeState& alive : options_.nodes->alive()) {
    if (!alive.available.Contains(*demand)) continue;
    const rpc::NodeInfo& node = *options_.nodes->Find(alive.node_id);
    bool head = !options_.head_session_dir.empty() &&
                node.session_dir() == options_.head_session_dir;
    if (pick == nullptr || head) pick = &node;
    if (head) break;
  }
  return pick;
}

void JobManager::PlacePending() {
  for (auto& [id, job] : jobs_) {
    if (job.status() != rpc::JobSubmission::PENDING || starting_.count(id)) {
      continue;
    }
    if (const rpc::NodeInfo* node = PickNode(job)) Start(id, *node);
  }
}

void JobManager::PlacePeriodically() {
  if (stopped_) return;
  PlacePending();
  options_.loop->PostLazy(absl::Seconds(1), absl::Seconds(1),
                          [this] { PlacePeriodically(); });
}

void JobManager::Start(const std::string& id, const rpc::NodeInfo& node) {
  const rpc::JobSubmission& job = jobs_[id];
  auto* call = new Call<rpc::StartEntrypointRequest, rpc::StartEntrypointReply>;
  call->req.set_submission_id(id);
  call->req.set_entrypoint(job.entrypoint());
  *call->req.mutable_resources() = job.entrypoint_resources();
  for (const auto& [k, v] : EnvVars(job.runtime_env_json())) {
    (*call->req.mutable_env())[k] = v;
  }
  call->req.set_working_dir(job.working_dir());
  call->req.set_log_file(job.log_file());
  rpc::SetTimeout(&call->ctx, 30000);
  if (!calls_.Start(&call->ctx)) return delete call;
  starting_[id] = true;
  std::string node_id = node.node_id();
  auto cb = [this, call, node_id](grpc::Status s) {
    calls_.Finish(&call->ctx);
    options_.loop->Post([this, call, node_id, s] {
      std::string id = call->req.submission_id();
      starting_.erase(id);
      auto it = jobs_.find(id);
      if (it != jobs_.end() &&
          it->second.status() == rpc::JobSubmission::PENDING) {
        rpc::JobSubmission& job = it->second;
        if (!s.ok()) {
          job.set_message(absl::StrCat("starting the entrypoint failed (",
                                       s.error_message(), "); trying again"));
        } else if (call->reply.started()) {
          job.set_status(rpc::JobSubmission::RUNNING);
          job.set_node_id(node_id);
          job.set_message(absl::StrCat("running on node ",
                                       HexEncode(node_id).substr(0, 12),
                                       ", pid ", call->reply.pid()));
          Save(job);
          if (job.stop_requested()) {
            job.set_stop_requested(false);  // Stop sends it now
            Stop(id, [](absl::StatusOr<bool>) {});
          }
        }
      }
      delete call;
    });
  };
  rpc::AsyncCall(*options_.clients->Stub<rpc::Raylet>(RayletAddress(node)),
                 &rpc::Raylet::Stub::PrepareAsyncStartEntrypoint, &call->ctx,
                 call->req, &call->reply, cb);
}

void JobManager::End(rpc::JobSubmission& job, rpc::JobSubmission::Status status,
                     std::string message) {
  job.set_status(status);
  job.set_message(std::move(message));
  job.set_end_time_ms(NowMs());
  Save(job);
}

void JobManager::Save(const rpc::JobSubmission& job,
                      std::function<void()> then) {
  options_.store->Put("submissions", job.submission_id(),
                      job.SerializeAsString(), true,
                      then ? MustSave("a job submission", std::move(then))
                           : MustSave("a job submission"));
}

}  // namespace loom::gcs

// What a worker accepts: field checks on every message, the lease and actor
// a push must match, and the control calls only its raylet may make.
#include "runtime/worker_checks.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "object_store/layout.h"
#include "runtime/core_worker.h"
#include "runtime/thread_caps.h"
#include "src/common/auth.h"
#include "src/common/wire.h"

namespace loom {
namespace {

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(what);
}

template <typename Id>
absl::Status CheckId(const std::string& binary, const std::string& field) {
  auto id = ParseId<Id>(binary, field.c_str());
  return id.ok() ? absl::OkStatus() : id.status();
}

absl::Status CheckArg(const rpc::TaskArg& arg, int i, bool layout_args) {
  std::string at = absl::StrCat("args[", i, "]");
  switch (arg.kind_case()) {
    case rpc::TaskArg::kRef: {
      if (auto s = CheckId<ObjectId>(arg.ref().object_id(), at + ".object_id");
          !s.ok()) {
        return s;
      }
      if (arg.ref().store_node_id().empty()) {
        return Invalid(at +
                       ": an ObjectRef argument reached the worker unresolved "
                       "(no store_node_id)");
      }
      return CheckId<NodeId>(arg.ref().store_node_id(), at + ".store_node_id");
    }
    case rpc::TaskArg::kValue: {
      if (!layout_args) return absl::OkStatus();  // msgpack: checked on use
      const std::string& v = arg.value();
      auto layout =
          ParseLayout(reinterpret_cast<const uint8_t*>(v.data()), v.size());
      if (!layout.ok()) {
        return Invalid(absl::StrCat(at, ": not a Loom object (", v.size(),
                                    " bytes): ", layout.status().message()));
      }
      return absl::OkStatus();
    }
    default:
      return Invalid(at + ": neither a value nor a ref");
  }
}

}  // namespace

absl::Status ValidatePushedSpec(const rpc::TaskSpec& spec, bool layout_args) {
  if (auto s = CheckId<TaskId>(spec.task_id(), "task_id"); !s.ok()) return s;
  if (auto s = CheckId<JobId>(spec.job_id(), "job_id"); !s.ok()) return s;
  if (spec.function_name().size() > kMaxFunctionName ||
      spec.function_key().size() > kMaxFunctionName) {
    return Invalid(
        absl::StrCat("function_name and function_key must be at "
                     "most ",
                     kMaxFunctionName, " bytes"));
  }
  if (!spec.actor_id().empty() || spec.actor_creation()) {
    if (auto s = CheckId<ActorId>(spec.actor_id(), "actor_id"); !s.ok()) {
      return s;
    }
  }
  bool actor_call = !spec.actor_id().empty() && !spec.actor_creation();
  if (actor_call || !spec.caller_id().empty()) {
    if (auto s = CheckId<WorkerId>(spec.caller_id(), "caller_id"); !s.ok()) {
      return s;
    }
  }
  if (spec.seq() < 0) return Invalid("seq must be >= 0");
  if (spec.num_returns() < 0 || spec.num_returns() > kMaxReturns) {
    return Invalid(absl::StrCat("num_returns must be in [0, ", kMaxReturns,
                                "], got ", spec.num_returns()));
  }
  if (spec.max_concurrency() < 0 || spec.max_concurrency() > kMaxConcurrency) {
    return Invalid(absl::StrCat("max_concurrency must be in [0, ",
                                kMaxConcurrency, "], got ",
                                spec.max_concurrency()));
  }
  if (spec.caller().port() < 0 || spec.caller().port() > 65535 ||
      spec.caller().host().size() > 255) {
    return Invalid("caller: host longer than 255 bytes or port out of range");
  }
  // A C++ caller's inline arguments are bare msgpack, checked on use.
  layout_args = layout_args && !spec.msgpack_values();
  for (int i = 0; i < spec.args_size(); ++i) {
    if (auto s = CheckArg(spec.args(i), i, layout_args); !s.ok()) return s;
  }
  for (int i = 0; i < spec.contained_size(); ++i) {
    if (auto s = CheckId<ObjectId>(spec.contained(i),
                                   absl::StrCat("contained[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateBorrower(const std::string& borrower) {
  size_t colon = borrower.rfind(':');
  int port = 0;
  if (borrower.size() > 300 || colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(borrower.substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return Invalid(absl::StrCat("borrower must be host:port, got '",
                                borrower.substr(0, 64), "'"));
  }
  return absl::OkStatus();
}

absl::Status CoreWorker::CheckControlKey(const std::string& key) const {
  if (!ConstantTimeEquals(key, control_key_)) {
    return absl::PermissionDeniedError(
        "only this worker's raylet may assign, end leases or stop it (wrong "
        "control_key)");
  }
  return absl::OkStatus();
}

absl::Status CoreWorker::AdmitPush(const rpc::PushTaskRequest& req) {
  const rpc::TaskSpec& spec = req.spec();
  if (!code_loaded_) {
    return absl::FailedPreconditionError("worker has no job assigned");
  }
  if (!spec.actor_id().empty() && !spec.actor_creation()) {
    // An actor call: any caller, but only to the actor served here.
    if (actor_id_.IsNil()) {
      return absl::FailedPreconditionError(
          absl::StrCat("this worker serves no actor (a call to actor ",
                       HexEncode(spec.actor_id()), ")"));
    }
    if (spec.actor_id() != actor_id_.Binary()) {
      return absl::PermissionDeniedError(
          absl::StrCat("this worker serves actor ", actor_id_.Hex(),
                       ", not actor ", HexEncode(spec.actor_id())));
    }
    return absl::OkStatus();
  }
  if (req.lease_id().empty()) {
    return absl::PermissionDeniedError(
        "the push carries no lease: a worker runs a task only under a lease "
        "its raylet granted");
  }
  auto lease = ParseId<LeaseId>(req.lease_id(), "lease_id");
  if (!lease.ok()) return lease.status();
  if (lease_.IsNil() || *lease != lease_) {
    return absl::PermissionDeniedError(absl::StrCat(
        "lease ", lease->Hex(),
        " is not this worker's lease (returned, or never granted to it)"));
  }
  if (spec.job_id() != job_.Binary()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the task is of job ", HexEncode(spec.job_id()),
                     " but this worker's lease is for job ", job_.Hex()));
  }
  if (!actor_id_.IsNil()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this worker serves actor ", actor_id_.Hex(),
                     " and takes only its calls"));
  }
  if (spec.actor_creation()) actor_id_ = *ActorId::FromBinary(spec.actor_id());
  return absl::OkStatus();
}

absl::Status CoreWorker::HandleAssignJob(const rpc::AssignJobRequest& req) {
  auto job = ParseId<JobId>(req.job_id(), "job_id");
  if (!job.ok()) return job.status();
  auto lease = ParseId<LeaseId>(req.lease_id(), "lease_id");
  if (!lease.ok()) return lease.status();
  if (req.code_search_path_size() > 1024 || req.gpu_ids_size() > 1024) {
    return absl::InvalidArgumentError(
        "at most 1024 code_search_path entries and gpu_ids");
  }
  for (int g : req.gpu_ids()) {
    if (g < 0) return absl::InvalidArgumentError("gpu_ids must be >= 0");
  }
  if (!std::isfinite(req.cpus()) || req.cpus() < 0 || req.cpus() > 1e6) {
    return absl::InvalidArgumentError("cpus must be in [0, 1e6]");
  }
  if (auto s = CheckControlKey(req.control_key()); !s.ok()) return s;
  absl::MutexLock lock(&exec_mu_);
  if (code_loaded_ && *job != job_) {
    return absl::FailedPreconditionError("worker already serves another job");
  }
  std::vector<int> gpus(req.gpu_ids().begin(), req.gpu_ids().end());
  if (code_loaded_ && !gpu_ids_.empty() && gpus != gpu_ids_) {
    return absl::FailedPreconditionError("worker already holds other GPUs");
  }
  gpu_ids_ = gpus;
  setenv("CUDA_VISIBLE_DEVICES", absl::StrJoin(gpus, ",").c_str(), 1);
  // The execution threads cap the loaded libraries before their next task.
  if (int cap = ThreadCapFor(req.cpus()); cap != thread_cap_.load()) {
    SetThreadCapEnv(cap);
    thread_cap_.store(cap);
  }
  if (!code_loaded_) {
    std::vector<std::string> paths(req.code_search_path().begin(),
                                   req.code_search_path().end());
    // A language runtime's worker (Python) runs no C++ functions: it only
    // passes the path on to the tasks it submits.
    if (!options_.task_handler) {
      absl::Status s = LoadCode(paths);
      if (!s.ok()) return s;
    }
    job_ = *job;
    if (options_.on_job) options_.on_job(job_);
    options_.code_search_path = paths;
    StartSubmitters(paths);
    code_loaded_ = true;
  }
  lease_ = *lease;  // replaces a lease returned meanwhile
  return absl::OkStatus();
}

absl::Status CoreWorker::HandleEndLease(const rpc::EndLeaseRequest& req) {
  auto lease = ParseId<LeaseId>(req.lease_id(), "lease_id");
  if (!lease.ok()) return lease.status();
  if (auto s = CheckControlKey(req.control_key()); !s.ok()) return s;
  absl::MutexLock lock(&exec_mu_);
  // An older lease's end arriving after the next AssignJob changes nothing.
  if (lease_ == *lease) lease_ = LeaseId();
  return absl::OkStatus();
}

absl::Status CoreWorker::HandleExit(const rpc::ExitRequest& req) {
  if (auto s = CheckControlKey(req.control_key()); !s.ok()) return s;
  RequestExit();
  return absl::OkStatus();
}

}  // namespace loom

#include "src/raylet/worker_client.h"

#include "proto/worker.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"

namespace loom::raylet {

void WorkerClient::AssignJob(const WorkerId& worker, const std::string& address,
                             const JobAssignment& assignment,
                             std::function<void(absl::Status)> done) {
  addresses_[worker] = address;
  auto stub = clients_->Stub<rpc::CoreWorker>(address);
  struct Call {
    rpc::Context ctx;
    rpc::AssignJobRequest req;
    rpc::AssignJobReply reply;
  };
  auto call = std::make_shared<Call>();
  call->req.set_job_id(assignment.job.Binary());
  for (const auto& path : assignment.code_search_path) {
    call->req.add_code_search_path(path);
  }
  for (int id : assignment.gpu_ids) call->req.add_gpu_ids(id);
  call->req.set_lease_id(assignment.lease.Binary());
  call->req.set_control_key(assignment.control_key);
  call->req.set_cpus(assignment.cpus);
  rpc::SetTimeout(&call->ctx, 30000);
  rpc::AsyncCall(
      *stub, &rpc::CoreWorker::Stub::PrepareAsyncAssignJob, &call->ctx,
      call->req, &call->reply,
      [call, done = std::move(done)](grpc::Status s) { done(rpc::ToAbsl(s)); });
}

void WorkerClient::EndLease(const WorkerId& worker, const LeaseId& lease,
                            const std::string& control_key) {
  auto it = addresses_.find(worker);
  if (it == addresses_.end()) return;
  struct Call {
    rpc::Context ctx;
    rpc::EndLeaseRequest req;
    rpc::EndLeaseReply reply;
  };
  auto call = std::make_shared<Call>();
  call->req.set_lease_id(lease.Binary());
  call->req.set_control_key(control_key);
  rpc::SetTimeout(&call->ctx, 10000);
  rpc::AsyncCall(*clients_->Stub<rpc::CoreWorker>(it->second),
                 &rpc::CoreWorker::Stub::PrepareAsyncEndLease, &call->ctx,
                 call->req, &call->reply, [call](grpc::Status) {});
}

void WorkerClient::Forget(const WorkerId& worker) {
  auto it = addresses_.find(worker);
  if (it == addresses_.end()) return;
  clients_->Drop(it->second);
  addresses_.erase(it);
}

void WorkerClient::Idle(const WorkerId& worker) {
  auto it = addresses_.find(worker);
  if (it != addresses_.end()) clients_->Drop(it->second);
}

}  // namespace loom::raylet

// runtime/core_worker_service.h
//
// CoreWorkerService: the gRPC edge of a core worker. It translates calls
// into CoreWorker methods and their results back into replies. Drivers call
// workers as submitters (roles.h); the raylet's lease and exit orders need
// the cluster's own token. It serves from a completion queue of its own
// (async_server.h), not gRPC's callback API, so that an idle worker sleeps.
#ifndef LOOM_RUNTIME_CORE_WORKER_SERVICE_H_
#define LOOM_RUNTIME_CORE_WORKER_SERVICE_H_

#include <string>

#include "proto/worker.grpc.pb.h"
#include "runtime/core_worker.h"
#include "src/common/async_server.h"

namespace loom {

class CoreWorkerService {
 public:
  // Pushed tasks arrive back to back (a submitter pipelines them).
  static constexpr int kPushesWaiting = 8;

  explicit CoreWorkerService(CoreWorker* cw) {
    using S = rpc::CoreWorker::AsyncService;
    using rpc::Done;
    server_.Unary(
        &service_, &S::RequestPushTask, {"PushTask", Role::kSubmitter},
        [cw](const rpc::PushTaskRequest& req, rpc::PushTaskReply* reply,
             Done done) { cw->HandlePushTask(req, reply, std::move(done)); },
        {.waiting = kPushesWaiting});
    server_.Unary(&service_, &S::RequestAssignJob, {"AssignJob", Role::kAdmin},
                  [cw](const rpc::AssignJobRequest& req, rpc::AssignJobReply*,
                       Done done) { done(cw->HandleAssignJob(req)); });
    server_.Unary(&service_, &S::RequestEndLease, {"EndLease", Role::kAdmin},
                  [cw](const rpc::EndLeaseRequest& req, rpc::EndLeaseReply*,
                       Done done) { done(cw->HandleEndLease(req)); });
    server_.Unary(
        &service_, &S::RequestGetObject, {"GetObject", Role::kSubmitter},
        [cw](const rpc::GetObjectRequest& req, rpc::GetObjectReply* reply,
             Done done) { cw->HandleGetObject(req, reply, std::move(done)); });
    server_.Unary(&service_, &S::RequestReportStreamItem,
                  {"ReportStreamItem", Role::kSubmitter},
                  [cw](const rpc::ReportStreamItemRequest& req,
                       rpc::ReportStreamItemReply* reply, Done done) {
                    cw->HandleReportStreamItem(req, reply, std::move(done));
                  });
    server_.Unary(&service_, &S::RequestUpdateBorrows,
                  {"UpdateBorrows", Role::kSubmitter},
                  [cw](const rpc::UpdateBorrowsRequest& req,
                       rpc::UpdateBorrowsReply* reply, Done done) {
                    done(cw->HandleUpdateBorrows(req, reply));
                  });
    server_.Unary(&service_, &S::RequestGetReferences,
                  {"GetReferences", Role::kViewer},
                  [cw](const rpc::GetReferencesRequest& req,
                       rpc::GetReferencesReply* reply, Done done) {
                    done(cw->HandleGetReferences(req, reply));
                  });
    server_.Unary(&service_, &S::RequestWatchBorrower,
                  {"WatchBorrower", Role::kSubmitter},
                  [cw](const rpc::WatchBorrowerRequest&,
                       rpc::WatchBorrowerReply*, Done done) {
                    cw->HandleWatchBorrower(
                        [done = std::move(done)] { done(absl::OkStatus()); });
                  });
    server_.Unary(
        &service_, &S::RequestCancelTask, {"CancelTask", Role::kSubmitter},
        [cw](const rpc::CancelTaskRequest& req, rpc::CancelTaskReply* reply,
             Done done) { done(cw->HandleCancelTask(req, reply)); });
    server_.Unary(&service_, &S::RequestExit, {"Exit", Role::kAdmin},
                  [cw](const rpc::ExitRequest& req, rpc::ExitReply*,
                       Done done) { done(cw->HandleExit(req)); });
  }

  absl::Status Start(const std::string& host, int* bound_port) {
    return server_.Start(host, 0, &service_, bound_port);
  }
  void Shutdown(absl::Duration grace) { server_.Shutdown(grace); }

 private:
  rpc::CoreWorker::AsyncService service_;
  rpc::AsyncServer server_;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_CORE_WORKER_SERVICE_H_

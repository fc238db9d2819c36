// runtime/core_worker_service.h
//
// CoreWorkerService: the gRPC edge of a core worker. It translates calls
// into CoreWorker methods and their results back into replies. Drivers call
// workers as submitters (roles.h); the raylet's lease and exit orders need
// the cluster's own token.
#ifndef LOOM_RUNTIME_CORE_WORKER_SERVICE_H_
#define LOOM_RUNTIME_CORE_WORKER_SERVICE_H_

#include "proto/worker.grpc.pb.h"
#include "runtime/core_worker.h"
#include "src/common/rpc.h"

namespace loom {

class CoreWorkerService : public rpc::CoreWorker::CallbackService {
 public:
  explicit CoreWorkerService(CoreWorker* cw) : cw_(cw) {}

  grpc::ServerUnaryReactor* PushTask(grpc::CallbackServerContext* ctx,
                                     const rpc::PushTaskRequest* req,
                                     rpc::PushTaskReply* reply) override {
    return rpc::Serve(ctx, {"PushTask", Role::kSubmitter},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        cw_->HandlePushTask(*req, reply,
                                            [reactor](absl::Status s) {
                                              reactor->Finish(rpc::ToGrpc(s));
                                            });
                      });
  }

  grpc::ServerUnaryReactor* AssignJob(grpc::CallbackServerContext* ctx,
                                      const rpc::AssignJobRequest* req,
                                      rpc::AssignJobReply* reply) override {
    return rpc::Serve(
        ctx, {"AssignJob", Role::kAdmin},
        [&](grpc::ServerUnaryReactor* reactor) {
          reactor->Finish(rpc::ToGrpc(cw_->HandleAssignJob(*req)));
        });
  }

  grpc::ServerUnaryReactor* EndLease(grpc::CallbackServerContext* ctx,
                                     const rpc::EndLeaseRequest* req,
                                     rpc::EndLeaseReply* reply) override {
    return rpc::Serve(ctx, {"EndLease", Role::kAdmin},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        reactor->Finish(rpc::ToGrpc(cw_->HandleEndLease(*req)));
                      });
  }

  grpc::ServerUnaryReactor* GetObject(grpc::CallbackServerContext* ctx,
                                      const rpc::GetObjectRequest* req,
                                      rpc::GetObjectReply* reply) override {
    return rpc::Serve(ctx, {"GetObject", Role::kSubmitter},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        cw_->HandleGetObject(*req, reply,
                                             [reactor](absl::Status s) {
                                               reactor->Finish(rpc::ToGrpc(s));
                                             });
                      });
  }

  grpc::ServerUnaryReactor* ReportStreamItem(
      grpc::CallbackServerContext* ctx, const rpc::ReportStreamItemRequest* req,
      rpc::ReportStreamItemReply* reply) override {
    return rpc::Serve(ctx, {"ReportStreamItem", Role::kSubmitter},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        cw_->HandleReportStreamItem(
                            *req, reply, [reactor](absl::Status s) {
                              reactor->Finish(rpc::ToGrpc(s));
                            });
                      });
  }

  grpc::ServerUnaryReactor* UpdateBorrows(
      grpc::CallbackServerContext* ctx, const rpc::UpdateBorrowsRequest* req,
      rpc::UpdateBorrowsReply* reply) override {
    return rpc::Serve(
        ctx, {"UpdateBorrows", Role::kSubmitter},
        [&](grpc::ServerUnaryReactor* reactor) {
          reactor->Finish(rpc::ToGrpc(cw_->HandleUpdateBorrows(*req, reply)));
        });
  }

  grpc::ServerUnaryReactor* GetReferences(
      grpc::CallbackServerContext* ctx, const rpc::GetReferencesRequest* req,
      rpc::GetReferencesReply* reply) override {
    return rpc::Serve(
        ctx, {"GetReferences", Role::kViewer},
        [&](grpc::ServerUnaryReactor* reactor) {
          reactor->Finish(rpc::ToGrpc(cw_->HandleGetReferences(*req, reply)));
        });
  }

  grpc::ServerUnaryReactor* WatchBorrower(
      grpc::CallbackServerContext* ctx, const rpc::WatchBorrowerRequest* req,
      rpc::WatchBorrowerReply* reply) override {
    return rpc::Serve(ctx, {"WatchBorrower", Role::kSubmitter},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        cw_->HandleWatchBorrower(
                            [reactor] { reactor->Finish(grpc::Status::OK); });
                      });
  }

  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx,
                                       const rpc::CancelTaskRequest* req,
                                       rpc::CancelTaskReply* reply) override {
    return rpc::Serve(
        ctx, {"CancelTask", Role::kSubmitter},
        [&](grpc::ServerUnaryReactor* reactor) {
          reactor->Finish(rpc::ToGrpc(cw_->HandleCancelTask(*req, reply)));
        });
  }

  grpc::ServerUnaryReactor* Exit(grpc::CallbackServerContext* ctx,
                                 const rpc::ExitRequest* req,
                                 rpc::ExitReply* reply) override {
    return rpc::Serve(ctx, {"Exit", Role::kAdmin},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        reactor->Finish(rpc::ToGrpc(cw_->HandleExit(*req)));
                      });
  }

 private:
  CoreWorker* cw_;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_CORE_WORKER_SERVICE_H_

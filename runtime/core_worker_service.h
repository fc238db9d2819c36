// runtime/core_worker_service.h
//
// CoreWorkerService: the gRPC edge of a core worker. It translates calls
// into CoreWorker methods and their results back into replies.
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
    auto* reactor = ctx->DefaultReactor();
    cw_->HandlePushTask(*req, reply, [reactor](absl::Status s) {
      reactor->Finish(rpc::ToGrpc(s));
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* AssignJob(grpc::CallbackServerContext* ctx,
                                      const rpc::AssignJobRequest* req,
                                      rpc::AssignJobReply* reply) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(rpc::ToGrpc(cw_->HandleAssignJob(*req)));
    return reactor;
  }

  grpc::ServerUnaryReactor* GetObject(grpc::CallbackServerContext* ctx,
                                      const rpc::GetObjectRequest* req,
                                      rpc::GetObjectReply* reply) override {
    auto* reactor = ctx->DefaultReactor();
    cw_->HandleGetObject(*req, reply, [reactor](absl::Status s) {
      reactor->Finish(rpc::ToGrpc(s));
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* UpdateBorrows(
      grpc::CallbackServerContext* ctx, const rpc::UpdateBorrowsRequest* req,
      rpc::UpdateBorrowsReply* reply) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(rpc::ToGrpc(cw_->HandleUpdateBorrows(*req, reply)));
    return reactor;
  }

  grpc::ServerUnaryReactor* WatchBorrower(
      grpc::CallbackServerContext* ctx, const rpc::WatchBorrowerRequest* req,
      rpc::WatchBorrowerReply* reply) override {
    auto* reactor = ctx->DefaultReactor();
    cw_->HandleWatchBorrower([reactor] { reactor->Finish(grpc::Status::OK); });
    return reactor;
  }

  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx,
                                       const rpc::CancelTaskRequest* req,
                                       rpc::CancelTaskReply* reply) override {
    auto* reactor = ctx->DefaultReactor();
    cw_->HandleCancelTask(*req, reply);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Exit(grpc::CallbackServerContext* ctx,
                                 const rpc::ExitRequest* req,
                                 rpc::ExitReply* reply) override {
    auto* reactor = ctx->DefaultReactor();
    cw_->RequestExit();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  CoreWorker* cw_;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_CORE_WORKER_SERVICE_H_

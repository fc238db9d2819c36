// src/raylet/raylet_service.h
//
// RayletService: the gRPC edge of the raylet. Each method posts its request
// to the NodeManager's event loop and finishes when the handler is done.
#ifndef LOOM_SRC_RAYLET_RAYLET_SERVICE_H_
#define LOOM_SRC_RAYLET_RAYLET_SERVICE_H_

#include <grpcpp/support/proto_buffer_reader.h>

#include <chrono>

#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/rpc.h"
#include "src/raylet/log_files.h"
#include "src/raylet/node_manager.h"

namespace loom::raylet {

// ReadObjectChunk is raw: its reply is a ByteBuffer that points into the
// object store (see ObjectManager::ReadChunk).
class RayletService : public rpc::Raylet::WithRawCallbackMethod_ReadObjectChunk<
                          rpc::Raylet::CallbackService> {
 public:
  explicit RayletService(NodeManager* node) : node_(node) {}

  // Each method names the least role that may call it (roles.h): drivers
  // run as submitters; kAdmin is for the head and the cluster's processes.
#define LOOM_RAYLET_METHOD(Name, Req, Reply, role)                       \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx,       \
                                 const rpc::Req* req, rpc::Reply* reply) \
      override {                                                         \
    return rpc::PostToLoop(ctx, node_->loop(), {#Name, Role::role}, req, \
                           reply,                                        \
                           [n = node_](const auto& r, auto* p, Done d) { \
                             n->Handle##Name(r, p, std::move(d));        \
                           });                                           \
  }
  grpc::ServerUnaryReactor* RequestWorkerLease(
      grpc::CallbackServerContext* ctx, const rpc::LeaseRequest* req,
      rpc::LeaseReply* reply) override {
    // The context lives until the call is finished: asked only before. A
    // grant sent in the deadline's last second could reach the caller too
    // late, and the worker would be held by nobody.
    return rpc::PostToLoop(
        ctx, node_->loop(), {"RequestWorkerLease", Role::kSubmitter}, req,
        reply, [n = node_, ctx](const auto& r, auto* p, Done d) {
          n->HandleRequestWorkerLease(r, p, std::move(d), [ctx] {
            return ctx->IsCancelled() ||
                   std::chrono::system_clock::now() + std::chrono::seconds(1) >
                       ctx->deadline();
          });
        });
  }
  LOOM_RAYLET_METHOD(ReturnWorker, ReturnWorkerRequest, ReturnWorkerReply,
                     kSubmitter)
  LOOM_RAYLET_METHOD(RegisterWorker, RegisterWorkerRequest, RegisterWorkerReply,
                     kAdmin)
  LOOM_RAYLET_METHOD(RegisterDriver, RegisterDriverRequest, RegisterDriverReply,
                     kSubmitter)
  LOOM_RAYLET_METHOD(NotifyBlocked, NotifyBlockedRequest, NotifyBlockedReply,
                     kSubmitter)
  LOOM_RAYLET_METHOD(ReportTaskStats, ReportTaskStatsRequest,
                     ReportTaskStatsReply, kSubmitter)
  LOOM_RAYLET_METHOD(GetNodeStats, GetNodeStatsRequest, GetNodeStatsReply,
                     kViewer)
  LOOM_RAYLET_METHOD(PrepareBundle, BundleRequest, BundleReply, kAdmin)
  LOOM_RAYLET_METHOD(CommitBundle, BundleRequest, BundleReply, kAdmin)
  LOOM_RAYLET_METHOD(ReleaseBundle, BundleRequest, BundleReply, kAdmin)
  LOOM_RAYLET_METHOD(FlushLogs, FlushJobLogsRequest, FlushJobLogsReply,
                     kSubmitter)
  LOOM_RAYLET_METHOD(StartEntrypoint, StartEntrypointRequest,
                     StartEntrypointReply, kAdmin)
  LOOM_RAYLET_METHOD(StopEntrypoint, StopEntrypointRequest, StopEntrypointReply,
                     kAdmin)
#undef LOOM_RAYLET_METHOD

  // Transfers stay off the loop: the handlers are thread-safe.
  grpc::ServerUnaryReactor* PullObject(grpc::CallbackServerContext* ctx,
                                       const rpc::PullObjectRequest* req,
                                       rpc::PullObjectReply* reply) override {
    return rpc::Serve(ctx, {"PullObject", Role::kSubmitter},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        node_->HandlePullObject(
                            *req, reply, [reactor](absl::Status s) {
                              reactor->Finish(rpc::ToGrpc(s));
                            });
                      });
  }
  grpc::ServerUnaryReactor* FreeObjects(grpc::CallbackServerContext* ctx,
                                        const rpc::FreeObjectsRequest* req,
                                        rpc::FreeObjectsReply* reply) override {
    return rpc::Serve(ctx, {"FreeObjects", Role::kSubmitter},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        node_->HandleFreeObjects(
                            *req, reply, [reactor](absl::Status s) {
                              reactor->Finish(rpc::ToGrpc(s));
                            });
                      });
  }
  // Log files: file IO, off the loop.
  grpc::ServerUnaryReactor* ListLogFiles(
      grpc::CallbackServerContext* ctx, const rpc::ListLogFilesRequest*,
      rpc::ListLogFilesReply* reply) override {
    return rpc::Serve(ctx, {"ListLogFiles", Role::kViewer},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        auto files = raylet::ListLogFiles(node_->log_dir());
                        if (files.ok()) {
                          for (auto& f : *files)
                            *reply->add_files() = std::move(f);
                        }
                        reactor->Finish(rpc::ToGrpc(files.status()));
                      });
  }
  grpc::ServerUnaryReactor* ReadLogFile(grpc::CallbackServerContext* ctx,
                                        const rpc::ReadLogFileRequest* req,
                                        rpc::ReadLogFileReply* reply) override {
    return rpc::Serve(ctx, {"ReadLogFile", Role::kViewer},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        reactor->Finish(rpc::ToGrpc(raylet::ReadLogFile(
                            node_->log_dir(), *req, reply)));
                      });
  }
  grpc::ServerUnaryReactor* ReadObjectChunk(grpc::CallbackServerContext* ctx,
                                            const grpc::ByteBuffer* req,
                                            grpc::ByteBuffer* reply) override {
    return rpc::Serve(
        ctx, {"ReadObjectChunk", Role::kSubmitter},
        [&](grpc::ServerUnaryReactor* reactor) {
          rpc::ReadObjectChunkRequest parsed;
          grpc::ByteBuffer copy(*req);  // parsing consumes the buffer
          grpc::Status s =
              grpc::GenericDeserialize<grpc::ProtoBufferReader,
                                       rpc::ReadObjectChunkRequest>(&copy,
                                                                    &parsed);
          if (!s.ok()) {
            reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "malformed ReadObjectChunkRequest"));
          } else {
            reactor->Finish(
                rpc::ToGrpc(node_->HandleReadObjectChunk(parsed, reply)));
          }
        });
  }

  // A worker's function-table reads and task events go to the head over
  // this raylet's channel (a connection to the head held per worker cost
  // the head ~25 KiB each while open). The head's answer, its errors
  // (UNAVAILABLE while it is down) and its deadline are the caller's.
  grpc::ServerUnaryReactor* KvGet(grpc::CallbackServerContext* ctx,
                                  const rpc::KvGetRequest* req,
                                  rpc::KvGetReply* reply) override {
    return Relay(ctx, {"KvGet", Role::kViewer}, &rpc::Gcs::Stub::async::KvGet,
                 req, reply);
  }
  grpc::ServerUnaryReactor* ReportTaskEvents(
      grpc::CallbackServerContext* ctx, const rpc::ReportTaskEventsRequest* req,
      rpc::ReportTaskEventsReply* reply) override {
    return Relay(ctx, {"ReportTaskEvents", Role::kSubmitter},
                 &rpc::Gcs::Stub::async::ReportTaskEvents, req, reply);
  }

 private:
  template <typename Req, typename Reply>
  using HeadMethod =
      void (rpc::Gcs::Stub::async::*)(grpc::ClientContext*, const Req*, Reply*,
                                      std::function<void(grpc::Status)>);
  template <typename Req, typename Reply>
  grpc::ServerUnaryReactor* Relay(grpc::CallbackServerContext* ctx,
                                  const rpc::Need& need,
                                  HeadMethod<Req, Reply> method, const Req* req,
                                  Reply* reply) {
    return rpc::Serve(ctx, need, [&](grpc::ServerUnaryReactor* reactor) {
      if (node_->gcs_address().empty()) {
        reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                     "this raylet has no head"));
        return;
      }
      auto stub = node_->clients()->Stub<rpc::Gcs>(node_->gcs_address());
      auto* call = new rpc::Context;
      call->set_deadline(ctx->deadline());
      (stub->async()->*method)(call, req, reply,
                               [reactor, call, stub](grpc::Status s) {
                                 delete call;
                                 reactor->Finish(s);
                               });
    });
  }

  NodeManager* node_;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_RAYLET_SERVICE_H_

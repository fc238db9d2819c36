// src/raylet/raylet_service.h
//
// RayletService: the gRPC edge of the raylet. Most methods post their
// request to the NodeManager's event loop and finish when the handler is
// done; transfers, log files and relays to the head answer in place. It
// serves from a completion queue of its own (async_server.h), not gRPC's
// callback API, so that an idle raylet sleeps.
//
//   RayletService service(&node);
//   int port = 0;
//   absl::Status s = service.Start("0.0.0.0", 0, &port);
//   service.Shutdown(absl::Milliseconds(300));
#ifndef LOOM_SRC_RAYLET_RAYLET_SERVICE_H_
#define LOOM_SRC_RAYLET_RAYLET_SERVICE_H_

#include <grpcpp/support/proto_buffer_reader.h>

#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/async_server.h"
#include "src/common/rpc.h"
#include "src/raylet/log_files.h"
#include "src/raylet/node_manager.h"

namespace loom::raylet {

// ReadObjectChunk is raw: its reply is a ByteBuffer that points into the
// object store (see ObjectManager::ReadChunk).
using RayletAsyncService =
    rpc::Raylet::WithRawMethod_ReadObjectChunk<rpc::Raylet::AsyncService>;

class RayletService {
 public:
  explicit RayletService(NodeManager* node) : node_(node) {
    using S = RayletAsyncService;
    // Each method names the least role that may call it (roles.h): drivers
    // run as submitters; kAdmin is for the head and the cluster's processes.
    NodeManager* n = node_;
#define LOOM_RAYLET_METHOD(Name, role, ...)                          \
  rpc_.UnaryOnLoop(                                                  \
      &service_, &S::Request##Name, {#Name, Role::role}, &n->loop(), \
      [n](const auto& r, auto* p, rpc::Done d) {                     \
        n->Handle##Name(r, p, std::move(d));                         \
      },                                                             \
      ##__VA_ARGS__)
    LOOM_RAYLET_METHOD(ReturnWorker, kSubmitter, {.waiting = 4});
    LOOM_RAYLET_METHOD(RegisterWorker, kAdmin, {.waiting = 4});
    LOOM_RAYLET_METHOD(RegisterDriver, kSubmitter);
    LOOM_RAYLET_METHOD(NotifyBlocked, kSubmitter);
    LOOM_RAYLET_METHOD(ReportTaskStats, kSubmitter);
    LOOM_RAYLET_METHOD(GetNodeStats, kViewer);
    LOOM_RAYLET_METHOD(PrepareBundle, kAdmin);
    LOOM_RAYLET_METHOD(CommitBundle, kAdmin);
    LOOM_RAYLET_METHOD(ReleaseBundle, kAdmin);
    LOOM_RAYLET_METHOD(FlushLogs, kSubmitter);
    LOOM_RAYLET_METHOD(StartEntrypoint, kAdmin);
    LOOM_RAYLET_METHOD(StopEntrypoint, kAdmin);
#undef LOOM_RAYLET_METHOD
    // Watched: a grant sent in the deadline's last second could reach the
    // caller too late, or one whose caller cancelled reach nobody, and the
    // worker would be held by nobody.
    rpc_.UnaryOnLoop(
        &service_, &S::RequestRequestWorkerLease,
        {"RequestWorkerLease", Role::kSubmitter}, &n->loop(),
        [n](const rpc::LeaseRequest& r, rpc::LeaseReply* p, rpc::Done d,
            const rpc::Incoming& in) {
          n->HandleRequestWorkerLease(
              r, p, std::move(d), [gone = in.gone, deadline = in.deadline] {
                return gone() || absl::Now() + absl::Seconds(1) > deadline;
              });
        },
        {.waiting = 4, .watch = true});

    // Transfers stay off the loop: the handlers are thread-safe.
    rpc_.Unary(&service_, &S::RequestPullObject,
               {"PullObject", Role::kSubmitter},
               [n](const rpc::PullObjectRequest& r, rpc::PullObjectReply* p,
                   rpc::Done d) { n->HandlePullObject(r, p, std::move(d)); });
    rpc_.Unary(&service_, &S::RequestFreeObjects,
               {"FreeObjects", Role::kSubmitter},
               [n](const rpc::FreeObjectsRequest& r, rpc::FreeObjectsReply* p,
                   rpc::Done d) { n->HandleFreeObjects(r, p, std::move(d)); });
    rpc_.Unary(
        &service_, &S::RequestReadObjectChunk,
        {"ReadObjectChunk", Role::kSubmitter},
        [n](const grpc::ByteBuffer& r, grpc::ByteBuffer* p, rpc::Done d) {
          rpc::ReadObjectChunkRequest parsed;
          grpc::ByteBuffer copy(r);  // parsing consumes the buffer
          grpc::Status s =
              grpc::GenericDeserialize<grpc::ProtoBufferReader,
                                       rpc::ReadObjectChunkRequest>(&copy,
                                                                    &parsed);
          if (!s.ok()) {
            return d(
                absl::InvalidArgumentError("malformed ReadObjectChunkRequest"));
          }
          d(n->HandleReadObjectChunk(parsed, p));
        },
        {.waiting = 4});
    // Log files: file IO, off the loop.
    rpc_.Unary(&service_, &S::RequestListLogFiles,
               {"ListLogFiles", Role::kViewer},
               [n](const rpc::ListLogFilesRequest&, rpc::ListLogFilesReply* p,
                   rpc::Done d) {
                 auto files = raylet::ListLogFiles(n->log_dir());
                 if (files.ok()) {
                   for (auto& f : *files) *p->add_files() = std::move(f);
                 }
                 d(files.status());
               });
    rpc_.Unary(
        &service_, &S::RequestReadLogFile, {"ReadLogFile", Role::kViewer},
        [n](const rpc::ReadLogFileRequest& r, rpc::ReadLogFileReply* p,
            rpc::Done d) { d(raylet::ReadLogFile(n->log_dir(), r, p)); });

    // A worker's function-table reads and task events go to the head over
    // this raylet's channel (a connection to the head held per worker cost
    // the head ~25 KiB each while open). The head's answer, its errors
    // (UNAVAILABLE while it is down) and its deadline are the caller's.
    Relay(&S::RequestKvGet, {"KvGet", Role::kViewer},
          &rpc::Gcs::Stub::PrepareAsyncKvGet);
    Relay(&S::RequestReportTaskEvents, {"ReportTaskEvents", Role::kSubmitter},
          &rpc::Gcs::Stub::PrepareAsyncReportTaskEvents);
  }

  // Listens on host:port (0: a free one, written to *bound_port), and on
  // 127.0.0.1 too for a host that is neither loopback nor 0.0.0.0.
  absl::Status Start(const std::string& host, int port, int* bound_port) {
    return rpc_.Start(host, port, &service_, bound_port,
                      /*also_loopback=*/true, kServeThreads);
  }
  void Shutdown(absl::Duration grace) { rpc_.Shutdown(grace); }

 private:
  // Chunks read for several pulls at once.
  static constexpr int kServeThreads = 2;

  template <typename Base, typename Req, typename Reply>
  void Relay(rpc::RequestUnary<Base, Req, Reply> request, rpc::Need need,
             rpc::PrepareUnary<rpc::Gcs::Stub, Req, Reply> method) {
    NodeManager* n = node_;
    rpc_.Unary(
        &service_, request, need,
        [n, method](const Req& r, Reply* p, rpc::Done d,
                    const rpc::Incoming& in) {
          if (n->gcs_address().empty()) {
            return d(absl::FailedPreconditionError("this raylet has no head"));
          }
          auto* ctx = new rpc::Context;
          ctx->set_deadline(absl::ToChronoTime(in.deadline));
          rpc::AsyncCall(*n->clients()->Stub<rpc::Gcs>(n->gcs_address()),
                         method, ctx, r, p,
                         [ctx, d = std::move(d)](grpc::Status s) {
                           delete ctx;
                           d(rpc::ToAbsl(s));
                         });
        });
  }

  NodeManager* node_;
  RayletAsyncService service_;
  rpc::AsyncServer rpc_;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_RAYLET_SERVICE_H_

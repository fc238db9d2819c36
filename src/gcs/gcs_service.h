// src/gcs/gcs_service.h
//
// GcsService: the gRPC edge of the head. Each method posts its request to
// the GcsServer's event loop and finishes when the handler is done.
#ifndef LOOM_GCS_GCS_SERVICE_H_
#define LOOM_GCS_GCS_SERVICE_H_

#include "proto/gcs.grpc.pb.h"
#include "src/gcs/gcs_server.h"

namespace loom::gcs {

class GcsService : public rpc::Gcs::CallbackService {
 public:
  explicit GcsService(GcsServer* server) : server_(server) {}

#define LOOM_GCS_METHOD(Name)                                              \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx,         \
                                 const rpc::Name##Request* req,            \
                                 rpc::Name##Reply* reply) override {       \
    return rpc::PostToLoop(ctx, server_->loop(), req, reply,               \
                           [s = server_](const auto& r, auto* p, Done d) { \
                             s->Handle##Name(r, p, std::move(d));          \
                           });                                             \
  }
  LOOM_GCS_METHOD(RegisterNode)
  LOOM_GCS_METHOD(Heartbeat)
  LOOM_GCS_METHOD(UnregisterNode)
  LOOM_GCS_METHOD(ScheduleLease)
  LOOM_GCS_METHOD(GetClusterStatus)
  LOOM_GCS_METHOD(KvPut)
  LOOM_GCS_METHOD(KvGet)
  LOOM_GCS_METHOD(KvDel)
  LOOM_GCS_METHOD(KvKeys)
  LOOM_GCS_METHOD(AddJob)
  LOOM_GCS_METHOD(MarkJobFinished)
  LOOM_GCS_METHOD(GetJobs)
  LOOM_GCS_METHOD(ReportWorkerDeath)
  LOOM_GCS_METHOD(UpdateObjectLocations)
  LOOM_GCS_METHOD(GetObjectLocations)
  LOOM_GCS_METHOD(PollEvents)
  LOOM_GCS_METHOD(PublishLogs)
  LOOM_GCS_METHOD(PollLogs)
  LOOM_GCS_METHOD(FlushLogs)
  LOOM_GCS_METHOD(RegisterActor)
  LOOM_GCS_METHOD(GetActor)
  LOOM_GCS_METHOD(KillActor)
  LOOM_GCS_METHOD(ListActors)
  LOOM_GCS_METHOD(CreatePlacementGroup)
  LOOM_GCS_METHOD(GetPlacementGroup)
  LOOM_GCS_METHOD(RemovePlacementGroup)
  LOOM_GCS_METHOD(ListPlacementGroups)
  LOOM_GCS_METHOD(ListLogs)
  LOOM_GCS_METHOD(ReadLog)
  LOOM_GCS_METHOD(ReportEntrypointExit)
#undef LOOM_GCS_METHOD

  // Task events and the state API over them: on gRPC's thread, under the
  // store's own lock, never on the head's loop.
  grpc::ServerUnaryReactor* ReportTaskEvents(
      grpc::CallbackServerContext* ctx, const rpc::ReportTaskEventsRequest* req,
      rpc::ReportTaskEventsReply*) override {
    return rpc::Serve(ctx, [&](grpc::ServerUnaryReactor* reactor) {
      server_->tasks().Report(*req);
      if (req->transfers_size() > 0 || req->dropped_transfers() > 0) {
        server_->transfers().Report(*req);
      }
      reactor->Finish(grpc::Status::OK);
    });
  }
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx,
                                      const rpc::ListTasksRequest* req,
                                      rpc::ListTasksReply* reply) override {
    return rpc::Serve(ctx, [&](grpc::ServerUnaryReactor* reactor) {
      absl::Status s = server_->tasks().List(*req, reply);
      if (s.ok() && req->transfers()) server_->transfers().List(*req, reply);
      reactor->Finish(rpc::ToGrpc(s));
    });
  }
  grpc::ServerUnaryReactor* SummarizeTasks(
      grpc::CallbackServerContext* ctx, const rpc::SummarizeTasksRequest* req,
      rpc::SummarizeTasksReply* reply) override {
    return rpc::Serve(ctx, [&](grpc::ServerUnaryReactor* reactor) {
      server_->tasks().Summarize(*req, reply);
      reactor->Finish(grpc::Status::OK);
    });
  }

 private:
  GcsServer* server_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_GCS_SERVICE_H_

// src/gcs/gcs_service.h
//
// GcsService: the gRPC edge of the head. Each method posts its request to
// the GcsServer's event loop and finishes when the handler is done.
#ifndef LOOM_GCS_GCS_SERVICE_H_
#define LOOM_GCS_GCS_SERVICE_H_

#include <algorithm>
#include <string>
#include <type_traits>

#include "proto/gcs.grpc.pb.h"
#include "src/common/roles.h"
#include "src/gcs/gcs_server.h"

namespace loom::gcs {

namespace internal {

// A handler that does not need the caller, as one that takes it.
template <typename Req, typename Reply>
auto Plain(void (GcsServer::*handle)(const Req&, Reply*, Done)) {
  return [handle](GcsServer* s, const Req& r, Reply* p, Done d,
                  const Identity&) { (s->*handle)(r, p, std::move(d)); };
}

// What an audited call acted on, when a target function names its action
// too ("": the method's name); an empty target is not logged.
struct AuditWhat {
  std::string action;
  std::string target;
};

// KV writes are audited when a person's token makes them outside a job's
// function table (namespace "fn", which drivers fill as they run). Serve
// applications (namespace "serve", key "app/NAME"), which the serve client
// writes as it deploys and deletes them, are logged whoever writes them, as
// `serve_action`.
inline auto KvTarget(const char* serve_action) {
  return [serve_action](const auto& r, const auto&,
                        const Identity& who) -> AuditWhat {
    if (r.ns() == "serve" && r.key().rfind("app/", 0) == 0) {
      return {serve_action, "serve app " + r.key().substr(4)};
    }
    if (who.cluster() || r.ns() == "fn") return {};  // not audited
    return {"", "kv " + r.ns() + "/" + r.key()};
  };
}

}  // namespace internal

class GcsService : public rpc::Gcs::CallbackService {
 public:
  explicit GcsService(GcsServer* server) : server_(server) {}

  // Each method names the least role that may call it (roles.h): kViewer
  // reads, kSubmitter runs jobs, kAdmin is for the cluster's own processes
  // (nodes, raylets) and administrators.
#define LOOM_GCS_METHOD(Name, role)                                        \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx,         \
                                 const rpc::Name##Request* req,            \
                                 rpc::Name##Reply* reply) override {       \
    return rpc::PostToLoop(ctx, server_->loop(), {#Name, Role::role}, req, \
                           reply,                                          \
                           [s = server_](const auto& r, auto* p, Done d) { \
                             s->Handle##Name(r, p, std::move(d));          \
                           });                                             \
  }
  LOOM_GCS_METHOD(Heartbeat, kAdmin)
  LOOM_GCS_METHOD(ScheduleLease, kSubmitter)
  LOOM_GCS_METHOD(GetClusterStatus, kViewer)
  LOOM_GCS_METHOD(KvGet, kViewer)
  LOOM_GCS_METHOD(KvKeys, kViewer)
  LOOM_GCS_METHOD(MarkJobFinished, kSubmitter)
  LOOM_GCS_METHOD(GetJobs, kViewer)
  LOOM_GCS_METHOD(ReportWorkerDeath, kAdmin)
  LOOM_GCS_METHOD(UpdateObjectLocations, kSubmitter)
  LOOM_GCS_METHOD(GetObjectLocations, kViewer)
  LOOM_GCS_METHOD(PollEvents, kViewer)
  LOOM_GCS_METHOD(PublishLogs, kSubmitter)
  LOOM_GCS_METHOD(PollLogs, kViewer)
  LOOM_GCS_METHOD(FlushLogs, kSubmitter)
  LOOM_GCS_METHOD(RegisterActor, kSubmitter)
  LOOM_GCS_METHOD(GetActor, kViewer)
  LOOM_GCS_METHOD(ListActors, kViewer)
  LOOM_GCS_METHOD(GetPlacementGroup, kViewer)
  LOOM_GCS_METHOD(ListPlacementGroups, kViewer)
  LOOM_GCS_METHOD(ListLogs, kViewer)
  LOOM_GCS_METHOD(ReadLog, kViewer)
  LOOM_GCS_METHOD(ReportEntrypointExit, kAdmin)
#undef LOOM_GCS_METHOD

  // Audited: each call goes to the audit log with what it acted on.
  grpc::ServerUnaryReactor* RegisterNode(
      grpc::CallbackServerContext* ctx, const rpc::RegisterNodeRequest* req,
      rpc::RegisterNodeReply* reply) override {
    return Audited(
        ctx, {"RegisterNode", Role::kAdmin}, req, reply,
        [](const auto& r, const auto&, const Identity&) {
          return "node " + HexEncode(r.node().node_id()) + " at " +
                 r.node().host();
        },
        internal::Plain(&GcsServer::HandleRegisterNode));
  }
  grpc::ServerUnaryReactor* UnregisterNode(
      grpc::CallbackServerContext* ctx, const rpc::UnregisterNodeRequest* req,
      rpc::UnregisterNodeReply* reply) override {
    return Audited(
        ctx, {"UnregisterNode", Role::kAdmin}, req, reply,
        [](const auto& r, const auto&, const Identity&) {
          return "node " + HexEncode(r.node_id());
        },
        internal::Plain(&GcsServer::HandleUnregisterNode));
  }
  grpc::ServerUnaryReactor* AddJob(grpc::CallbackServerContext* ctx,
                                   const rpc::AddJobRequest* req,
                                   rpc::AddJobReply* reply) override {
    return Audited(
        ctx, {"AddJob", Role::kSubmitter}, req, reply,
        [](const auto& r, const auto& p, const Identity&) {
          return "job " + HexEncode(p.job_id()) + " (driver pid " +
                 std::to_string(r.driver_pid()) + ")";
        },
        [s = server_](const auto& r, auto* p, Done d, const Identity& who) {
          s->HandleAddJob(r, p, std::move(d), who);
        });
  }
  grpc::ServerUnaryReactor* KillActor(grpc::CallbackServerContext* ctx,
                                      const rpc::KillActorRequest* req,
                                      rpc::KillActorReply* reply) override {
    return Audited(
        ctx, {"KillActor", Role::kSubmitter}, req, reply,
        [](const auto& r, const auto&, const Identity&) {
          return "actor " + HexEncode(r.actor_id());
        },
        [s = server_](const auto& r, auto* p, Done d, const Identity& who) {
          s->HandleKillActor(r, p, std::move(d), who);
        });
  }
  grpc::ServerUnaryReactor* CreatePlacementGroup(
      grpc::CallbackServerContext* ctx,
      const rpc::CreatePlacementGroupRequest* req,
      rpc::CreatePlacementGroupReply* reply) override {
    return Audited(
        ctx, {"CreatePlacementGroup", Role::kSubmitter}, req, reply,
        [](const auto&, const auto& p, const Identity&) {
          return "placement group " + HexEncode(p.pg_id());
        },
        internal::Plain(&GcsServer::HandleCreatePlacementGroup));
  }
  grpc::ServerUnaryReactor* RemovePlacementGroup(
      grpc::CallbackServerContext* ctx,
      const rpc::RemovePlacementGroupRequest* req,
      rpc::RemovePlacementGroupReply* reply) override {
    return Audited(
        ctx, {"RemovePlacementGroup", Role::kSubmitter}, req, reply,
        [](const auto& r, const auto&, const Identity&) {
          return "placement group " + HexEncode(r.pg_id());
        },
        [s = server_](const auto& r, auto* p, Done d, const Identity& who) {
          s->HandleRemovePlacementGroup(r, p, std::move(d), who);
        });
  }
  // KV writes: see internal::KvTarget.
  grpc::ServerUnaryReactor* KvPut(grpc::CallbackServerContext* ctx,
                                  const rpc::KvPutRequest* req,
                                  rpc::KvPutReply* reply) override {
    return Audited(ctx, {"KvPut", Role::kSubmitter}, req, reply,
                   internal::KvTarget("ServeDeploy"),
                   internal::Plain(&GcsServer::HandleKvPut));
  }
  grpc::ServerUnaryReactor* KvDel(grpc::CallbackServerContext* ctx,
                                  const rpc::KvDelRequest* req,
                                  rpc::KvDelReply* reply) override {
    return Audited(ctx, {"KvDel", Role::kSubmitter}, req, reply,
                   internal::KvTarget("ServeDelete"),
                   internal::Plain(&GcsServer::HandleKvDel));
  }

  // Who the caller's token says it is; a person's token gets a credential
  // (roles.h) that every node checks, and the cluster token's hash.
  grpc::ServerUnaryReactor* Authenticate(
      grpc::CallbackServerContext* ctx, const rpc::AuthenticateRequest*,
      rpc::AuthenticateReply* reply) override {
    return rpc::Serve(
        ctx, {"Authenticate", Role::kViewer},
        [&](grpc::ServerUnaryReactor* reactor, const rpc::Caller& caller) {
          reply->set_name(caller.who.name);
          reply->set_role(RoleName(caller.who.role));
          if (!caller.who.cluster()) {
            std::string cluster = rpc::ClusterToken();
            reply->set_credential(
                MintCredential(cluster, caller.who, caller.who.token_id));
            reply->set_cluster_hash(HashToken(cluster));
          }
          reactor->Finish(grpc::Status::OK);
        });
  }
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const rpc::CreateTokenRequest* req,
                                        rpc::CreateTokenReply* reply) override {
    return Audited(
        ctx, {"CreateToken", Role::kAdmin}, req, reply,
        [](const auto& r, const auto& p, const Identity&) {
          return "token " +
                 (p.info().name().empty() ? r.name() : p.info().name()) + " (" +
                 r.role() + ")";
        },
        [s = server_](const auto& r, auto* p, Done d, const Identity& who) {
          auto role = ParseRole(r.role());
          if (!role.ok()) return d(role.status());
          s->tokens().Create(r.name(), *role, who.name,
                             [p, d](absl::StatusOr<TokenTable::Made> made) {
                               if (made.ok()) {
                                 p->set_token(made->token);
                                 *p->mutable_info() = made->info;
                               }
                               d(made.status());
                             });
        });
  }
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const rpc::ListTokensRequest* req,
                                       rpc::ListTokensReply* reply) override {
    return rpc::PostToLoop(ctx, server_->loop(), {"ListTokens", Role::kAdmin},
                           req, reply,
                           [s = server_](const auto&, auto* p, Done d) {
                             s->tokens().List(p);
                             d(absl::OkStatus());
                           });
  }
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const rpc::RevokeTokenRequest* req,
                                        rpc::RevokeTokenReply* reply) override {
    return Audited(
        ctx, {"RevokeToken", Role::kAdmin}, req, reply,
        [](const auto& r, const auto&, const Identity&) {
          return "token " + r.name();
        },
        [s = server_](const auto& r, auto*, Done d, const Identity&) {
          s->tokens().Revoke(r.name(), std::move(d));
        });
  }
  // The audit log: file IO, off the loop.
  grpc::ServerUnaryReactor* ReadAudit(grpc::CallbackServerContext* ctx,
                                      const rpc::ReadAuditRequest* req,
                                      rpc::ReadAuditReply* reply) override {
    return rpc::Serve(ctx, {"ReadAudit", Role::kAdmin},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        int max =
                            req->max() > 0 ? std::min(req->max(), 10000) : 1000;
                        AuditLog::Page page = server_->audit().Read(
                            req->after_seq(), req->since_ms(), max);
                        for (auto& line : page.lines)
                          reply->add_lines(std::move(line));
                        reply->set_last_seq(page.last_seq);
                        reactor->Finish(grpc::Status::OK);
                      });
  }

  // Task events and the state API over them: on gRPC's thread, under the
  // store's own lock, never on the head's loop.
  grpc::ServerUnaryReactor* ReportTaskEvents(
      grpc::CallbackServerContext* ctx, const rpc::ReportTaskEventsRequest* req,
      rpc::ReportTaskEventsReply*) override {
    return rpc::Serve(
        ctx, {"ReportTaskEvents", Role::kSubmitter},
        [&](grpc::ServerUnaryReactor* reactor) {
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
    return rpc::Serve(ctx, {"ListTasks", Role::kViewer},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        absl::Status s = server_->tasks().List(*req, reply);
                        if (s.ok() && req->transfers())
                          server_->transfers().List(*req, reply);
                        reactor->Finish(rpc::ToGrpc(s));
                      });
  }
  grpc::ServerUnaryReactor* SummarizeTasks(
      grpc::CallbackServerContext* ctx, const rpc::SummarizeTasksRequest* req,
      rpc::SummarizeTasksReply* reply) override {
    return rpc::Serve(ctx, {"SummarizeTasks", Role::kViewer},
                      [&](grpc::ServerUnaryReactor* reactor) {
                        server_->tasks().Summarize(*req, reply);
                        reactor->Finish(grpc::Status::OK);
                      });
  }

 private:
  // Runs handle(req, reply, done, who) on the head's loop for a call
  // admitted for `need`; when it is done, target(req, reply, who) names
  // what the call acted on for the audit log ("": not logged).
  template <typename Req, typename Reply, typename Target, typename Handle>
  grpc::ServerUnaryReactor* Audited(grpc::CallbackServerContext* ctx,
                                    const rpc::Need& need, const Req* req,
                                    Reply* reply, Target target,
                                    Handle handle) {
    return rpc::Serve(
        ctx, need,
        [&](grpc::ServerUnaryReactor* reactor, const rpc::Caller& caller) {
          GcsServer* s = server_;
          s->loop().Post([s, req, reply, reactor, caller, action = need.method,
                          target, handle]() mutable {
            Done done = [s, req, reply, reactor, caller, action,
                         target](absl::Status status) {
              auto what = target(*req, *reply, caller.who);
              if constexpr (std::is_same_v<decltype(what),
                                           internal::AuditWhat>) {
                if (!what.target.empty()) {
                  s->audit().Append(caller.who, caller.peer,
                                    what.action.empty() ? action : what.action,
                                    what.target, status);
                }
              } else if (!what.empty()) {
                s->audit().Append(caller.who, caller.peer, action, what,
                                  status);
              }
              reactor->Finish(rpc::ToGrpc(status));
            };
            if constexpr (std::is_invocable_v<Handle, GcsServer*, const Req&,
                                              Reply*, Done, const Identity&>) {
              handle(s, *req, reply, std::move(done), caller.who);
            } else {
              handle(*req, reply, std::move(done), caller.who);
            }
          });
        });
  }

  GcsServer* server_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_GCS_SERVICE_H_

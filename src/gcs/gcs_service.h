// src/gcs/gcs_service.h
//
// GcsService: the gRPC edge of the head. Most methods post their request to
// the GcsServer's event loop and finish when the handler is done; the task
// store, the audit log and identities answer in place. It serves from a
// completion queue of its own (async_server.h), not gRPC's callback API, so
// that an idle head sleeps.
//
//   GcsService service(&server);
//   int port = 0;
//   absl::Status s = service.Start("0.0.0.0", 6379, &port);
//   service.Shutdown(absl::Milliseconds(300));
#ifndef LOOM_GCS_GCS_SERVICE_H_
#define LOOM_GCS_GCS_SERVICE_H_

#include <algorithm>
#include <string>
#include <type_traits>

#include "proto/gcs.grpc.pb.h"
#include "src/common/async_server.h"
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

class GcsService {
 public:
  explicit GcsService(GcsServer* server) : server_(server) {
    using S = rpc::Gcs::AsyncService;
    // Each method names the least role that may call it (roles.h): kViewer
    // reads, kSubmitter runs jobs, kAdmin is for the cluster's own processes
    // (nodes, raylets) and administrators.
    GcsServer* s = server_;
#define LOOM_GCS_METHOD(Name, role, ...)                             \
  rpc_.UnaryOnLoop(                                                  \
      &service_, &S::Request##Name, {#Name, Role::role}, &s->loop(), \
      [s](const auto& r, auto* p, rpc::Done d) {                     \
        s->Handle##Name(r, p, std::move(d));                         \
      },                                                             \
      ##__VA_ARGS__)
    // Every raylet's, every few hundred milliseconds.
    LOOM_GCS_METHOD(Heartbeat, kAdmin, {.waiting = 4});
    LOOM_GCS_METHOD(ScheduleLease, kSubmitter, {.waiting = 4});
    LOOM_GCS_METHOD(GetClusterStatus, kViewer);
    LOOM_GCS_METHOD(KvGet, kViewer, {.waiting = 4});
    LOOM_GCS_METHOD(KvKeys, kViewer);
    LOOM_GCS_METHOD(MarkJobFinished, kSubmitter);
    LOOM_GCS_METHOD(GetJobs, kViewer);
    LOOM_GCS_METHOD(ReportWorkerDeath, kAdmin);
    LOOM_GCS_METHOD(UpdateObjectLocations, kSubmitter, {.waiting = 4});
    LOOM_GCS_METHOD(GetObjectLocations, kViewer, {.waiting = 4});
    LOOM_GCS_METHOD(PollEvents, kViewer);
    LOOM_GCS_METHOD(PublishLogs, kSubmitter);
    LOOM_GCS_METHOD(PollLogs, kViewer);
    LOOM_GCS_METHOD(FlushLogs, kSubmitter);
    LOOM_GCS_METHOD(RegisterActor, kSubmitter, {.waiting = 4});
    LOOM_GCS_METHOD(GetActor, kViewer, {.waiting = 4});
    LOOM_GCS_METHOD(ListActors, kViewer);
    LOOM_GCS_METHOD(GetPlacementGroup, kViewer);
    LOOM_GCS_METHOD(ListPlacementGroups, kViewer);
    LOOM_GCS_METHOD(ListLogs, kViewer);
    LOOM_GCS_METHOD(ReadLog, kViewer);
    LOOM_GCS_METHOD(ReportEntrypointExit, kAdmin);
#undef LOOM_GCS_METHOD
    rpc_.UnaryOnLoop(&service_, &S::RequestListTokens,
                     {"ListTokens", Role::kAdmin}, &s->loop(),
                     [s](const rpc::ListTokensRequest&, rpc::ListTokensReply* p,
                         rpc::Done d) {
                       s->tokens().List(p);
                       d(absl::OkStatus());
                     });

    // Audited: each call goes to the audit log with what it acted on.
    Audited(
        &S::RequestRegisterNode, {"RegisterNode", Role::kAdmin},
        [](const auto& r, const auto&, const Identity&) {
          return "node " + HexEncode(r.node().node_id()) + " at " +
                 r.node().host();
        },
        internal::Plain(&GcsServer::HandleRegisterNode));
    Audited(
        &S::RequestUnregisterNode, {"UnregisterNode", Role::kAdmin},
        [](const auto& r, const auto&, const Identity&) {
          return "node " + HexEncode(r.node_id());
        },
        internal::Plain(&GcsServer::HandleUnregisterNode));
    // Audited by the handler: only a job started (or refused) is logged.
    rpc_.UnaryOnLoop(
        &service_, &S::RequestAddJob, {"AddJob", Role::kSubmitter}, &s->loop(),
        [s](const rpc::AddJobRequest& r, rpc::AddJobReply* p, rpc::Done d,
            const rpc::Incoming& in) {
          s->HandleAddJob(r, p, std::move(d), in.caller.who, in.caller.peer);
        });
    Audited(
        &S::RequestKillActor, {"KillActor", Role::kSubmitter},
        [](const auto& r, const auto&, const Identity&) {
          return "actor " + HexEncode(r.actor_id());
        },
        [](GcsServer* s, const auto& r, auto* p, rpc::Done d,
           const Identity& who) {
          s->HandleKillActor(r, p, std::move(d), who);
        });
    Audited(
        &S::RequestCreatePlacementGroup,
        {"CreatePlacementGroup", Role::kSubmitter},
        [](const auto&, const auto& p, const Identity&) {
          return "placement group " + HexEncode(p.pg_id());
        },
        internal::Plain(&GcsServer::HandleCreatePlacementGroup));
    Audited(
        &S::RequestRemovePlacementGroup,
        {"RemovePlacementGroup", Role::kSubmitter},
        [](const auto& r, const auto&, const Identity&) {
          return "placement group " + HexEncode(r.pg_id());
        },
        [](GcsServer* s, const auto& r, auto* p, rpc::Done d,
           const Identity& who) {
          s->HandleRemovePlacementGroup(r, p, std::move(d), who);
        });
    // KV writes: see internal::KvTarget.
    Audited(&S::RequestKvPut, {"KvPut", Role::kSubmitter},
            internal::KvTarget("ServeDeploy"),
            internal::Plain(&GcsServer::HandleKvPut));
    Audited(&S::RequestKvDel, {"KvDel", Role::kSubmitter},
            internal::KvTarget("ServeDelete"),
            internal::Plain(&GcsServer::HandleKvDel));
    Audited(
        &S::RequestCreateToken, {"CreateToken", Role::kAdmin},
        [](const auto& r, const auto& p, const Identity&) {
          return "token " +
                 (p.info().name().empty() ? r.name() : p.info().name()) + " (" +
                 r.role() + ")";
        },
        [](GcsServer* s, const auto& r, auto* p, rpc::Done d,
           const Identity& who) {
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
    Audited(
        &S::RequestRevokeToken, {"RevokeToken", Role::kAdmin},
        [](const auto& r, const auto&, const Identity&) {
          return "token " + r.name();
        },
        [](GcsServer* s, const auto& r, auto*, rpc::Done d, const Identity&) {
          s->tokens().Revoke(r.name(), std::move(d));
        });

    // In place, on the serve threads, never on the head's loop.
    // Who the caller's token says it is; a person's token gets a credential
    // (roles.h) that every node checks, and the cluster token's hash.
    rpc_.Unary(
        &service_, &S::RequestAuthenticate, {"Authenticate", Role::kViewer},
        [](const rpc::AuthenticateRequest&, rpc::AuthenticateReply* p,
           rpc::Done d, const rpc::Incoming& in) {
          const Identity& who = in.caller.who;
          p->set_name(who.name);
          p->set_role(RoleName(who.role));
          if (!who.cluster()) {
            std::string cluster = rpc::ClusterToken();
            p->set_credential(MintCredential(cluster, who, who.token_id));
            p->set_cluster_hash(HashToken(cluster));
          }
          d(absl::OkStatus());
        });
    // The audit log: file IO.
    rpc_.Unary(&service_, &S::RequestReadAudit, {"ReadAudit", Role::kAdmin},
               [s](const rpc::ReadAuditRequest& r, rpc::ReadAuditReply* p,
                   rpc::Done d) {
                 int max = r.max() > 0 ? std::min(r.max(), 10000) : 1000;
                 AuditLog::Page page =
                     s->audit().Read(r.after_seq(), r.since_ms(), max);
                 for (auto& line : page.lines) p->add_lines(std::move(line));
                 p->set_last_seq(page.last_seq);
                 d(absl::OkStatus());
               });
    // Task events and the state API over them, under the store's own lock.
    rpc_.Unary(&service_, &S::RequestReportTaskEvents,
               {"ReportTaskEvents", Role::kSubmitter},
               [s](const rpc::ReportTaskEventsRequest& r,
                   rpc::ReportTaskEventsReply*, rpc::Done d) {
                 s->tasks().Report(r);
                 if (r.transfers_size() > 0 || r.dropped_transfers() > 0) {
                   s->transfers().Report(r);
                 }
                 d(absl::OkStatus());
               },
               {.waiting = 4});
    rpc_.Unary(&service_, &S::RequestListTasks, {"ListTasks", Role::kViewer},
               [s](const rpc::ListTasksRequest& r, rpc::ListTasksReply* p,
                   rpc::Done d) {
                 absl::Status status = s->tasks().List(r, p);
                 if (status.ok() && r.transfers()) s->transfers().List(r, p);
                 d(status);
               });
    rpc_.Unary(&service_, &S::RequestSummarizeTasks,
               {"SummarizeTasks", Role::kViewer},
               [s](const rpc::SummarizeTasksRequest& r,
                   rpc::SummarizeTasksReply* p, rpc::Done d) {
                 s->tasks().Summarize(r, p);
                 d(absl::OkStatus());
               });
  }

  // Listens on host:port (0: a free one, written to *bound_port), and on
  // 127.0.0.1 too for a host that is neither loopback nor 0.0.0.0.
  absl::Status Start(const std::string& host, int port, int* bound_port) {
    return rpc_.Start(host, port, &service_, bound_port,
                      /*also_loopback=*/true, kServeThreads);
  }
  void Shutdown(absl::Duration grace) { rpc_.Shutdown(grace); }

 private:
  // The methods answered in place (a page of tasks, of the audit log) may
  // take a while: a second thread keeps heartbeats flowing meanwhile.
  static constexpr int kServeThreads = 2;

  // Runs handle(server, request, reply, done, who) on the head's loop;
  // when it is done, target(req, reply, who) names what the call acted on
  // for the audit log ("": not logged).
  template <typename Base, typename Req, typename Reply, typename Target,
            typename Handle>
  void Audited(rpc::RequestUnary<Base, Req, Reply> request, rpc::Need need,
               Target target, Handle handle) {
    GcsServer* s = server_;
    rpc_.UnaryOnLoop(
        &service_, request, need, &s->loop(),
        [s, action = need.method, target, handle](
            const Req& r, Reply* p, rpc::Done d, const rpc::Incoming& in) {
          rpc::Done done = [s, req = &r, p, d = std::move(d),
                            caller = in.caller, action,
                            target](absl::Status status) {
            auto what = target(*req, *p, caller.who);
            if constexpr (std::is_same_v<decltype(what), internal::AuditWhat>) {
              if (!what.target.empty()) {
                s->audit().Append(caller.who, caller.peer,
                                  what.action.empty() ? action : what.action,
                                  what.target, status);
              }
            } else if (!what.empty()) {
              s->audit().Append(caller.who, caller.peer, action, what, status);
            }
            d(status);
          };
          handle(s, r, p, std::move(done), in.caller.who);
        });
  }

  GcsServer* server_;
  rpc::Gcs::AsyncService service_;
  rpc::AsyncServer rpc_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_GCS_SERVICE_H_

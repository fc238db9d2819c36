// Cluster tests: the cluster token. Every method of every service — head,
// raylet, worker — called without the token or with a wrong one gets
// UNAUTHENTICATED, is counted in loom_rpc_unauthenticated_total, and changes
// nothing; the same call with the token goes through; /metrics stays
// readable without one. People's tokens get what their roles allow, and
// nothing more, on every daemon.
#include "src/common/auth.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "object_store/store_client.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "runtime/local_cluster.h"
#include "src/common/http_client.h"
#include "src/common/ids.h"
#include "src/common/roles.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/probe.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

int MetricsPort(const std::string& ready_file) {
  auto ready = ReadFileToString(ready_file);
  if (!ready.ok()) return 0;
  std::vector<std::string> parts = absl::StrSplit(*ready, ' ');
  return parts.size() == 2 ? std::atoi(parts[1].c_str()) : 0;
}

double Refused(int metrics_port) {
  auto text = HttpGet(metrics_port, "/metrics");
  return text.ok() ? MetricValue(*text, "loom_rpc_unauthenticated_total") : -1;
}

struct LeasedWorker {
  std::string job_id, lease_id, address;
};

// A worker to call: a job added and a worker leased for it, as a driver
// would, with this process's (the cluster's) token.
absl::StatusOr<LeasedWorker> LeaseWorker(rpc::Gcs::Stub* gcs,
                                         rpc::Raylet::Stub* raylet) {
  rpc::AddJobRequest add;
  add.set_driver_pid(getpid());
  rpc::AddJobReply job;
  rpc::Context add_ctx;
  if (auto s = gcs->AddJob(&add_ctx, add, &job); !s.ok()) {
    return rpc::ToAbsl(s);
  }
  rpc::LeaseRequest req;
  req.set_job_id(job.job_id());
  (*req.mutable_resources()->mutable_quantities())["CPU"] = 1;
  req.add_code_search_path(TestLib());
  rpc::LeaseReply lease;
  rpc::Context lease_ctx;
  if (auto s = raylet->RequestWorkerLease(&lease_ctx, req, &lease); !s.ok()) {
    return rpc::ToAbsl(s);
  }
  if (lease.outcome() != rpc::LeaseReply::GRANTED) {
    return absl::UnavailableError("no lease: " + lease.message());
  }
  return LeasedWorker{
      job.job_id(), lease.lease_id(),
      absl::StrCat(lease.worker().host(), ":", lease.worker().port())};
}

TEST(Auth, EveryMethodOfEveryDaemonRefusesCallsWithoutTheToken) {
  TempRoot root;
  ClusterOptions options;
  options.session_root = root.path();
  options.num_cpus = 1;
  auto cluster = StartCluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const std::string token = cluster->auth_token;
  ASSERT_EQ(token.size(), 64u);
  auto on_disk =
      ReadTokenFile(cluster->session_dir + "/" + std::string(kAuthTokenFile));
  ASSERT_TRUE(on_disk.ok()) << on_disk.status();
  EXPECT_EQ(*on_disk, token);

  auto gcs = rpc::Gcs::NewStub(rpc::MakeChannel(cluster->gcs_address));
  auto raylet = rpc::Raylet::NewStub(rpc::MakeChannel(cluster->raylet_address));
  auto leased = LeaseWorker(gcs.get(), raylet.get());
  ASSERT_TRUE(leased.ok()) << leased.status();
  const std::string& worker = leased->address;

  std::string wrong = token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';  // differs in one character
  struct Daemon {
    std::string address, service;
    int metrics_port;  // 0: none (workers serve no metrics)
  };
  std::vector<Daemon> daemons = {
      {cluster->gcs_address, "loom.rpc.Gcs",
       MetricsPort(cluster->session_dir + "/gcs.ready")},
      {cluster->raylet_address, "loom.rpc.Raylet",
       RayletMetricsPort(cluster->session_dir)},
      {worker, "loom.rpc.CoreWorker", 0}};
  for (const Daemon& d : daemons) {
    std::vector<std::string> methods = ServiceMethods(d.service);
    ASSERT_GT(methods.size(), 5u) << d.service;
    double before = d.metrics_port ? Refused(d.metrics_port) : 0;
    for (const std::string& m : methods) {
      for (const std::string& t : {std::string(), wrong}) {
        grpc::Status s = ProbeCall(d.address, m, t);
        EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << m << (t.empty() ? " without a token" : " with a wrong token")
            << ": " << s.error_message();
      }
    }
    if (d.metrics_port) {
      // Read without a token: scraping stays open.
      EXPECT_EQ(Refused(d.metrics_port) - before, 2.0 * methods.size())
          << d.service;
    }
  }
  // The same raw call with the token goes through: the refusals above were
  // for the token, not the call.
  EXPECT_TRUE(
      ProbeCall(cluster->gcs_address, "/loom.rpc.Gcs/GetClusterStatus", token)
          .ok());

  // Nothing changed: one node, alive; the job is not finished; the leased
  // worker still runs a task for its lease holder.
  rpc::GetClusterStatusReply status;
  {
    rpc::Context ctx;
    ASSERT_TRUE(
        gcs->GetClusterStatus(&ctx, rpc::GetClusterStatusRequest(), &status)
            .ok());
  }
  EXPECT_EQ(CountNodes(status, true), 1);
  EXPECT_EQ(CountNodes(status, false), 0);
  rpc::GetJobsReply jobs;
  {
    rpc::Context ctx;
    ASSERT_TRUE(gcs->GetJobs(&ctx, rpc::GetJobsRequest(), &jobs).ok());
  }
  ASSERT_EQ(jobs.jobs_size(), 1);
  EXPECT_EQ(jobs.jobs(0).state(), rpc::JobInfo::RUNNING);
  auto worker_stub = rpc::CoreWorker::NewStub(rpc::MakeChannel(worker));
  rpc::PushTaskRequest echo;
  echo.mutable_spec()->set_task_id(TaskId::FromRandom().Binary());
  echo.mutable_spec()->set_job_id(leased->job_id);
  echo.mutable_spec()->set_function_name("Echo");
  echo.mutable_spec()->add_args()->set_value(Serialize(41));
  echo.set_lease_id(leased->lease_id);  // a worker runs tasks under its lease
  rpc::PushTaskReply reply;
  rpc::Context ctx;
  grpc::Status pushed = worker_stub->PushTask(&ctx, echo, &reply);
  ASSERT_TRUE(pushed.ok()) << pushed.error_message();
  ASSERT_TRUE(reply.ok()) << reply.error().message();
  EXPECT_EQ(Deserialize<int>(reply.value()), 41);
  StopCluster(*cluster);
}

// A person's token made at the head (CreateToken, with the cluster token).
std::string MakeToken(rpc::Gcs::Stub* gcs, const std::string& name,
                      const std::string& role) {
  rpc::CreateTokenRequest req;
  req.set_name(name);
  req.set_role(role);
  rpc::CreateTokenReply reply;
  rpc::Context ctx;
  grpc::Status s = gcs->CreateToken(&ctx, req, &reply);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return reply.token();
}

// "/loom.rpc.Gcs/GetJobs" -> "GetJobs".
std::string Short(const std::string& method) {
  return method.substr(method.rfind('/') + 1);
}

// Every method of every daemon, called as a viewer and as a submitter:
// refused (PERMISSION_DENIED, naming the role and the method) exactly where
// the role has no right. The head takes the people's tokens themselves;
// raylets and workers take the credentials the head trades them for.
TEST(Auth, EachRoleIsRefusedOutsideItsRightsOnEveryDaemon) {
  TempRoot root;
  ClusterOptions options;
  options.session_root = root.path();
  options.num_cpus = 1;
  auto cluster = StartCluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto gcs = rpc::Gcs::NewStub(rpc::MakeChannel(cluster->gcs_address));
  auto raylet = rpc::Raylet::NewStub(rpc::MakeChannel(cluster->raylet_address));
  std::string viewer = MakeToken(gcs.get(), "vera", "viewer");
  std::string submitter = MakeToken(gcs.get(), "sam", "submitter");
  auto leased = LeaseWorker(gcs.get(), raylet.get());
  ASSERT_TRUE(leased.ok()) << leased.status();
  const std::string& worker = leased->address;

  // What each role may call beyond the one below it.
  const std::set<std::string> reads = {"GetClusterStatus",
                                       "KvGet",
                                       "KvKeys",
                                       "GetJobs",
                                       "GetObjectLocations",
                                       "PollEvents",
                                       "PollLogs",
                                       "GetActor",
                                       "ListActors",
                                       "GetPlacementGroup",
                                       "ListPlacementGroups",
                                       "ListLogs",
                                       "ReadLog",
                                       "ListTasks",
                                       "SummarizeTasks",
                                       "Authenticate",
                                       "GetNodeStats",
                                       "ListLogFiles",
                                       "ReadLogFile",
                                       "GetReferences"};
  const std::set<std::string> admin_only = {"RegisterNode",
                                            "Heartbeat",
                                            "UnregisterNode",
                                            "ReportWorkerDeath",
                                            "ReportEntrypointExit",
                                            "CreateToken",
                                            "ListTokens",
                                            "RevokeToken",
                                            "ReadAudit",
                                            "RegisterWorker",
                                            "PrepareBundle",
                                            "CommitBundle",
                                            "ReleaseBundle",
                                            "StartEntrypoint",
                                            "StopEntrypoint",
                                            "AssignJob",
                                            "EndLease",
                                            "Exit"};
  auto credential = [&](const std::string& token, const std::string& name,
                        Role role) {
    return MintCredential(cluster->auth_token, Identity{name, role, ""},
                          TokenId(token));
  };
  struct Daemon {
    std::string address, service;
    bool head;
  };
  for (const Daemon& d :
       {Daemon{cluster->gcs_address, "loom.rpc.Gcs", true},
        Daemon{cluster->raylet_address, "loom.rpc.Raylet", false},
        Daemon{worker, "loom.rpc.CoreWorker", false}}) {
    std::string as_viewer =
        d.head ? viewer : credential(viewer, "vera", Role::kViewer);
    std::string as_submitter =
        d.head ? submitter : credential(submitter, "sam", Role::kSubmitter);
    for (const std::string& m : ServiceMethods(d.service)) {
      std::string name = Short(m);
      grpc::Status v = ProbeCall(d.address, m, as_viewer);
      if (reads.count(name)) {
        EXPECT_NE(v.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << name << " refused a viewer: " << v.error_message();
        EXPECT_NE(v.error_code(), grpc::StatusCode::UNAUTHENTICATED) << name;
      } else {
        EXPECT_EQ(v.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << name << " let a viewer in";
        EXPECT_NE(v.error_message().find("role viewer, which may not " + name),
                  std::string::npos)
            << v.error_message();
      }
      if (admin_only.count(name)) {
        grpc::Status s = ProbeCall(d.address, m, as_submitter);
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << name << " let a submitter in";
      }
    }
  }
  // A credential for a token the head never made (or revoked) is refused
  // at the head; one signed with another key, everywhere.
  std::string unknown = credential(NewClusterToken(), "eve", Role::kAdmin);
  EXPECT_EQ(ProbeCall(cluster->gcs_address, "/loom.rpc.Gcs/GetJobs", unknown)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  std::string forged = MintCredential(
      NewClusterToken(), Identity{"eve", Role::kAdmin, ""}, TokenId(viewer));
  EXPECT_EQ(ProbeCall(cluster->raylet_address, "/loom.rpc.Raylet/GetNodeStats",
                      forged)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  StopCluster(*cluster);
}

TEST(Auth, ADriverWithAWrongTokenIsToldWhatToDo) {
  TempRoot root, elsewhere;
  ClusterOptions options;
  options.session_root = root.path();
  options.num_cpus = 1;
  auto cluster = StartCluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  // Another machine's driver: no session of this cluster, a wrong token.
  setenv(kAuthTokenEnv, NewClusterToken().c_str(), 1);
  InitOptions init;
  init.address = cluster->gcs_address;
  init.session_root = elsewhere.path();
  try {
    loom::Init(init);
    ADD_FAILURE() << "Init with a wrong token succeeded";
    loom::Shutdown();
  } catch (const loom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("refused this process's cluster "
                                         "token"),
              std::string::npos)
        << e.what();
  }
  unsetenv(kAuthTokenEnv);
  StopCluster(*cluster);
}

// A core worker of the test's own that records the token each
// GetReferences call carries.
class ListeningOwner : public rpc::CoreWorker::CallbackService {
 public:
  grpc::ServerUnaryReactor* GetReferences(grpc::CallbackServerContext* ctx,
                                          const rpc::GetReferencesRequest*,
                                          rpc::GetReferencesReply*) override {
    {
      absl::MutexLock lock(&mu_);
      auto it = ctx->client_metadata().find(rpc::kTokenMetadata);
      sent_.push_back(it == ctx->client_metadata().end()
                          ? ""
                          : std::string(it->second.data(), it->second.size()));
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::vector<std::string> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> sent_ ABSL_GUARDED_BY(mu_);
};

// An object's owner is whatever its creator wrote in the store: the head
// asks it for references (the dashboard's objects page) with a viewer's
// credential, never with the cluster token.
TEST(Auth, AnObjectsOwnerIsAskedWithAViewersCredentialNotTheToken) {
  TempRoot root;
  ClusterOptions options;
  options.session_root = root.path();
  options.num_cpus = 1;
  options.object_store_memory = 64 << 20;
  options.dashboard_port = 0;
  auto cluster = StartCluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ListeningOwner owner;
  int port = 0;
  auto server = rpc::StartServer("127.0.0.1", 0, {&owner}, &port);
  ASSERT_TRUE(server.ok()) << server.status();
  auto writer =
      ObjectStoreClient::Connect(cluster->session_dir + "/sockets/store");
  ASSERT_TRUE(writer.ok()) << writer.status();
  (*writer)->set_owner(absl::StrCat("127.0.0.1:", port));
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 1);
  ASSERT_TRUE((*writer)->Create(id, 1 << 20, 0).ok());
  ASSERT_TRUE((*writer)->Seal(id).ok());

  auto address = ReadFileToString(cluster->session_dir + "/dashboard_address");
  ASSERT_TRUE(address.ok()) << address.status();
  std::vector<std::string> host_port = absl::StrSplit(*address, ':');
  ASSERT_EQ(host_port.size(), 2u) << *address;
  auto page = HttpCall({.host = host_port[0],
                        .port = std::atoi(host_port[1].c_str()),
                        .path = "/api/dashboard/objects",
                        .token = cluster->auth_token});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->status, 200) << page->body;
  EXPECT_NE(page->body.find(id.Hex()), std::string::npos) << page->body;
  std::vector<std::string> sent = owner.sent();
  ASSERT_EQ(sent.size(), 1u) << page->body;
  EXPECT_NE(sent[0], cluster->auth_token);
  std::optional<Identity> who = ReadCredential(cluster->auth_token, sent[0]);
  ASSERT_TRUE(who.has_value()) << sent[0];
  EXPECT_EQ(who->role, Role::kViewer);
  (*server)->Shutdown();
  StopCluster(*cluster);
}

TEST(Auth, NoAuthIsForLoopbackOnly) {
  TempRoot root;
  ClusterOptions options;
  options.session_root = root.path();
  options.num_cpus = 1;
  options.no_auth = true;
  options.bind_address = "0.0.0.0";
  auto refused = StartCluster(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--no-auth is only for loopback"),
            std::string::npos)
      << refused.status();
  // On loopback it runs, and takes calls with no token at all.
  options.bind_address.clear();
  auto cluster = StartCluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  EXPECT_TRUE(cluster->auth_token.empty());
  EXPECT_TRUE(
      ProbeCall(cluster->gcs_address, "/loom.rpc.Gcs/GetClusterStatus", "")
          .ok());
  StopCluster(*cluster);
}

}  // namespace
}  // namespace loom::test

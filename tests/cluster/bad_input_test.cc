// Cluster tests: every RPC method called with empty, oversized and unknown
// IDs, bad resources and absurd sizes is refused with the status code that
// names what is wrong (INVALID_ARGUMENT for a malformed request, NOT_FOUND
// for a well-formed one naming nothing the daemon knows, ...), and the
// daemons answer a valid call after each case.
#include <cmath>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "runtime/local_cluster.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"
#include "tests/cluster/bad_call.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

constexpr Code kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
constexpr Code kNotFound = grpc::StatusCode::NOT_FOUND;

rpc::Resources Res(const std::string& name, double qty) {
  rpc::Resources r;
  (*r.mutable_quantities())[name] = qty;
  return r;
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.session_root = root_.path();
    options.num_cpus = 2;
    auto c = StartCluster(options);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = *c;
    gcs_ = rpc::Gcs::NewStub(rpc::MakeChannel(cluster_.gcs_address));
    raylet_ = rpc::Raylet::NewStub(rpc::MakeChannel(cluster_.raylet_address));
  }
  void TearDown() override { StopCluster(cluster_); }

  // Sends each call and expects its code; after each, the daemons must still
  // answer, so that a crash or a wedged loop shows at the case that caused
  // it. Stops at the first case after which a daemon does not answer.
  void ExpectRefused(const std::vector<BadCall>& calls) {
    for (const BadCall& call : calls) {
      grpc::Status s = Invoke(call.send);
      EXPECT_EQ(CodeName(s.error_code()), CodeName(call.want))
          << call.name << ": " << s.error_message();
      if (!ExpectServing(call.name)) return;
    }
  }

  // Whether the head and the raylet each answer a cheap valid call.
  bool ExpectServing(const std::string& after) {
    rpc::GetClusterStatusReply status;
    grpc::Status head = Invoke([&](auto* c) {
      return gcs_->GetClusterStatus(c, rpc::GetClusterStatusRequest(), &status);
    });
    EXPECT_TRUE(head.ok()) << "after " << after
                           << ", the head: " << head.error_message();
    EXPECT_EQ(CountNodes(status, true), 1) << "after " << after;
    rpc::GetNodeStatsReply stats;
    grpc::Status raylet = Invoke([&](auto* c) {
      return raylet_->GetNodeStats(c, rpc::GetNodeStatsRequest(), &stats);
    });
    EXPECT_TRUE(raylet.ok())
        << "after " << after << ", the raylet: " << raylet.error_message();
    return head.ok() && raylet.ok();
  }

  TempRoot root_;
  ClusterHandle cluster_;
  std::unique_ptr<rpc::Gcs::Stub> gcs_;
  std::unique_ptr<rpc::Raylet::Stub> raylet_;
};

TEST_F(BadInputTest, GcsRefusesBadRequests) {
  using G = rpc::Gcs::Stub;
  G* gcs = gcs_.get();
  const std::string good_node = NodeId::FromRandom().Binary();
  auto node = [](const std::string& id, rpc::Resources total, int port) {
    rpc::RegisterNodeRequest req;
    req.mutable_node()->set_node_id(id);
    req.mutable_node()->set_host("127.0.0.1");
    req.mutable_node()->set_raylet_port(port);
    *req.mutable_node()->mutable_total() = total;
    return req;
  };
  auto heartbeat = [](const std::string& id) {
    rpc::HeartbeatRequest req;
    req.set_node_id(id);
    return req;
  };
  auto unregister = [](const std::string& id) {
    rpc::UnregisterNodeRequest req;
    req.set_node_id(id);
    return req;
  };
  auto kv_put = [](const std::string& key, size_t value_bytes) {
    rpc::KvPutRequest req;
    req.set_key(key);
    req.set_value(std::string(value_bytes, 'v'));
    return req;
  };
  auto add_job = [](int64_t pid, const std::string& node_id) {
    rpc::AddJobRequest req;
    req.set_driver_pid(pid);
    req.set_node_id(node_id);
    return req;
  };
  auto finish_job = [](const std::string& id) {
    rpc::MarkJobFinishedRequest req;
    req.set_job_id(id);
    return req;
  };
  auto worker_death = [](const std::string& worker, const std::string& job,
                         size_t address_size) {
    rpc::ReportWorkerDeathRequest req;
    req.set_worker_id(worker);
    req.set_job_id(job);
    req.set_address(std::string(address_size, '1'));
    return req;
  };
  const std::string a_worker = WorkerId::FromRandom().Binary();
  const std::string job_1 = JobId::FromInt(1).Binary();
  auto location = [&](const std::string& object_id, int64_t size) {
    rpc::UpdateObjectLocationsRequest req;
    auto* u = req.add_updates();
    u->set_object_id(object_id);
    u->set_node_id(good_node);
    u->set_size(size);
    return req;
  };
  auto poll = [](int64_t timeout_ms) {
    rpc::PollEventsRequest req;
    req.set_timeout_ms(timeout_ms);
    return req;
  };
  auto publish = [](const std::string& job, int64_t pid, size_t text_bytes,
                    int lines) {
    rpc::PublishLogsRequest req;
    rpc::LogBatch* b = req.add_batches();
    b->set_job_id(job);
    b->set_node_ip("127.0.0.1");
    for (int i = 0; i < lines; ++i) {
      rpc::LogLine* l = b->add_lines();
      l->set_pid(pid);
      l->set_text(std::string(text_bytes, 'x'));
    }
    return req;
  };
  auto poll_logs = [](const std::string& job, int64_t timeout_ms) {
    rpc::PollLogsRequest req;
    req.set_job_id(job);
    req.set_timeout_ms(timeout_ms);
    return req;
  };
  auto flush_logs = [](const std::string& job, int64_t timeout_ms) {
    rpc::FlushLogsRequest req;
    req.set_job_id(job);
    req.set_timeout_ms(timeout_ms);
    return req;
  };
  auto schedule = [](rpc::Resources r, int kind, const std::string& node) {
    rpc::ScheduleLeaseRequest req;
    *req.mutable_resources() = r;
    req.mutable_strategy()->set_kind(
        static_cast<rpc::SchedulingStrategy::Kind>(kind));
    req.mutable_strategy()->set_node_id(node);
    return req;
  };
  auto actor = [](const std::string& id, const std::string& factory,
                  int max_restarts, rpc::Resources r) {
    rpc::RegisterActorRequest req;
    req.mutable_creation()->set_actor_id(id);
    req.mutable_creation()->set_job_id(JobId::FromInt(1).Binary());
    req.mutable_creation()->set_function_name(factory);
    *req.mutable_creation()->mutable_resources() = r;
    req.set_max_restarts(max_restarts);
    return req;
  };
  auto get_actor = [](const std::string& id) {
    rpc::GetActorRequest req;
    req.set_actor_id(id);
    return req;
  };
  auto kill_actor = [](const std::string& id) {
    rpc::KillActorRequest req;
    req.set_actor_id(id);
    return req;
  };
  auto group = [](std::vector<rpc::Resources> bundles, int strategy) {
    rpc::CreatePlacementGroupRequest req;
    for (auto& b : bundles) *req.mutable_group()->add_bundles() = b;
    req.mutable_group()->set_strategy(
        static_cast<rpc::PlacementGroupInfo::Strategy>(strategy));
    return req;
  };
  auto get_group = [](const std::string& id) {
    rpc::GetPlacementGroupRequest req;
    req.set_pg_id(id);
    return req;
  };
  auto remove_group = [](const std::string& id) {
    rpc::RemovePlacementGroupRequest req;
    req.set_pg_id(id);
    return req;
  };
  const std::string new_actor = ActorId::FromRandom().Binary();
  const std::string no_pg = PlacementGroupId::FromRandom().Binary();
  const rpc::Resources cpu = Res("CPU", 1);

  ExpectRefused({
      // Nodes.
      Call("node: empty id", gcs, &G::RegisterNode, node("", cpu, 1), kInvalid),
      Call("node: 1 MiB id", gcs, &G::RegisterNode, node(kHuge, cpu, 1),
           kInvalid),
      Call("node: CPU -1", gcs, &G::RegisterNode,
           node(good_node, Res("CPU", -1), 1), kInvalid),
      Call("node: CPU NaN", gcs, &G::RegisterNode,
           node(good_node, Res("CPU", NAN), 1), kInvalid),
      Call("node: CPU 1e300", gcs, &G::RegisterNode,
           node(good_node, Res("CPU", 1e300), 1), kInvalid),
      Call("node: unnamed resource", gcs, &G::RegisterNode,
           node(good_node, Res("", 1), 1), kInvalid),
      Call("node: port 0", gcs, &G::RegisterNode, node(good_node, cpu, 0),
           kInvalid),
      Call("node: port 2^20", gcs, &G::RegisterNode,
           node(good_node, cpu, 1 << 20), kInvalid),
      Call("heartbeat: empty id", gcs, &G::Heartbeat, heartbeat(""), kInvalid),
      Call("heartbeat: 1 MiB id", gcs, &G::Heartbeat, heartbeat(kHuge),
           kInvalid),
      Call("heartbeat: unknown node", gcs, &G::Heartbeat, heartbeat(good_node),
           kNotFound),
      Call("unregister: empty id", gcs, &G::UnregisterNode, unregister(""),
           kInvalid),
      Call("unregister: 1 MiB id", gcs, &G::UnregisterNode, unregister(kHuge),
           kInvalid),
      Call("unregister: unknown node", gcs, &G::UnregisterNode,
           unregister(good_node), kNotFound),
      // The global scheduler.
      Call("schedule: CPU NaN", gcs, &G::ScheduleLease,
           schedule(Res("CPU", NAN), 0, ""), kInvalid),
      Call("schedule: strategy 99", gcs, &G::ScheduleLease,
           schedule(cpu, 99, ""), kInvalid),
      Call("schedule: affinity to a 5-byte node id", gcs, &G::ScheduleLease,
           schedule(cpu, rpc::SchedulingStrategy::NODE_AFFINITY, "short"),
           kInvalid),
      // Key-value store.
      Call("kv put: empty key", gcs, &G::KvPut, kv_put("", 0), kInvalid),
      Call("kv put: 5000-byte key", gcs, &G::KvPut,
           kv_put(std::string(5000, 'k'), 0), kInvalid),
      Call("kv put: 65 MiB value", gcs, &G::KvPut, kv_put("k", 65 << 20),
           kInvalid),
      Call("kv get: empty key", gcs, &G::KvGet, rpc::KvGetRequest(), kInvalid),
      Call("kv del: empty key", gcs, &G::KvDel, rpc::KvDelRequest(), kInvalid),
      // Jobs.
      Call("job: driver pid -1", gcs, &G::AddJob, add_job(-1, ""), kInvalid),
      Call("job: 1 MiB node id", gcs, &G::AddJob, add_job(1, kHuge), kInvalid),
      Call("finish job: empty id", gcs, &G::MarkJobFinished, finish_job(""),
           kInvalid),
      Call("finish job: 1 MiB id", gcs, &G::MarkJobFinished, finish_job(kHuge),
           kInvalid),
      Call("finish job: unknown job", gcs, &G::MarkJobFinished,
           finish_job(JobId::FromInt(999).Binary()), kNotFound),
      Call("worker death: empty worker id", gcs, &G::ReportWorkerDeath,
           worker_death("", job_1, 10), kInvalid),
      Call("worker death: 3-byte job id", gcs, &G::ReportWorkerDeath,
           worker_death(a_worker, "abc", 10), kInvalid),
      Call("worker death: 1000-byte address", gcs, &G::ReportWorkerDeath,
           worker_death(a_worker, job_1, 1000), kInvalid),
      // The object directory and events.
      Call("locations: 1 MiB object id", gcs, &G::UpdateObjectLocations,
           location(kHuge, 1), kInvalid),
      Call("locations: size -5", gcs, &G::UpdateObjectLocations,
           location(ObjectId::ForReturn(TaskId::FromRandom(), 1).Binary(), -5),
           kInvalid),
      Call("get locations: empty id", gcs, &G::GetObjectLocations,
           rpc::GetObjectLocationsRequest(), kInvalid),
      Call("poll: timeout -1", gcs, &G::PollEvents, poll(-1), kInvalid),
      Call("poll: timeout 2^40 ms", gcs, &G::PollEvents, poll(int64_t{1} << 40),
           kInvalid),
      // Worker output.
      Call("publish logs: 1-byte job id", gcs, &G::PublishLogs,
           publish("x", 1, 1, 1), kInvalid),
      Call("publish logs: pid -1", gcs, &G::PublishLogs,
           publish(JobId::FromInt(1).Binary(), -1, 1, 1), kInvalid),
      Call("publish logs: a 100 KiB line", gcs, &G::PublishLogs,
           publish(JobId::FromInt(1).Binary(), 1, 100 << 10, 1), kInvalid),
      Call("publish logs: 20000 lines in a batch", gcs, &G::PublishLogs,
           publish(JobId::FromInt(1).Binary(), 1, 1, 20000), kInvalid),
      Call("poll logs: 1 MiB job id", gcs, &G::PollLogs, poll_logs(kHuge, 0),
           kInvalid),
      Call("poll logs: a 10^9 ms wait", gcs, &G::PollLogs,
           poll_logs(JobId::FromInt(1).Binary(), 1000000000), kInvalid),
      Call("poll logs: unknown job", gcs, &G::PollLogs,
           poll_logs(JobId::FromInt(999999).Binary(), 0), kNotFound),
      Call("flush logs: empty job id", gcs, &G::FlushLogs, flush_logs("", 0),
           kInvalid),
      Call("flush logs: timeout -1", gcs, &G::FlushLogs,
           flush_logs(JobId::FromInt(1).Binary(), -1), kInvalid),
      // Actors.
      Call("actor: empty id", gcs, &G::RegisterActor,
           actor("", "MakeCounter", 0, cpu), kInvalid),
      Call("actor: 1 MiB id", gcs, &G::RegisterActor,
           actor(kHuge, "MakeCounter", 0, cpu), kInvalid),
      Call("actor: no factory named", gcs, &G::RegisterActor,
           actor(new_actor, "", 0, cpu), kInvalid),
      Call("actor: max_restarts -7", gcs, &G::RegisterActor,
           actor(new_actor, "MakeCounter", -7, cpu), kInvalid),
      Call("actor: CPU NaN", gcs, &G::RegisterActor,
           actor(new_actor, "MakeCounter", 0, Res("CPU", NAN)), kInvalid),
      Call("get actor: 1 MiB id", gcs, &G::GetActor, get_actor(kHuge),
           kInvalid),
      Call("get actor: unknown actor", gcs, &G::GetActor,
           get_actor(ActorId::FromRandom().Binary()), kNotFound),
      Call("kill actor: 1-byte id", gcs, &G::KillActor, kill_actor("x"),
           kInvalid),
      Call("kill actor: unknown actor", gcs, &G::KillActor,
           kill_actor(ActorId::FromRandom().Binary()), kNotFound),
      // Placement groups.
      Call("group: no bundles", gcs, &G::CreatePlacementGroup, group({}, 0),
           kInvalid),
      Call("group: an empty bundle", gcs, &G::CreatePlacementGroup,
           group({rpc::Resources()}, 0), kInvalid),
      Call("group: CPU -1", gcs, &G::CreatePlacementGroup,
           group({Res("CPU", -1)}, 0), kInvalid),
      Call("group: CPU NaN", gcs, &G::CreatePlacementGroup,
           group({Res("CPU", NAN)}, 0), kInvalid),
      Call("group: strategy 99", gcs, &G::CreatePlacementGroup,
           group({cpu}, 99), kInvalid),
      Call("get group: 1-byte id", gcs, &G::GetPlacementGroup, get_group("x"),
           kInvalid),
      Call("get group: 1 MiB id", gcs, &G::GetPlacementGroup, get_group(kHuge),
           kInvalid),
      Call("get group: unknown group", gcs, &G::GetPlacementGroup,
           get_group(no_pg), kNotFound),
      Call("remove group: 1-byte id", gcs, &G::RemovePlacementGroup,
           remove_group("x"), kInvalid),
      Call("remove group: 1 MiB id", gcs, &G::RemovePlacementGroup,
           remove_group(kHuge), kInvalid),
      Call("remove group: unknown group", gcs, &G::RemovePlacementGroup,
           remove_group(no_pg), kNotFound),
  });
}

TEST_F(BadInputTest, RayletRefusesBadRequests) {
  using R = rpc::Raylet::Stub;
  R* raylet = raylet_.get();
  const std::string job = JobId::FromInt(1).Binary();
  const std::string pg = PlacementGroupId::FromRandom().Binary();
  const std::string unknown_object =
      ObjectId::ForPut(TaskId::FromRandom(), 1).Binary();
  const rpc::Resources cpu = Res("CPU", 1);
  auto lease = [](const std::string& job_id, rpc::Resources r,
                  const std::string& requester) {
    rpc::LeaseRequest req;
    req.set_job_id(job_id);
    *req.mutable_resources() = r;
    req.set_requester_worker_id(requester);
    return req;
  };
  auto return_worker = [](const std::string& id) {
    rpc::ReturnWorkerRequest req;
    req.set_lease_id(id);
    return req;
  };
  auto register_worker = [](const std::string& id) {
    rpc::RegisterWorkerRequest req;
    req.set_worker_id(id);
    req.set_pid(1);
    req.set_port(1);
    return req;
  };
  auto flush_logs = [](const std::string& job) {
    rpc::FlushJobLogsRequest req;
    req.set_job_id(job);
    return req;
  };
  auto blocked = [](const std::string& id) {
    rpc::NotifyBlockedRequest req;
    req.set_worker_id(id);
    return req;
  };
  auto bundle = [](const std::string& pg_id, int index, rpc::Resources r) {
    rpc::BundleRequest req;
    req.set_pg_id(pg_id);
    req.set_index(index);
    *req.mutable_resources() = r;
    return req;
  };
  auto driver = [](const std::string& job_id, int64_t pid) {
    rpc::RegisterDriverRequest req;
    req.set_job_id(job_id);
    req.set_pid(pid);
    req.set_worker_id(WorkerId::FromRandom().Binary());
    return req;
  };
  auto pull = [](const std::string& id) {
    rpc::PullObjectRequest req;
    req.set_object_id(id);
    req.set_source_node_id(NodeId::FromRandom().Binary());
    return req;
  };
  auto read = [](const std::string& id, uint64_t length) {
    rpc::ReadObjectChunkRequest req;
    req.set_object_id(id);
    req.set_length(length);
    return req;
  };
  auto free_objects = [](const std::string& id, const std::string& node) {
    rpc::FreeObjectsRequest req;
    req.add_object_ids(id);
    if (!node.empty()) req.add_node_ids(node);
    return req;
  };
  rpc::ReportTaskStatsRequest negative_stats;
  negative_stats.set_finished(-1);

  ExpectRefused({
      // Leases.
      Call("lease: empty job id", raylet, &R::RequestWorkerLease,
           lease("", cpu, ""), kInvalid),
      Call("lease: 1 MiB job id", raylet, &R::RequestWorkerLease,
           lease(kHuge, cpu, ""), kInvalid),
      Call("lease: CPU -1", raylet, &R::RequestWorkerLease,
           lease(job, Res("CPU", -1), ""), kInvalid),
      Call("lease: CPU NaN", raylet, &R::RequestWorkerLease,
           lease(job, Res("CPU", NAN), ""), kInvalid),
      Call("lease: CPU infinity", raylet, &R::RequestWorkerLease,
           lease(job, Res("CPU", INFINITY), ""), kInvalid),
      Call("lease: CPU 1e300", raylet, &R::RequestWorkerLease,
           lease(job, Res("CPU", 1e300), ""), kInvalid),
      Call("lease: GPU 1.5", raylet, &R::RequestWorkerLease,
           lease(job, Res("GPU", 1.5), ""), kInvalid),
      Call("lease: 5-byte requester id", raylet, &R::RequestWorkerLease,
           lease(job, cpu, "short"), kInvalid),
      Call("return: empty lease id", raylet, &R::ReturnWorker,
           return_worker(""), kInvalid),
      Call("return: 1 MiB lease id", raylet, &R::ReturnWorker,
           return_worker(kHuge), kInvalid),
      Call("return: unknown lease", raylet, &R::ReturnWorker,
           return_worker(LeaseId::FromRandom().Binary()), kNotFound),
      // Workers.
      Call("register worker: empty id", raylet, &R::RegisterWorker,
           register_worker(""), kInvalid),
      Call("register worker: 1 MiB id", raylet, &R::RegisterWorker,
           register_worker(kHuge), kInvalid),
      Call("register worker: one this raylet did not start", raylet,
           &R::RegisterWorker, register_worker(WorkerId::FromRandom().Binary()),
           kNotFound),
      Call("blocked: empty worker id", raylet, &R::NotifyBlocked, blocked(""),
           kInvalid),
      Call("blocked: 1 MiB worker id", raylet, &R::NotifyBlocked,
           blocked(kHuge), kInvalid),
      Call("blocked: unknown worker", raylet, &R::NotifyBlocked,
           blocked(WorkerId::FromRandom().Binary()), kNotFound),
      Call("driver: 1 MiB job id", raylet, &R::RegisterDriver, driver(kHuge, 1),
           kInvalid),
      Call("driver: pid -5", raylet, &R::RegisterDriver, driver(job, -5),
           kInvalid),
      Call("task stats: finished -1", raylet, &R::ReportTaskStats,
           negative_stats, kInvalid),
      Call("flush logs: 1-byte job id", raylet, &R::FlushLogs, flush_logs("x"),
           kInvalid),
      // Bundles: a bad group id or index, bad resources, more than the node
      // has; committing what was never prepared.
      Call("prepare: 1-byte group id", raylet, &R::PrepareBundle,
           bundle("x", 0, cpu), kInvalid),
      Call("prepare: index -1", raylet, &R::PrepareBundle, bundle(pg, -1, cpu),
           kInvalid),
      Call("prepare: CPU NaN", raylet, &R::PrepareBundle,
           bundle(pg, 0, Res("CPU", NAN)), kInvalid),
      Call("prepare: a million CPUs", raylet, &R::PrepareBundle,
           bundle(pg, 0, Res("CPU", 1e6)), Code::RESOURCE_EXHAUSTED),
      Call("commit: never prepared", raylet, &R::CommitBundle,
           bundle(pg, 0, {}), kNotFound),
      Call("release: 1-byte group id", raylet, &R::ReleaseBundle,
           bundle("x", 0, {}), kInvalid),
      // Objects.
      Call("pull: empty object id", raylet, &R::PullObject, pull(""), kInvalid),
      Call("pull: 1 MiB object id", raylet, &R::PullObject, pull(kHuge),
           kInvalid),
      Call("pull: an object no node has, from an unknown node", raylet,
           &R::PullObject, pull(unknown_object), kNotFound),
      Call("read chunk: empty object id", raylet, &R::ReadObjectChunk,
           read("", 10), kInvalid),
      Call("read chunk: 1 MiB object id", raylet, &R::ReadObjectChunk,
           read(kHuge, 10), kInvalid),
      Call("read chunk: 2^62 bytes", raylet, &R::ReadObjectChunk,
           read(unknown_object, uint64_t{1} << 62), kInvalid),
      Call("read chunk: unknown object", raylet, &R::ReadObjectChunk,
           read(unknown_object, 10), kNotFound),
      Call("free: 1 MiB object id", raylet, &R::FreeObjects,
           free_objects(kHuge, ""), kInvalid),
      Call("free: 5-byte node id", raylet, &R::FreeObjects,
           free_objects(unknown_object, "short"), kInvalid),
  });
}

// Lease requests a worker cannot serve are refused, saying why. (What a
// leased worker refuses is worker_input_test.cc.)
TEST_F(BadInputTest, RayletRefusesLeasesNoWorkerCanServe) {
  rpc::AddJobRequest add;
  add.set_driver_pid(getpid());
  rpc::AddJobReply job;
  ASSERT_TRUE(Invoke([&](auto* c) { return gcs_->AddJob(c, add, &job); }).ok());
  rpc::LeaseRequest req;
  req.set_job_id(job.job_id());
  *req.mutable_resources() = Res("CPU", 1);
  req.add_code_search_path(TestLib());
  rpc::LeaseRequest relative_python = req;
  relative_python.mutable_runtime()->set_language(rpc::WorkerRuntime::PYTHON);
  relative_python.mutable_runtime()->set_python_executable("relative/python");
  relative_python.mutable_runtime()->set_cwd("/");
  ExpectRefused({
      Call("lease: a relative python executable", raylet_.get(),
           &rpc::Raylet::Stub::RequestWorkerLease, relative_python, kInvalid),
  });

  // An unloadable code path is refused with the reason, not a crash.
  rpc::LeaseRequest bad_code = req;
  bad_code.clear_code_search_path();
  bad_code.add_code_search_path("/nonexistent/libnothing.so");
  rpc::LeaseReply bad_lease;
  ASSERT_TRUE(Invoke([&](auto* c) {
                return raylet_->RequestWorkerLease(c, bad_code, &bad_lease);
              }).ok());
  EXPECT_EQ(bad_lease.outcome(), rpc::LeaseReply::REJECTED);
  EXPECT_NE(bad_lease.message().find("libnothing"), std::string::npos)
      << bad_lease.message();
  ExpectServing("an unloadable code path");

  // A Python "interpreter" whose fork server exits at once fails the lease,
  // saying why, instead of leaving it waiting.
  rpc::LeaseRequest py = relative_python;
  py.mutable_runtime()->set_python_executable("/bin/false");
  rpc::LeaseReply py_lease;
  ASSERT_TRUE(Invoke([&](auto* c) {
                return raylet_->RequestWorkerLease(c, py, &py_lease);
              }).ok());
  EXPECT_EQ(py_lease.outcome(), rpc::LeaseReply::REJECTED);
  EXPECT_NE(py_lease.message().find("/bin/false"), std::string::npos)
      << py_lease.message();
  ExpectServing("a python runtime that exits");
}

}  // namespace
}  // namespace loom::test

// Cluster tests: every RPC method called with empty, oversized and unknown
// IDs, bad resources and absurd sizes gets an error status, and the daemons
// keep serving.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "runtime/local_cluster.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

const std::string kHuge(1 << 20, 'x');  // a 1 MiB "id"

template <typename Call>
grpc::Status Invoke(Call call) {
  grpc::ClientContext ctx;
  rpc::SetTimeout(&ctx, 5000);
  return call(&ctx);
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

  void ExpectStillServing() {
    auto s = ClusterStatus(cluster_.gcs_address);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(CountNodes(*s, true), 1);
    rpc::GetNodeStatsReply stats;
    EXPECT_TRUE(Invoke([&](auto* c) {
                  return raylet_->GetNodeStats(c, rpc::GetNodeStatsRequest(),
                                               &stats);
                }).ok());
  }

  TempRoot root_;
  ClusterHandle cluster_;
  std::unique_ptr<rpc::Gcs::Stub> gcs_;
  std::unique_ptr<rpc::Raylet::Stub> raylet_;
};

rpc::Resources Res(const std::string& name, double qty) {
  rpc::Resources r;
  (*r.mutable_quantities())[name] = qty;
  return r;
}

TEST_F(BadInputTest, GcsRefusesBadRequests) {
  auto node_with = [](const std::string& id, rpc::Resources total, int port) {
    rpc::RegisterNodeRequest req;
    req.mutable_node()->set_node_id(id);
    req.mutable_node()->set_host("127.0.0.1");
    req.mutable_node()->set_raylet_port(port);
    *req.mutable_node()->mutable_total() = total;
    return req;
  };
  std::string good_id = NodeId::FromRandom().Binary();
  std::vector<rpc::RegisterNodeRequest> bad_nodes = {
      node_with("", Res("CPU", 1), 1),
      node_with(kHuge, Res("CPU", 1), 1),
      node_with(good_id, Res("CPU", -1), 1),
      node_with(good_id, Res("CPU", NAN), 1),
      node_with(good_id, Res("CPU", 1e300), 1),
      node_with(good_id, Res("", 1), 1),
      node_with(good_id, Res("CPU", 1), 0),
      node_with(good_id, Res("CPU", 1), 1 << 20)};
  for (const auto& req : bad_nodes) {
    rpc::RegisterNodeReply reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return gcs_->RegisterNode(c, req, &reply);
                 }).ok());
  }
  for (const std::string& id : {std::string(), kHuge, good_id}) {
    rpc::HeartbeatRequest hb;
    hb.set_node_id(id);
    rpc::HeartbeatReply reply;
    EXPECT_FALSE(
        Invoke([&](auto* c) { return gcs_->Heartbeat(c, hb, &reply); }).ok());
    rpc::UnregisterNodeRequest un;
    un.set_node_id(id);
    rpc::UnregisterNodeReply ur;
    EXPECT_FALSE(
        Invoke([&](auto* c) { return gcs_->UnregisterNode(c, un, &ur); }).ok());
  }
  rpc::KvPutRequest put;
  rpc::KvPutReply put_reply;
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->KvPut(c, put, &put_reply); }).ok());
  put.set_key(std::string(5000, 'k'));
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->KvPut(c, put, &put_reply); }).ok());
  put.set_key("k");
  put.set_value(std::string(65 << 20, 'v'));
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->KvPut(c, put, &put_reply); }).ok());
  rpc::KvGetRequest get;
  rpc::KvGetReply get_reply;
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->KvGet(c, get, &get_reply); }).ok());
  rpc::KvDelRequest del;
  rpc::KvDelReply del_reply;
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->KvDel(c, del, &del_reply); }).ok());

  rpc::AddJobRequest job;
  rpc::AddJobReply job_reply;
  job.set_driver_pid(-1);
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->AddJob(c, job, &job_reply); }).ok());
  job.set_driver_pid(1);
  job.set_node_id(kHuge);
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->AddJob(c, job, &job_reply); }).ok());
  for (const std::string& id :
       {std::string(), kHuge, JobId::FromInt(999).Binary()}) {
    rpc::MarkJobFinishedRequest fin;
    fin.set_job_id(id);
    rpc::MarkJobFinishedReply fin_reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return gcs_->MarkJobFinished(c, fin, &fin_reply);
                 }).ok());
  }
  rpc::UpdateObjectLocationsRequest loc;
  auto* u = loc.add_updates();
  u->set_object_id(kHuge);
  u->set_node_id(good_id);
  rpc::UpdateObjectLocationsReply loc_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return gcs_->UpdateObjectLocations(c, loc, &loc_reply);
               }).ok());
  u->set_object_id(ObjectId::ForReturn(TaskId::FromRandom(), 1).Binary());
  u->set_size(-5);
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return gcs_->UpdateObjectLocations(c, loc, &loc_reply);
               }).ok());
  rpc::GetObjectLocationsRequest gl;
  rpc::GetObjectLocationsReply gl_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return gcs_->GetObjectLocations(c, gl, &gl_reply);
               }).ok());
  rpc::PollEventsRequest poll;
  rpc::PollEventsReply poll_reply;
  poll.set_timeout_ms(-1);
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return gcs_->PollEvents(c, poll, &poll_reply);
               }).ok());
  poll.set_timeout_ms(int64_t{1} << 40);
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return gcs_->PollEvents(c, poll, &poll_reply);
               }).ok());
  // Actors: bad ids, no factory, bad options, unknown actors.
  rpc::RegisterActorRequest ra;
  rpc::RegisterActorReply ra_reply;
  for (const std::string& id : {std::string(), kHuge}) {
    ra.mutable_creation()->set_actor_id(id);
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return gcs_->RegisterActor(c, ra, &ra_reply);
                 }).ok());
  }
  ra.mutable_creation()->set_actor_id(ActorId::FromRandom().Binary());
  ra.mutable_creation()->set_job_id(JobId::FromInt(1).Binary());
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return gcs_->RegisterActor(c, ra, &ra_reply);
               }).ok());  // no factory named
  ra.mutable_creation()->set_function_name("MakeCounter");
  ra.set_max_restarts(-7);
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return gcs_->RegisterActor(c, ra, &ra_reply);
               }).ok());
  ra.set_max_restarts(0);
  (*ra.mutable_creation()->mutable_resources()->mutable_quantities())["CPU"] =
      std::nan("");
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return gcs_->RegisterActor(c, ra, &ra_reply);
               }).ok());
  rpc::GetActorRequest ga;
  rpc::GetActorReply ga_reply;
  ga.set_actor_id(kHuge);
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->GetActor(c, ga, &ga_reply); }).ok());
  ga.set_actor_id(ActorId::FromRandom().Binary());
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->GetActor(c, ga, &ga_reply); }).ok());
  rpc::KillActorRequest ka;
  rpc::KillActorReply ka_reply;
  ka.set_actor_id("x");
  EXPECT_FALSE(
      Invoke([&](auto* c) { return gcs_->KillActor(c, ka, &ka_reply); }).ok());

  // Placement groups: no bundles, an empty or bad bundle, a bad strategy;
  // unknown or malformed ids.
  auto group = [](std::vector<rpc::Resources> bundles, int strategy) {
    rpc::CreatePlacementGroupRequest req;
    for (auto& b : bundles) *req.mutable_group()->add_bundles() = b;
    req.mutable_group()->set_strategy(
        static_cast<rpc::PlacementGroupInfo::Strategy>(strategy));
    return req;
  };
  for (const auto& req :
       {group({}, 0), group({rpc::Resources()}, 0), group({Res("CPU", -1)}, 0),
        group({Res("CPU", NAN)}, 0), group({Res("CPU", 1)}, 99)}) {
    rpc::CreatePlacementGroupReply reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return gcs_->CreatePlacementGroup(c, req, &reply);
                 }).ok());
  }
  for (const std::string& id :
       {std::string("x"), kHuge, PlacementGroupId::FromRandom().Binary()}) {
    rpc::GetPlacementGroupRequest get;
    get.set_pg_id(id);
    rpc::GetPlacementGroupReply get_reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return gcs_->GetPlacementGroup(c, get, &get_reply);
                 }).ok());
    rpc::RemovePlacementGroupRequest rm;
    rm.set_pg_id(id);
    rpc::RemovePlacementGroupReply rm_reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return gcs_->RemovePlacementGroup(c, rm, &rm_reply);
                 }).ok());
  }
  ExpectStillServing();
}

TEST_F(BadInputTest, RayletRefusesBadRequests) {
  std::string job = JobId::FromInt(1).Binary();
  auto lease = [&](const std::string& job_id, rpc::Resources res,
                   const std::string& requester) {
    rpc::LeaseRequest req;
    req.set_job_id(job_id);
    *req.mutable_resources() = res;
    req.set_requester_worker_id(requester);
    return req;
  };
  std::vector<rpc::LeaseRequest> bad = {
      lease("", Res("CPU", 1), ""),         lease(kHuge, Res("CPU", 1), ""),
      lease(job, Res("CPU", -1), ""),       lease(job, Res("CPU", NAN), ""),
      lease(job, Res("CPU", INFINITY), ""), lease(job, Res("CPU", 1e300), ""),
      lease(job, Res("GPU", 1.5), ""),      lease(job, Res("CPU", 1), "short")};
  for (const auto& req : bad) {
    rpc::LeaseReply reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return raylet_->RequestWorkerLease(c, req, &reply);
                 }).ok());
  }
  for (const std::string& id :
       {std::string(), kHuge, LeaseId::FromRandom().Binary()}) {
    rpc::ReturnWorkerRequest ret;
    ret.set_lease_id(id);
    rpc::ReturnWorkerReply ret_reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return raylet_->ReturnWorker(c, ret, &ret_reply);
                 }).ok());
    rpc::RegisterWorkerRequest reg;
    reg.set_worker_id(id.size() == 16 ? WorkerId::FromRandom().Binary() : id);
    reg.set_pid(1);
    reg.set_port(1);
    rpc::RegisterWorkerReply reg_reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return raylet_->RegisterWorker(c, reg, &reg_reply);
                 }).ok());
    rpc::NotifyBlockedRequest nb;
    nb.set_worker_id(reg.worker_id());
    rpc::NotifyBlockedReply nb_reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return raylet_->NotifyBlocked(c, nb, &nb_reply);
                 }).ok());
  }
  // Bundles: a bad group id or index, bad resources, more than the node
  // has; committing what was never prepared.
  auto bundle = [](const std::string& pg, int index, rpc::Resources r) {
    rpc::BundleRequest req;
    req.set_pg_id(pg);
    req.set_index(index);
    *req.mutable_resources() = r;
    return req;
  };
  std::string pg = PlacementGroupId::FromRandom().Binary();
  for (const auto& req :
       {bundle("x", 0, Res("CPU", 1)), bundle(pg, -1, Res("CPU", 1)),
        bundle(pg, 0, Res("CPU", NAN)), bundle(pg, 0, Res("CPU", 1e6))}) {
    rpc::BundleReply reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return raylet_->PrepareBundle(c, req, &reply);
                 }).ok());
  }
  rpc::BundleReply bundle_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->CommitBundle(c, bundle(pg, 0, {}),
                                              &bundle_reply);
               }).ok());
  rpc::RegisterDriverRequest drv;
  drv.set_job_id(kHuge);
  drv.set_pid(1);
  drv.set_worker_id(WorkerId::FromRandom().Binary());
  rpc::RegisterDriverReply drv_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->RegisterDriver(c, drv, &drv_reply);
               }).ok());
  drv.set_job_id(job);
  drv.set_pid(-5);
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->RegisterDriver(c, drv, &drv_reply);
               }).ok());
  for (const std::string& id : {std::string(), kHuge}) {
    rpc::PullObjectRequest pull;
    pull.set_object_id(id);
    pull.set_source_node_id(NodeId::FromRandom().Binary());
    rpc::PullObjectReply pull_reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return raylet_->PullObject(c, pull, &pull_reply);
                 }).ok());
    rpc::ReadObjectChunkRequest read;
    read.set_object_id(id);
    rpc::ReadObjectChunkReply read_reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return raylet_->ReadObjectChunk(c, read, &read_reply);
                 }).ok());
  }
  // An unknown object, an unknown source node, an absurd chunk.
  rpc::PullObjectRequest pull;
  pull.set_object_id(ObjectId::ForPut(TaskId::FromRandom(), 1).Binary());
  pull.set_source_node_id(NodeId::FromRandom().Binary());
  rpc::PullObjectReply pull_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->PullObject(c, pull, &pull_reply);
               }).ok());
  rpc::ReadObjectChunkRequest read;
  read.set_object_id(pull.object_id());
  read.set_length(uint64_t{1} << 62);
  rpc::ReadObjectChunkReply read_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->ReadObjectChunk(c, read, &read_reply);
               }).ok());
  read.set_length(10);
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->ReadObjectChunk(c, read, &read_reply);
               }).ok());
  rpc::FreeObjectsRequest free_req;
  free_req.add_object_ids(kHuge);
  rpc::FreeObjectsReply free_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->FreeObjects(c, free_req, &free_reply);
               }).ok());
  free_req.set_object_ids(0,
                          ObjectId::ForPut(TaskId::FromRandom(), 1).Binary());
  free_req.add_node_ids("short");
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->FreeObjects(c, free_req, &free_reply);
               }).ok());
  rpc::ReportTaskStatsRequest stats;
  stats.set_finished(-1);
  rpc::ReportTaskStatsReply stats_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->ReportTaskStats(c, stats, &stats_reply);
               }).ok());
  ExpectStillServing();
}

TEST_F(BadInputTest, WorkerRefusesBadRequests) {
  // Lease a real worker, then talk to it directly.
  rpc::AddJobRequest add;
  add.set_driver_pid(getpid());
  rpc::AddJobReply job;
  ASSERT_TRUE(Invoke([&](auto* c) { return gcs_->AddJob(c, add, &job); }).ok());
  rpc::LeaseRequest req;
  req.set_job_id(job.job_id());
  *req.mutable_resources() = Res("CPU", 1);
  req.add_code_search_path(TestLib());
  rpc::LeaseReply lease;
  ASSERT_TRUE(Invoke([&](auto* c) {
                return raylet_->RequestWorkerLease(c, req, &lease);
              }).ok());
  ASSERT_EQ(lease.outcome(), rpc::LeaseReply::GRANTED) << lease.message();
  auto worker = rpc::CoreWorker::NewStub(rpc::MakeChannel(
      absl::StrCat(lease.worker().host(), ":", lease.worker().port())));

  for (const std::string& id : {std::string(), kHuge}) {
    rpc::PushTaskRequest push;
    push.mutable_spec()->set_task_id(id);
    push.mutable_spec()->set_function_name("Echo");
    rpc::PushTaskReply reply;
    EXPECT_FALSE(Invoke([&](auto* c) {
                   return worker->PushTask(c, push, &reply);
                 }).ok());
  }
  rpc::PushTaskRequest push;
  push.mutable_spec()->set_task_id(TaskId::FromRandom().Binary());
  push.mutable_spec()->set_function_name("NoSuchFunction");
  rpc::PushTaskReply reply;
  ASSERT_TRUE(
      Invoke([&](auto* c) { return worker->PushTask(c, push, &reply); }).ok());
  EXPECT_FALSE(reply.ok());
  EXPECT_NE(reply.error().message().find("NoSuchFunction"), std::string::npos);
  push.mutable_spec()->set_function_name("Echo");
  push.mutable_spec()->add_args()->set_value("\xc1garbage");
  ASSERT_TRUE(
      Invoke([&](auto* c) { return worker->PushTask(c, push, &reply); }).ok());
  EXPECT_FALSE(reply.ok());
  rpc::AssignJobRequest assign;
  assign.set_job_id(kHuge);
  rpc::AssignJobReply assign_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return worker->AssignJob(c, assign, &assign_reply);
               }).ok());
  assign.set_job_id(JobId::FromInt(12345).Binary());
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return worker->AssignJob(c, assign, &assign_reply);
               }).ok());
  // Borrowing: bad ids are refused; an unknown object is an error value.
  rpc::UpdateBorrowsRequest borrows;
  borrows.add_add(kHuge);
  rpc::UpdateBorrowsReply borrows_reply;
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return worker->UpdateBorrows(c, borrows, &borrows_reply);
               }).ok());
  borrows.Clear();
  borrows.add_add(ObjectId::ForPut(TaskId::FromRandom(), 1).Binary());
  borrows.add_remove(ObjectId::ForPut(TaskId::FromRandom(), 1).Binary());
  ASSERT_TRUE(Invoke([&](auto* c) {
                return worker->UpdateBorrows(c, borrows, &borrows_reply);
              }).ok());
  EXPECT_EQ(borrows_reply.unknown_size(), 1);
  rpc::GetObjectRequest get_object;
  rpc::GetObjectReply get_object_reply;
  get_object.set_object_id("short");
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return worker->GetObject(c, get_object, &get_object_reply);
               }).ok());
  get_object.set_object_id(ObjectId::ForPut(TaskId::FromRandom(), 1).Binary());
  ASSERT_TRUE(Invoke([&](auto* c) {
                return worker->GetObject(c, get_object, &get_object_reply);
              }).ok());
  EXPECT_FALSE(get_object_reply.ok());
  // An actor call to a worker that serves no actor.
  rpc::PushTaskRequest stray;
  stray.mutable_spec()->set_task_id(TaskId::FromRandom().Binary());
  stray.mutable_spec()->set_function_name("Counter::Get");
  stray.mutable_spec()->set_actor_id(ActorId::FromRandom().Binary());
  ASSERT_TRUE(
      Invoke([&](auto* c) { return worker->PushTask(c, stray, &reply); }).ok());
  EXPECT_FALSE(reply.ok());
  // The worker still runs real work.
  rpc::PushTaskRequest good;
  good.mutable_spec()->set_task_id(TaskId::FromRandom().Binary());
  good.mutable_spec()->set_function_name("Echo");
  good.mutable_spec()->add_args()->set_value(Serialize(41));
  ASSERT_TRUE(
      Invoke([&](auto* c) { return worker->PushTask(c, good, &reply); }).ok());
  ASSERT_TRUE(reply.ok()) << reply.error().message();
  EXPECT_EQ(Deserialize<int>(reply.value()), 41);

  // An unloadable code path is refused with the reason, not a crash.
  rpc::LeaseRequest bad_code = req;
  bad_code.clear_code_search_path();
  bad_code.add_code_search_path("/nonexistent/libnothing.so");
  rpc::LeaseReply bad_lease;
  ASSERT_TRUE(Invoke([&](auto* c) {
                return raylet_->RequestWorkerLease(c, bad_code, &bad_lease);
              }).ok());
  EXPECT_EQ(bad_lease.outcome(), rpc::LeaseReply::REJECTED);
  EXPECT_NE(bad_lease.message().find("libnothing"), std::string::npos);

  // Python workers: a runtime that is not an interpreter is refused; one
  // whose fork server exits (this "interpreter" exits at once) fails the
  // lease, saying why, instead of leaving it waiting.
  rpc::LeaseRequest py = req;
  py.mutable_runtime()->set_language(rpc::WorkerRuntime::PYTHON);
  py.mutable_runtime()->set_python_executable("relative/python");
  py.mutable_runtime()->set_cwd("/");
  EXPECT_FALSE(Invoke([&](auto* c) {
                 return raylet_->RequestWorkerLease(c, py, &bad_lease);
               }).ok());
  py.mutable_runtime()->set_python_executable("/bin/false");
  rpc::LeaseReply py_lease;
  ASSERT_TRUE(Invoke([&](auto* c) {
                return raylet_->RequestWorkerLease(c, py, &py_lease);
              }).ok());
  EXPECT_EQ(py_lease.outcome(), rpc::LeaseReply::REJECTED);
  EXPECT_NE(py_lease.message().find("/bin/false"), std::string::npos);
  ExpectStillServing();
}

}  // namespace
}  // namespace loom::test

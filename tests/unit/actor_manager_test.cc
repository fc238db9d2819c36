// ActorManager against fake raylets and workers served in-process through
// a FakeClientPool: placement, creation, restart after a death, and death
// when the worker cannot start, without starting a process.
#include "src/gcs/actor_manager.h"

#include <gtest/gtest.h>

#include <deque>

#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "src/gcs/storage.h"
#include "tests/unit/fake_client_pool.h"

namespace loom::gcs {
namespace {

constexpr char kRaylet[] = "10.0.0.1:7001";

// Grants leases on workers 10.0.0.1:9001, :9002, ... unless told to reject.
class FakeRaylet : public rpc::Raylet::CallbackService {
 public:
  grpc::ServerUnaryReactor* RequestWorkerLease(
      grpc::CallbackServerContext* ctx, const rpc::LeaseRequest*,
      rpc::LeaseReply* reply) override {
    absl::MutexLock lock(&mu_);
    ++leases_;
    if (!reject_.empty()) {
      reply->set_outcome(rpc::LeaseReply::REJECTED);
      reply->set_message(reject_);
    } else {
      reply->set_outcome(rpc::LeaseReply::GRANTED);
      reply->set_lease_id("lease-" + std::to_string(leases_));
      reply->mutable_worker()->set_host("10.0.0.1");
      reply->mutable_worker()->set_port(9000 + leases_);
    }
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* ReturnWorker(grpc::CallbackServerContext* ctx,
                                         const rpc::ReturnWorkerRequest* req,
                                         rpc::ReturnWorkerReply*) override {
    absl::MutexLock lock(&mu_);
    returned_.push_back(req->lease_id());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  void Reject(const std::string& why) {
    absl::MutexLock lock(&mu_);
    reject_ = why;
  }
  int leases() {
    absl::MutexLock lock(&mu_);
    return leases_;
  }
  std::vector<std::string> returned() {
    absl::MutexLock lock(&mu_);
    return returned_;
  }

 private:
  absl::Mutex mu_;
  int leases_ ABSL_GUARDED_BY(mu_) = 0;
  std::string reject_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> returned_ ABSL_GUARDED_BY(mu_);
};

// Runs creation tasks; its watch answers when the test says it died.
class FakeWorker : public rpc::CoreWorker::CallbackService {
 public:
  grpc::ServerUnaryReactor* PushTask(grpc::CallbackServerContext* ctx,
                                     const rpc::PushTaskRequest* req,
                                     rpc::PushTaskReply* reply) override {
    {
      absl::MutexLock lock(&mu_);
      created_ += req->spec().actor_creation();
    }
    reply->set_ok(true);
    reply->set_pid(4242);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* WatchBorrower(grpc::CallbackServerContext* ctx,
                                          const rpc::WatchBorrowerRequest*,
                                          rpc::WatchBorrowerReply*) override {
    absl::MutexLock lock(&mu_);
    watches_.push_back(ctx->DefaultReactor());
    return watches_.back();
  }
  // The process is gone: its watches end as a broken connection would.
  void Die() {
    absl::MutexLock lock(&mu_);
    for (auto* w : watches_) {
      w->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "socket closed"));
    }
    watches_.clear();
  }
  int created() {
    absl::MutexLock lock(&mu_);
    return created_;
  }
  int watches() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(watches_.size());
  }

 private:
  absl::Mutex mu_;
  int created_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<grpc::ServerUnaryReactor*> watches_ ABSL_GUARDED_BY(mu_);
};

class ActorManagerTest : public ::testing::Test {
 protected:
  ActorManagerTest()
      : loop_("actor-manager-test"),
        publisher_(&loop_),
        nodes_({&store_, &publisher_, Clock::Real(), absl::Seconds(5), {}}),
        scheduler_(&nodes_),
        actors_(&loop_, &nodes_, &publisher_, &scheduler_, &pool_) {
    pool_.Serve(kRaylet, &raylet_);
    pool_.Serve("10.0.0.1:9001", &workers_[0]);
    pool_.Serve("10.0.0.1:9002", &workers_[1]);
    rpc::NodeInfo node;
    node.set_node_id(NodeId::FromRandom().Binary());
    node.set_host("10.0.0.1");
    node.set_raylet_port(7001);
    (*node.mutable_total()->mutable_quantities())["CPU"] = 4;
    (*node.mutable_available()->mutable_quantities())["CPU"] = 4;
    EXPECT_TRUE(nodes_.Register(node).ok());
    loop_.Start();
  }
  ~ActorManagerTest() override {
    for (auto& w : workers_) w.Die();  // no watch outlives its server
    actors_.Shutdown();  // no reply reaches the manager after this
    loop_.Stop();
  }

  ActorId Register(int max_restarts) {
    rpc::RegisterActorRequest req;
    ActorId id = ActorId::FromRandom();
    req.mutable_creation()->set_actor_id(id.Binary());
    req.mutable_creation()->set_job_id(JobId::FromInt(1).Binary());
    req.mutable_creation()->set_function_name("MakeCounter");
    req.set_class_name("Counter");
    req.set_max_restarts(max_restarts);
    absl::Status status = absl::UnknownError("not answered");
    loop_.RunSync([&] {
      rpc::RegisterActorReply reply;
      actors_.HandleRegisterActor(req, &reply,
                                  [&](absl::Status s) { status = s; });
    });
    EXPECT_TRUE(status.ok()) << status;
    return id;
  }

  rpc::ActorInfo Info(const ActorId& id) {
    rpc::ActorInfo info;
    loop_.RunSync([&] {
      rpc::ListActorsReply reply;
      actors_.HandleListActors({}, &reply, [](absl::Status) {});
      for (const auto& a : reply.actors()) {
        if (a.actor_id() == id.Binary()) info = a;
      }
    });
    return info;
  }

  // Polls until the actor reaches `state` (replies arrive on gRPC threads
  // and are posted to the loop); false after 5 s.
  bool WaitFor(const ActorId& id, rpc::ActorInfo::State state,
               int restarts = 0) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      rpc::ActorInfo info = Info(id);
      if (info.state() == state && info.num_restarts() == restarts) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  FakeRaylet raylet_;  // outlive the pool's servers
  FakeWorker workers_[2];
  FakeClientPool pool_;  // outlives the manager
  EventLoop loop_;
  InMemoryStoreClient store_;
  Publisher publisher_;
  NodeTable nodes_;
  GlobalScheduler scheduler_;
  ActorManager actors_;
};

TEST_F(ActorManagerTest, AnActorIsLeasedCreatedAndWatched) {
  ActorId id = Register(0);
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  rpc::ActorInfo info = Info(id);
  EXPECT_EQ(info.address().host(), "10.0.0.1");
  EXPECT_EQ(info.address().port(), 9001);
  EXPECT_EQ(info.pid(), 4242);
  EXPECT_EQ(raylet_.leases(), 1);
  EXPECT_EQ(workers_[0].created(), 1);
  // Its process is watched for death.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (workers_[0].watches() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(workers_[0].watches(), 1);
}

TEST_F(ActorManagerTest, ADeadWorkerRestartsTheActorOnANewOneAndIsDropped) {
  ActorId id = Register(1);
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (workers_[0].watches() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(pool_.channels_made("10.0.0.1:9001"), 1);
  workers_[0].Die();
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE, /*restarts=*/1));
  EXPECT_EQ(Info(id).address().port(), 9002);
  EXPECT_EQ(workers_[1].created(), 1);
  EXPECT_EQ(raylet_.leases(), 2);
  // The dead incarnation's lease went back, its process to be killed.
  EXPECT_EQ(raylet_.returned(), std::vector<std::string>{"lease-1"});
  // The dead worker's channel was dropped: the next call dials again.
  pool_.Channel("10.0.0.1:9001");
  EXPECT_EQ(pool_.channels_made("10.0.0.1:9001"), 2);
  // Out of restarts, the next death is final.
  while (workers_[1].watches() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  workers_[1].Die();
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::DEAD, /*restarts=*/1));
  EXPECT_NE(Info(id).death_cause().find("restarts are used up"),
            std::string::npos)
      << Info(id).death_cause();
}

TEST_F(ActorManagerTest, AWorkerThatCannotStartKillsTheActorSayingWhy) {
  raylet_.Reject("cannot load libmissing.so");
  ActorId id = Register(-1);  // restarts would not help
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::DEAD));
  EXPECT_NE(Info(id).death_cause().find("cannot load libmissing.so"),
            std::string::npos)
      << Info(id).death_cause();
  EXPECT_EQ(raylet_.leases(), 1);  // not retried
  EXPECT_EQ(workers_[0].created(), 0);
}

}  // namespace
}  // namespace loom::gcs

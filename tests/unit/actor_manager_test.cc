// ActorManager against fake raylets and workers served in-process through
// a FakeClientPool: placement, creation, restart after a death, and death
// when the worker cannot start, without starting a process.
#include "src/gcs/actor_manager.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <filesystem>

#include "absl/synchronization/notification.h"
#include "src/gcs/storage.h"
#include "tests/unit/fake_client_pool.h"
#include "tests/unit/fake_peers.h"

namespace loom::gcs {
namespace {

constexpr char kRaylet[] = "10.0.0.1:7001";

class ActorManagerTest : public ::testing::Test {
 protected:
  ActorManagerTest()
      : loop_("actor-manager-test"),
        publisher_(&loop_),
        nodes_({&store_, &publisher_, Clock::Real(), absl::Seconds(5), {}}),
        scheduler_(&nodes_),
        actors_(&loop_, &nodes_, &publisher_, &scheduler_, &pool_, &store_) {
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
    if (restarted_) restarted_->Shutdown();
    loop_.Stop();
  }

  // A Counter actor's registration, with a new id.
  static rpc::RegisterActorRequest Spec(int max_restarts) {
    rpc::RegisterActorRequest req;
    req.mutable_creation()->set_actor_id(ActorId::FromRandom().Binary());
    req.mutable_creation()->set_job_id(JobId::FromInt(1).Binary());
    req.mutable_creation()->set_function_name("MakeCounter");
    req.set_class_name("Counter");
    req.set_max_restarts(max_restarts);
    return req;
  }

  ActorId Register(int max_restarts) {
    rpc::RegisterActorRequest req = Spec(max_restarts);
    ActorId id = *ActorId::FromBinary(req.creation().actor_id());
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
  std::unique_ptr<ActorManager> restarted_;  // a second head's, on one store
};

TEST_F(ActorManagerTest, AnActorIsLeasedAndCreatedAndNoCallStaysOpen) {
  ActorId id = Register(0);
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  rpc::ActorInfo info = Info(id);
  EXPECT_EQ(info.address().host(), "10.0.0.1");
  EXPECT_EQ(info.address().port(), 9001);
  EXPECT_EQ(info.pid(), 4242);
  EXPECT_EQ(raylet_.leases(), 1);
  EXPECT_EQ(workers_[0].ran().size(), 1u);
  // Its death comes from its raylet: the head holds no call to it.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(workers_[0].watches(), 0);
}

TEST_F(ActorManagerTest, ADeadWorkerRestartsTheActorOnANewOneAndIsDropped) {
  ActorId id = Register(1);
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  EXPECT_EQ(pool_.channels_made("10.0.0.1:9001"), 1);
  // A worker that is not an actor's: nothing happens.
  loop_.RunSync([&] { actors_.OnWorkerDead("worker-77"); });
  EXPECT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  // Its raylet reports the actor's process gone (ReportWorkerDeath).
  workers_[0].Die();
  loop_.RunSync([&] { actors_.OnWorkerDead("worker-1"); });
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE, /*restarts=*/1));
  EXPECT_EQ(Info(id).address().port(), 9002);
  EXPECT_EQ(Info(id).restart_cause(),
            "the actor's process exited (its node's raylet saw it end)");
  EXPECT_EQ(workers_[1].ran().size(), 1u);
  EXPECT_EQ(raylet_.leases(), 2);
  // The dead incarnation's lease went back, its process to be killed.
  EXPECT_EQ(raylet_.returned(), std::vector<std::string>{"lease-1 failed"});
  // The dead worker's channel was dropped: the next call dials again.
  pool_.Channel("10.0.0.1:9001");
  EXPECT_EQ(pool_.channels_made("10.0.0.1:9001"), 2);
  // A report of the first process again changes nothing.
  loop_.RunSync([&] { actors_.OnWorkerDead("worker-1"); });
  EXPECT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE, /*restarts=*/1));
  // Out of restarts, the next death is final; a raylet that killed the
  // process (its memory monitor) said why, and the cause says it.
  loop_.RunSync([&] {
    actors_.OnWorkerDead("worker-2", "out of memory: the memory monitor ...");
  });
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::DEAD, /*restarts=*/1));
  EXPECT_EQ(Info(id).death_cause(),
            "out of memory: the memory monitor ...; its restarts are used up");
}

TEST_F(ActorManagerTest, AWorkerThatCannotStartKillsTheActorSayingWhy) {
  raylet_.Reject("cannot load libmissing.so");
  ActorId id = Register(-1);  // restarts would not help
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::DEAD));
  EXPECT_NE(Info(id).death_cause().find("cannot load libmissing.so"),
            std::string::npos)
      << Info(id).death_cause();
  EXPECT_EQ(raylet_.leases(), 1);  // not retried
  EXPECT_TRUE(workers_[0].ran().empty());
}

// A leased worker that cannot be reached never ran the constructor: the
// actor is created on the next one, not counted as a restart, and the
// unreachable one's lease goes back as failed.
TEST_F(ActorManagerTest, AnUnreachableWorkerIsPassedOverWithoutARestart) {
  raylet_.WorkersAt("10.0.0.1", 9000, 3);  // nothing serves 9000
  ActorId id = Register(0);
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  EXPECT_EQ(Info(id).address().port(), 9001);
  EXPECT_EQ(raylet_.leases(), 2);
  EXPECT_EQ(workers_[0].ran().size(), 1u);
  EXPECT_EQ(raylet_.returned(), std::vector<std::string>{"lease-1 failed"});
}

// Worker after worker out of reach: the actor dies saying so, after a few.
TEST_F(ActorManagerTest, WorkersNeverReachableKillTheActorSayingWhy) {
  raylet_.WorkersAt("10.0.0.2", 9100, 100);  // none served
  ActorId id = Register(0);
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::DEAD));
  EXPECT_NE(Info(id).death_cause().find("could not be reached"),
            std::string::npos)
      << Info(id).death_cause();
  EXPECT_EQ(raylet_.leases(), 4);
}

// With the head's descriptors nearly all open, a registration is refused
// naming the limit; with room again, it is taken.
TEST_F(ActorManagerTest, RegistrationIsRefusedWhenTheHeadIsOutOfDescriptors) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int open = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++open;
  }
  rlimit low = saved;
  low.rlim_cur = open + 16;  // under the reserve
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  rpc::RegisterActorRequest req = Spec(0);
  absl::Status status;
  loop_.RunSync([&] {
    rpc::RegisterActorReply reply;
    actors_.HandleRegisterActor(req, &reply,
                                [&](absl::Status s) { status = s; });
  });
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("the head has"), std::string::npos) << status;
  EXPECT_NE(status.message().find("RLIMIT_NOFILE"), std::string::npos)
      << status;
  absl::SleepFor(absl::Milliseconds(150));  // past the count's cache
  Register(0);                              // room again
}

TEST_F(ActorManagerTest, DeadActorsPastTheLimitAreErasedFromMemoryAndStore) {
  restarted_ = std::make_unique<ActorManager>(&loop_, &nodes_, &publisher_,
                                              &scheduler_, &pool_, &store_,
                                              /*max_dead=*/2);
  raylet_.Reject("cannot load libmissing.so");  // each dies at once
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    rpc::RegisterActorRequest req = Spec(-1);
    ids.push_back(req.creation().actor_id());
    loop_.RunSync([&] {
      rpc::RegisterActorReply reply;
      restarted_->HandleRegisterActor(req, &reply, [](absl::Status) {});
    });
    absl::SleepFor(absl::Milliseconds(50));  // they die in this order
  }
  rpc::ListActorsReply listed;
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (listed.erased_dead() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
    loop_.RunSync([&] {
      listed.Clear();
      restarted_->HandleListActors({}, &listed, [](absl::Status) {});
    });
  }
  EXPECT_EQ(listed.erased_dead(), 1);
  EXPECT_EQ(listed.max_dead(), 2);
  ASSERT_EQ(listed.actors_size(), 2);
  for (const auto& a : listed.actors()) {
    EXPECT_NE(a.actor_id(), ids[0]) << "the oldest dead stays erased";
    EXPECT_GT(a.end_time_ms(), 0);
  }
  // Its stored record went too: a restarted head would not list it.
  StoreClient::Table rows;
  absl::Notification read;
  store_.GetAll("actors", [&](absl::StatusOr<StoreClient::Table> t) {
    if (t.ok()) rows = *t;
    read.Notify();
  });
  read.WaitForNotification();
  EXPECT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows.count(ids[0]), 0u);
}

}  // namespace
}  // namespace loom::gcs

namespace loom::gcs {
namespace {

// A restarted head reads its actors back: an ALIVE one stays ALIVE at the
// same address, is found by its name, and dies when its worker is
// reported gone.
TEST_F(ActorManagerTest, ARestartedHeadFindsItsActorsAgain) {
  rpc::RegisterActorRequest req = Spec(0);
  ActorId id = *ActorId::FromBinary(req.creation().actor_id());
  req.set_name("counter");
  req.set_ns("ns");
  loop_.RunSync([&] {
    rpc::RegisterActorReply reply;
    actors_.HandleRegisterActor(req, &reply, [](absl::Status) {});
  });
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  // The new head: the same store, a new manager that loads it.
  restarted_ = std::make_unique<ActorManager>(&loop_, &nodes_, &publisher_,
                                              &scheduler_, &pool_, &store_);
  ActorManager& restarted = *restarted_;
  absl::Status loaded = absl::UnknownError("not run");
  loop_.RunSync([&] {
    store_.GetAll("actors", [&](absl::StatusOr<StoreClient::Table> rows) {
      ASSERT_TRUE(rows.ok());
      loaded = restarted.Load(*rows);
    });
  });
  ASSERT_TRUE(loaded.ok()) << loaded;
  rpc::GetActorReply got;
  absl::Status found = absl::UnknownError("not answered");
  loop_.RunSync([&] {
    rpc::GetActorRequest get;
    get.set_name("counter");
    get.set_ns("ns");
    restarted.HandleGetActor(get, &got, [&](absl::Status s) { found = s; });
  });
  ASSERT_TRUE(found.ok()) << found;
  EXPECT_EQ(got.actor().state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(got.actor().address().port(), 9001);
  EXPECT_EQ(raylet_.leases(), 1);  // not placed a second time
  // Its node registers again with the new head, still holding the lease:
  // the actor lives on. A report of its worker's end then reaches it.
  std::string node_id = got.actor().node_id();
  loop_.RunSync([&] { restarted.OnNodeRegistered(node_id, {"lease-1"}); });
  loop_.RunSync([&] {
    rpc::GetActorReply again;
    rpc::GetActorRequest get;
    get.set_actor_id(id.Binary());
    restarted.HandleGetActor(get, &again, [](absl::Status) {});
    EXPECT_EQ(again.actor().state(), rpc::ActorInfo::ALIVE);
  });
  loop_.RunSync([&] { restarted.OnWorkerDead("worker-1"); });
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  rpc::GetActorReply after;
  while (absl::Now() < deadline) {
    loop_.RunSync([&] {
      after.Clear();
      rpc::GetActorRequest get;
      get.set_actor_id(id.Binary());
      restarted.HandleGetActor(get, &after, [](absl::Status) {});
    });
    if (after.actor().state() == rpc::ActorInfo::DEAD) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(after.actor().state(), rpc::ActorInfo::DEAD);
}

// A node that registers again without an actor's lease (its process ended
// while the head was away): the actor died then.
TEST_F(ActorManagerTest, ANodeThatNoLongerHoldsTheLeaseEndsTheActor) {
  ActorId id = Register(0);
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  std::string node_id = Info(id).node_id();
  loop_.RunSync([&] { actors_.OnNodeRegistered("another node", {}); });
  EXPECT_TRUE(WaitFor(id, rpc::ActorInfo::ALIVE));
  loop_.RunSync([&] { actors_.OnNodeRegistered(node_id, {"lease-9"}); });
  ASSERT_TRUE(WaitFor(id, rpc::ActorInfo::DEAD));
  EXPECT_NE(Info(id).death_cause().find("out of touch"), std::string::npos)
      << Info(id).death_cause();
}

}  // namespace
}  // namespace loom::gcs

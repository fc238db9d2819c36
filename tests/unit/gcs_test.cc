// Unit tests for src/gcs: the node table's failure detection, pub-sub and
// the global scheduler.
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/session.h"
#include "src/common/wire.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/global_scheduler.h"
#include "src/gcs/node_table.h"
#include "src/gcs/pubsub.h"

namespace loom::gcs {
namespace {

rpc::NodeInfo Node(const NodeId& id) {
  rpc::NodeInfo n;
  n.set_node_id(id.Binary());
  n.set_host("127.0.0.1");
  n.set_raylet_port(7000);
  (*n.mutable_total()->mutable_quantities())["CPU"] = 2;
  return n;
}

class NodeTableTest : public ::testing::Test {
 protected:
  NodeTableTest() : loop("gcs-test", &clock), publisher(&loop) {
    nodes = std::make_unique<NodeTable>(
        NodeTable::Options{&store, &publisher, &clock, absl::Seconds(5),
                           [this](const NodeId& n) { dead.push_back(n); }});
  }
  ManualClock clock;
  EventLoop loop;
  InMemoryStoreClient store;
  Publisher publisher;
  std::unique_ptr<NodeTable> nodes;
  std::vector<NodeId> dead;
};

TEST_F(NodeTableTest, SilenceWhileTheHeadStalledIsExcused) {
  NodeId a = NodeId::FromRandom(), b = NodeId::FromRandom();
  ASSERT_TRUE(nodes->Register(Node(a)).ok());
  ASSERT_TRUE(nodes->Register(Node(b)).ok());
  auto beat = [&](const NodeId& id) {
    rpc::HeartbeatRequest hb;
    hb.set_node_id(id.Binary());
    rpc::HeartbeatReply reply;
    ASSERT_TRUE(nodes->Heartbeat(hb, &reply).ok());
  };
  clock.Advance(absl::Seconds(3));
  beat(a);
  clock.Advance(absl::Seconds(1));
  beat(b);
  absl::Time heard = clock.Now();
  // The head's loop did not run for 20 s: it heard nobody, and that is
  // not held against a (heard 1 s before) nor b.
  clock.Advance(absl::Seconds(20));
  nodes->Excuse(absl::Seconds(20));
  EXPECT_EQ(nodes->CheckTimeouts(), heard + absl::Seconds(24));
  EXPECT_TRUE(dead.empty());
  // Silent after that, each is dead once the timeout has run on its
  // silence with the head listening: a first, then b.
  clock.Advance(absl::Milliseconds(4500));
  nodes->CheckTimeouts();
  EXPECT_EQ(dead, std::vector<NodeId>{a});
  clock.Advance(absl::Seconds(1));
  nodes->CheckTimeouts();
  EXPECT_EQ(dead.size(), 2u);
}

TEST_F(NodeTableTest, SilentNodeIsMarkedDeadAndPublished) {
  NodeId id = NodeId::FromRandom();
  absl::Time registered = clock.Now();
  ASSERT_TRUE(nodes->Register(Node(id)).ok());
  clock.Advance(absl::Seconds(4));
  // When the next check is due: the head's loop sleeps until then.
  EXPECT_EQ(nodes->CheckTimeouts(), registered + absl::Seconds(5));
  EXPECT_TRUE(dead.empty());
  rpc::HeartbeatRequest hb;
  hb.set_node_id(id.Binary());
  rpc::HeartbeatReply reply;
  ASSERT_TRUE(nodes->Heartbeat(hb, &reply).ok());
  absl::Time heard = clock.Now();
  clock.Advance(absl::Seconds(4));
  EXPECT_EQ(nodes->CheckTimeouts(), heard + absl::Seconds(5));
  EXPECT_TRUE(dead.empty());
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(nodes->CheckTimeouts(), absl::InfiniteFuture());  // none alive
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0], id);
  EXPECT_EQ(nodes->alive_count(), 0u);
  // A dead node is fenced: its heartbeat and its registering again are
  // refused, so it stops instead of running what was restarted elsewhere.
  EXPECT_EQ(nodes->Heartbeat(hb, &reply).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(nodes->Register(Node(id)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(nodes->alive_count(), 0u);
  // A node this head never knew (it restarted) is told to register.
  hb.set_node_id(NodeId::FromRandom().Binary());
  EXPECT_EQ(nodes->Heartbeat(hb, &reply).code(), absl::StatusCode::kNotFound);
  std::vector<rpc::Event> events;
  publisher.Poll(0, absl::ZeroDuration(),
                 [&](std::vector<rpc::Event> e, int64_t) { events = e; });
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind(), rpc::Event::NODE_ADDED);
  EXPECT_EQ(events[1].kind(), rpc::Event::NODE_DEAD);
  EXPECT_EQ(events[1].seq(), 2);
}

TEST_F(NodeTableTest, HeartbeatCarriesTheViewOnlyWhenItChanged) {
  NodeId a = NodeId::FromRandom(), b = NodeId::FromRandom();
  ASSERT_TRUE(nodes->Register(Node(a)).ok());
  ASSERT_TRUE(nodes->Register(Node(b)).ok());
  rpc::HeartbeatRequest hb;
  hb.set_node_id(a.Binary());
  (*hb.mutable_available()->mutable_quantities())["CPU"] = 2;
  rpc::HeartbeatReply r1;
  ASSERT_TRUE(nodes->Heartbeat(hb, &r1).ok());
  EXPECT_TRUE(r1.view_included());
  EXPECT_EQ(r1.nodes_size(), 2);
  hb.set_view_version(r1.view_version());
  rpc::HeartbeatReply r2;
  ASSERT_TRUE(nodes->Heartbeat(hb, &r2).ok());
  EXPECT_FALSE(r2.view_included());
}

// A node that acknowledges a view gets only the nodes changed since (dead
// ones included); views carry no demands, which the head's table keeps by
// shape with counts; the scheduler's live table follows each change.
TEST_F(NodeTableTest, HeartbeatsCarryDeltasSinceTheAcknowledgedView) {
  NodeId a = NodeId::FromRandom(), b = NodeId::FromRandom(),
         c = NodeId::FromRandom();
  for (const NodeId& id : {a, b, c})
    ASSERT_TRUE(nodes->Register(Node(id)).ok());
  auto beat = [&](const NodeId& id, double cpus, int64_t version) {
    rpc::HeartbeatRequest hb;
    hb.set_node_id(id.Binary());
    (*hb.mutable_available()->mutable_quantities())["CPU"] = cpus;
    hb.set_view_version(version);
    rpc::Demand* d = hb.add_pending();
    (*d->mutable_shape()->mutable_quantities())["CPU"] = 1;
    d->set_count(5000);
    rpc::HeartbeatReply reply;
    EXPECT_TRUE(nodes->Heartbeat(hb, &reply).ok());
    return reply;
  };
  rpc::HeartbeatReply whole = beat(a, 2, 0);
  EXPECT_TRUE(whole.view_included());
  EXPECT_FALSE(whole.view_delta());
  EXPECT_EQ(whole.nodes_size(), 3);
  for (const auto& n : whole.nodes()) EXPECT_EQ(n.pending_size(), 0);
  // b's load changes; a, holding the whole view, hears only of b.
  beat(b, 0.5, 0);
  rpc::HeartbeatReply delta = beat(a, 2, whole.view_version());
  EXPECT_TRUE(delta.view_delta());
  ASSERT_EQ(delta.nodes_size(), 1);
  EXPECT_EQ(delta.nodes(0).node_id(), b.Binary());
  EXPECT_DOUBLE_EQ(delta.nodes(0).available().quantities().at("CPU"), 0.5);
  EXPECT_EQ(delta.nodes(0).pending_size(), 0);
  EXPECT_FALSE(beat(a, 2, delta.view_version()).view_included());
  // The head's own table has the demands, by shape.
  const rpc::NodeInfo* info = nodes->Find(b.Binary());
  ASSERT_NE(info, nullptr);
  ASSERT_EQ(info->pending_size(), 1);
  EXPECT_EQ(info->pending(0).count(), 5000);
  // The scheduler reads the live table.
  ASSERT_EQ(nodes->alive().size(), 3u);
  for (const NodeState& n : nodes->alive()) {
    if (n.node_id == b.Binary()) {
      EXPECT_EQ(n.available.Get(kCpu), FixedPoint::FromDouble(0.5));
    }
  }
  // c dies: the delta says so.
  ASSERT_TRUE(nodes->Unregister(c.Binary()).ok());
  rpc::HeartbeatReply gone = beat(a, 2, delta.view_version());
  ASSERT_EQ(gone.nodes_size(), 1);
  EXPECT_EQ(gone.nodes(0).node_id(), c.Binary());
  EXPECT_FALSE(gone.nodes(0).alive());
  EXPECT_EQ(nodes->alive().size(), 2u);
  // A version this head never gave (an earlier head's) gets the whole view.
  rpc::HeartbeatReply fresh = beat(a, 2, 12345);
  EXPECT_FALSE(fresh.view_delta());
  EXPECT_EQ(fresh.nodes_size(), 2);
  // Bad counts are refused.
  rpc::HeartbeatRequest bad;
  bad.set_node_id(a.Binary());
  bad.add_pending()->set_count(0);
  rpc::HeartbeatReply reply;
  EXPECT_EQ(nodes->Heartbeat(bad, &reply).code(),
            absl::StatusCode::kInvalidArgument);
}

// Past --max-dead-nodes the oldest dead node is erased, from storage too;
// it stays fenced; a raylet whose view predates the erasure gets it whole.
TEST_F(NodeTableTest, DeadNodesAreBoundedHistory) {
  NodeTable table(NodeTable::Options{&store, &publisher, &clock,
                                     absl::Seconds(5), nullptr, ThisVersion(),
                                     /*max_dead=*/1});
  NodeId a = NodeId::FromRandom(), b = NodeId::FromRandom(),
         c = NodeId::FromRandom();
  for (const NodeId& id : {a, b, c}) ASSERT_TRUE(table.Register(Node(id)).ok());
  rpc::HeartbeatRequest hb;
  hb.set_node_id(c.Binary());
  rpc::HeartbeatReply before;
  ASSERT_TRUE(table.Heartbeat(hb, &before).ok());
  ASSERT_TRUE(table.Unregister(a.Binary()).ok());
  EXPECT_NE(table.Find(a.Binary()), nullptr);
  ASSERT_TRUE(table.Unregister(b.Binary()).ok());
  EXPECT_EQ(table.Find(a.Binary()), nullptr);
  EXPECT_NE(table.Find(b.Binary()), nullptr);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.erased_dead(), 1);
  EXPECT_EQ(table.max_dead(), 1u);
  bool stored = true;
  store.Get("nodes", a.Binary(),
            [&](absl::StatusOr<std::optional<std::string>> v) {
              stored = v.ok() && v->has_value();
            });
  EXPECT_FALSE(stored);
  EXPECT_EQ(table.Register(Node(a)).code(),
            absl::StatusCode::kFailedPrecondition);
  hb.set_view_version(before.view_version());
  rpc::HeartbeatReply after;
  ASSERT_TRUE(table.Heartbeat(hb, &after).ok());
  EXPECT_FALSE(after.view_delta());
  ASSERT_EQ(after.nodes_size(), 1);
  EXPECT_EQ(after.nodes(0).node_id(), c.Binary());
  // A restarted head keeps the erased node fenced: its id is stored.
  auto table_of = [&](const std::string& name) {
    StoreClient::Table rows;
    store.GetAll(name, [&](absl::StatusOr<StoreClient::Table> t) {
      ASSERT_TRUE(t.ok());
      rows = *t;
    });
    return rows;
  };
  StoreClient::Table fenced = table_of(NodeTable::kFencedTable);
  ASSERT_EQ(fenced.size(), 1u);
  EXPECT_EQ(fenced.begin()->first, a.Binary());
  NodeTable restarted(NodeTable::Options{&store, &publisher, &clock,
                                         absl::Seconds(5), nullptr,
                                         ThisVersion(), /*max_dead=*/1});
  ASSERT_TRUE(restarted.Load(table_of("nodes"), fenced).ok());
  EXPECT_EQ(restarted.Register(Node(a)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(restarted.Register(Node(b)).code(),
            absl::StatusCode::kFailedPrecondition);
  // A stored row that does not parse is data loss, not a silent gap.
  NodeTable broken(NodeTable::Options{&store, &publisher, &clock});
  EXPECT_EQ(broken.Load({}, {{a.Binary(), "soon"}}).code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(NodeTableTest, RefusesBadRegistrations) {
  rpc::NodeInfo bad = Node(NodeId::FromRandom());
  bad.set_node_id("short");
  EXPECT_EQ(nodes->Register(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = Node(NodeId::FromRandom());
  (*bad.mutable_total()->mutable_quantities())["CPU"] = -3;
  EXPECT_EQ(nodes->Register(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = Node(NodeId::FromRandom());
  bad.set_raylet_port(70000);
  EXPECT_EQ(nodes->Register(bad).code(), absl::StatusCode::kInvalidArgument);
}

// A node of another protocol or build than the head's is refused, with both
// named, and not listed; a malformed build string is bad input.
TEST_F(NodeTableTest, RefusesANodeOfAnotherVersion) {
  NodeTable head(NodeTable::Options{&store, &publisher, &clock,
                                    absl::Seconds(5), nullptr,
                                    Version{7, "1.2.3+gabc"}});
  NodeId id = NodeId::FromRandom();
  absl::Status s = head.Register(Node(id), Version{8, "1.2.3+gabc"});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              ::testing::StartsWith(
                  "node runs protocol 8 (build 1.2.3+gabc), head runs "
                  "protocol 7 (build 1.2.3+gabc)"));
  EXPECT_TRUE(IsVersionMismatch(s));
  s = head.Register(Node(id), Version{7, "1.2.4"});
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("node runs protocol 7 (build 1.2.4)"));
  EXPECT_TRUE(IsVersionMismatch(s));
  EXPECT_EQ(head.size(), 0u);
  EXPECT_EQ(head.Register(Node(id), Version{7, std::string(300, 'x')}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(head.Register(Node(id), Version{7, "1.2.3+gabc"}).ok());
  EXPECT_EQ(head.alive_count(), 1u);
  // A fenced node's refusal is not a version mismatch.
  EXPECT_FALSE(IsVersionMismatch(absl::FailedPreconditionError("fenced")));
}

// What raylets hand the head: placed by resources, labels and locality;
// each placement counts against its node until the node's next heartbeat.
TEST_F(NodeTableTest, TheGlobalSchedulerPlacesWhatRayletsCannot) {
  GlobalScheduler scheduler(nodes.get());
  NodeId plain = NodeId::FromRandom(), gpu = NodeId::FromRandom();
  ASSERT_TRUE(nodes->Register(Node(plain)).ok());
  rpc::NodeInfo g = Node(gpu);
  (*g.mutable_total()->mutable_quantities())["GPU"] = 1;
  (*g.mutable_labels())["zone"] = "b";
  ASSERT_TRUE(nodes->Register(g).ok());
  auto ask = [&](std::map<std::string, double> demand,
                 const std::string& data_node = "",
                 std::map<std::string, std::string> labels = {}) {
    rpc::ScheduleLeaseRequest req;
    for (const auto& [k, v] : demand) {
      (*req.mutable_resources()->mutable_quantities())[k] = v;
    }
    for (const auto& [k, v] : labels) {
      (*req.mutable_strategy()->mutable_label_selector())[k] = v;
    }
    req.set_preferred_node_id(data_node);
    rpc::ScheduleLeaseReply reply;
    absl::Status status = scheduler.ScheduleLease(req, &reply);
    EXPECT_TRUE(status.ok()) << status;
    return reply;
  };
  auto r = ask({{"GPU", 1}});
  ASSERT_TRUE(r.placed());
  EXPECT_EQ(r.node().node_id(), gpu.Binary());
  EXPECT_EQ(r.node().raylet_port(), 7000);
  // The GPU is taken until the node says otherwise: the next one waits.
  r = ask({{"GPU", 1}});
  EXPECT_FALSE(r.placed());
  EXPECT_TRUE(r.feasible());
  rpc::HeartbeatRequest hb;
  hb.set_node_id(gpu.Binary());
  *hb.mutable_available() = g.total();
  rpc::HeartbeatReply hb_reply;
  ASSERT_TRUE(nodes->Heartbeat(hb, &hb_reply).ok());
  EXPECT_TRUE(ask({{"GPU", 1}}).placed());
  // Locality: the node holding the data, when it fits.
  EXPECT_EQ(ask({{"CPU", 1}}, plain.Binary()).node().node_id(), plain.Binary());
  EXPECT_EQ(ask({{"CPU", 1}}, gpu.Binary()).node().node_id(), gpu.Binary());
  // Labels confine it; what no node could ever run is infeasible.
  EXPECT_EQ(ask({{"CPU", 1}}, "", {{"zone", "b"}}).node().node_id(),
            gpu.Binary());
  r = ask({{"CPU", 1}}, "", {{"zone", "z"}});
  EXPECT_FALSE(r.placed());
  EXPECT_FALSE(r.feasible());
  EXPECT_FALSE(ask({{"unicorn", 1}}).feasible());
  // A malformed demand is refused.
  rpc::ScheduleLeaseRequest bad;
  (*bad.mutable_resources()->mutable_quantities())["CPU"] = -1;
  rpc::ScheduleLeaseReply reply;
  absl::Status status = scheduler.ScheduleLease(bad, &reply);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(Publisher, LongPollWakesOnPublish) {
  EventLoop loop("pub-test");
  loop.Start();
  Publisher pub(&loop);
  std::vector<rpc::Event> got;
  bool answered = false;
  loop.RunSync([&] {
    pub.Poll(0, absl::Seconds(30), [&](std::vector<rpc::Event> e, int64_t) {
      got = e;
      answered = true;
    });
    EXPECT_FALSE(answered);
    pub.Publish(rpc::Event::JOB_FINISHED, "j", "done");
  });
  EXPECT_TRUE(answered);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].detail(), "done");
}

// A subscriber is woken only by the kinds it asked for; the others are
// passed over (last_seq counts them) and never handed to it.
TEST(Publisher, APollWaitsOnlyForTheKindsItNames) {
  EventLoop loop("pub-test");
  loop.Start();
  Publisher pub(&loop);
  std::vector<rpc::Event> got;
  int64_t last = 0;
  int answers = 0;
  auto poll_node_deaths = [&] {
    pub.Poll(0, Publisher::MaskOf(std::vector{rpc::Event::NODE_DEAD}),
             absl::Seconds(30), [&](std::vector<rpc::Event> e, int64_t l) {
               got = e;
               last = l;
               ++answers;
             });
  };
  loop.RunSync([&] {
    poll_node_deaths();
    pub.Publish(rpc::Event::ACTOR_STATE, "a", "DEAD");
    pub.Publish(rpc::Event::WORKER_DEAD, "w", "exited");
    EXPECT_EQ(answers, 0);
    pub.Publish(rpc::Event::NODE_DEAD, "n", "missed heartbeats");
  });
  ASSERT_EQ(answers, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id(), "n");
  EXPECT_EQ(last, 3);
  // Asked again from before the others: only its kind comes back.
  loop.RunSync(poll_node_deaths);
  ASSERT_EQ(answers, 2);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq(), 3);
  // None named: every kind.
  EXPECT_EQ(Publisher::MaskOf(std::vector<int>{}), Publisher::kAllKinds);
}

// With a gathering time, events published together reach a subscriber in
// one reply.
TEST(Publisher, EventsPublishedTogetherGoOutInOneReply) {
  EventLoop loop("pub-test");
  loop.Start();
  Publisher pub(&loop, 10000, absl::Milliseconds(50));
  absl::Mutex mu;
  std::vector<std::vector<rpc::Event>> replies;
  loop.RunSync([&] {
    pub.Poll(0, absl::Seconds(30), [&](std::vector<rpc::Event> e, int64_t) {
      absl::MutexLock lock(&mu);
      replies.push_back(e);
    });
    for (int i = 0; i < 5; ++i) {
      pub.Publish(rpc::Event::ACTOR_STATE, std::to_string(i), "DEAD");
    }
  });
  absl::MutexLock lock(&mu);
  auto one = [&replies] { return !replies.empty(); };
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&one), absl::Seconds(10)));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].size(), 5u);
}

}  // namespace
}  // namespace loom::gcs

namespace loom::gcs {
namespace {

// A restarted head loads its nodes: a dead one stays fenced, an alive one
// is asked to register again (so it reports its objects anew), and one
// that never does is declared dead after the timeout.
TEST_F(NodeTableTest, ARestartedHeadKeepsTheDeadFencedAndAsksTheRestToRejoin) {
  NodeId alive = NodeId::FromRandom(), dead_node = NodeId::FromRandom(),
         silent = NodeId::FromRandom();
  ASSERT_TRUE(nodes->Register(Node(alive)).ok());
  ASSERT_TRUE(nodes->Register(Node(dead_node)).ok());
  ASSERT_TRUE(nodes->Register(Node(silent)).ok());
  ASSERT_TRUE(nodes->Unregister(dead_node.Binary()).ok());
  NodeTable restarted(
      NodeTable::Options{&store, &publisher, &clock, absl::Seconds(5),
                         [this](const NodeId& n) { dead.push_back(n); }});
  store.GetAll("nodes", [&](absl::StatusOr<StoreClient::Table> rows) {
    ASSERT_TRUE(rows.ok());
    ASSERT_TRUE(restarted.Load(*rows).ok());
  });
  rpc::HeartbeatReply reply;
  rpc::HeartbeatRequest hb;
  hb.set_node_id(dead_node.Binary());
  EXPECT_EQ(restarted.Heartbeat(hb, &reply).code(),
            absl::StatusCode::kFailedPrecondition);
  hb.set_node_id(alive.Binary());
  EXPECT_EQ(restarted.Heartbeat(hb, &reply).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(restarted.Register(Node(alive)).ok());
  EXPECT_TRUE(restarted.Heartbeat(hb, &reply).ok());
  dead.clear();
  clock.Advance(absl::Seconds(4));
  ASSERT_TRUE(restarted.Heartbeat(hb, &reply).ok());
  clock.Advance(absl::Seconds(2));
  restarted.CheckTimeouts();
  EXPECT_EQ(dead, std::vector<NodeId>{silent});
  EXPECT_EQ(restarted.alive_count(), 1u);
}

JobId AddJob(GcsServer& gcs, const std::string& driver_address = "",
             int pid = 1234) {
  rpc::AddJobRequest req;
  req.set_driver_pid(pid);
  req.set_driver_address(driver_address);
  rpc::AddJobReply reply;
  absl::Status status = absl::UnknownError("not answered");
  gcs.loop().RunSync([&] {
    gcs.HandleAddJob(req, &reply, [&](absl::Status s) { status = s; });
  });
  EXPECT_TRUE(status.ok()) << status;
  return *JobId::FromBinary(reply.job_id());
}

// Job ids (and so object ids) never repeat across restarts of the head:
// the counter is saved before an id goes out, in the store and, for a store
// that does not outlive the head, in the session directory.
TEST(GcsRestart, JobIdsContinueAfterARestart) {
  Metrics metrics;
  InMemoryStoreClient store;
  std::vector<uint32_t> before;
  {
    GcsServer first({.store = &store}, &metrics);
    ASSERT_TRUE(first.Start().ok());
    for (int i = 0; i < 3; ++i) before.push_back(AddJob(first).ToInt());
  }
  GcsServer second({.store = &store}, &metrics);
  ASSERT_TRUE(second.Start().ok());
  EXPECT_GT(AddJob(second).ToInt(), before.back());
  // A store that does not outlive the head: the session directory keeps it.
  // Far ahead of the clock's floor, as a head that made many jobs quickly.
  char dir[] = "/tmp/loom-gcs-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_TRUE(WriteFileAtomic(std::string(dir) + "/gcs_next_job",
                              std::to_string(uint32_t{2000000000}))
                  .ok());
  {
    GcsServer third({.session_dir = dir}, &metrics);
    ASSERT_TRUE(third.Start().ok());
    EXPECT_EQ(AddJob(third).ToInt(), 2000000000u);
  }
  GcsServer fourth({.session_dir = dir}, &metrics);
  ASSERT_TRUE(fourth.Start().ok());
  EXPECT_EQ(AddJob(fourth).ToInt(), 2000000001u);
  std::filesystem::remove_all(dir);
}

// A driver asks again when its first AddJob timed out on a busy head: it
// gets the job it has, not a second one. Another driver, or the same one
// once its job ended, gets a new job.
TEST(GcsJobs, ADriverAskingAgainGetsTheJobItHas) {
  Metrics metrics;
  InMemoryStoreClient store;
  GcsServer gcs({.store = &store}, &metrics);
  ASSERT_TRUE(gcs.Start().ok());
  JobId first = AddJob(gcs, "127.0.0.1:4000", 77);
  EXPECT_EQ(AddJob(gcs, "127.0.0.1:4000", 77), first);
  EXPECT_NE(AddJob(gcs, "127.0.0.1:4001", 77), first);
  EXPECT_NE(AddJob(gcs, "127.0.0.1:4000", 78), first);
  rpc::MarkJobFinishedRequest req;
  req.set_job_id(first.Binary());
  rpc::MarkJobFinishedReply reply;
  gcs.loop().RunSync(
      [&] { gcs.HandleMarkJobFinished(req, &reply, [](absl::Status) {}); });
  EXPECT_NE(AddJob(gcs, "127.0.0.1:4000", 77), first);
}

// Past --max-finished-jobs the oldest ended job is erased, from storage
// too, and the listing says how many.
TEST(GcsJobs, EndedJobsAreBoundedHistory) {
  Metrics metrics;
  InMemoryStoreClient store;
  GcsServer gcs({.store = &store, .max_finished_jobs = 2}, &metrics);
  ASSERT_TRUE(gcs.Start().ok());
  std::vector<JobId> jobs;
  for (int i = 0; i < 4; ++i) jobs.push_back(AddJob(gcs));
  for (const JobId& job : jobs) {
    rpc::MarkJobFinishedRequest req;
    req.set_job_id(job.Binary());
    rpc::MarkJobFinishedReply reply;
    gcs.loop().RunSync([&] {
      gcs.HandleMarkJobFinished(
          req, &reply, [](absl::Status s) { EXPECT_TRUE(s.ok()) << s; });
    });
  }
  rpc::GetJobsReply listed;
  gcs.loop().RunSync(
      [&] { gcs.HandleGetJobs({}, &listed, [](absl::Status) {}); });
  ASSERT_EQ(listed.jobs_size(), 2);
  EXPECT_EQ(listed.erased_finished(), 2);
  EXPECT_EQ(listed.max_finished(), 2);
  for (const auto& j : listed.jobs()) {
    EXPECT_TRUE(j.job_id() == jobs[2].Binary() ||
                j.job_id() == jobs[3].Binary());
  }
  bool stored = true;
  store.Get("jobs", jobs[0].Binary(),
            [&](absl::StatusOr<std::optional<std::string>> v) {
              stored = v.ok() && v->has_value();
            });
  EXPECT_FALSE(stored);
}

// Even with nothing saved, a new head starts above the clock's floor: far
// above the small numbers a head that restarted would hand out again.
TEST(GcsRestart, AHeadWithNothingSavedStartsAtTheClocksFloor) {
  Metrics metrics;
  GcsServer gcs({}, &metrics);
  ASSERT_TRUE(gcs.Start().ok());
  // 2026-12 is about 11 months of quarter seconds past 2026-01-01.
  EXPECT_GT(AddJob(gcs).ToInt(), 100000000u);
}

// A node re-registering with a restarted head reports what it holds for
// heads; the head tells it to release what an earlier incarnation asked
// for and nobody it knows holds (it died before saving it), and keeps what
// it asked for itself (its answer may still be on the way).
TEST(GcsRestart, ANodeReleasesWhatAnEarlierHeadAskedForAndForgot) {
  Metrics metrics;
  GcsServer gcs({.epoch = "new"}, &metrics);
  ASSERT_TRUE(gcs.Start().ok());
  rpc::RegisterNodeRequest req;
  *req.mutable_node() = Node(NodeId::FromRandom());
  req.set_protocol_version(ThisVersion().protocol);
  req.set_build_version(ThisVersion().build);
  auto held = [&](const std::string& lease, const std::string& pg,
                  const std::string& epoch) {
    rpc::HeldForHead* h = req.add_held();
    h->set_lease_id(lease);
    h->set_pg_id(pg);
    h->set_head_epoch(epoch);
  };
  std::string forgotten = LeaseId::FromRandom().Binary();
  std::string fresh = LeaseId::FromRandom().Binary();
  std::string group = PlacementGroupId::FromRandom().Binary();
  held(forgotten, "", "old");
  held(fresh, "", "new");
  held("", group, "old");
  rpc::RegisterNodeReply reply;
  absl::Status status = absl::UnknownError("not answered");
  gcs.loop().RunSync([&] {
    gcs.HandleRegisterNode(req, &reply, [&](absl::Status s) { status = s; });
  });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(reply.release_size(), 2);
  EXPECT_EQ(reply.release(0).lease_id(), forgotten);
  EXPECT_EQ(reply.release(1).pg_id(), group);
}

}  // namespace
}  // namespace loom::gcs

// Cluster tests: workers, raylets and drivers that die.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "proto/gcs.grpc.pb.h"
#include "runtime/local_cluster.h"
#include "src/common/daemon.h"
#include "src/common/ids.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/test_cluster.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

std::vector<int> ReadPids(const std::string& path) {
  std::vector<int> pids;
  auto text = ReadFileToString(path);
  if (!text.ok()) return pids;
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    pids.push_back(std::stoi(std::string(line)));
  }
  return pids;
}

class WorkerDeathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions options;
    options.session_root = root_.path();
    options.num_cpus = 2;
    options.code_search_path = {TestLib()};
    loom::Init(options);
  }
  void TearDown() override { loom::Shutdown(); }
  TempRoot root_;
};

TEST_F(WorkerDeathTest, WorkerKilledMidTaskIsRetriedElsewhere) {
  std::string path = root_.path() + "/attempts";
  auto ref = Task(RecordPidAndSleep).Remote(path, 1500, 7);
  ASSERT_TRUE(
      WaitUntil([&] { return ReadPids(path).size() == 1; }, absl::Seconds(10)));
  kill(ReadPids(path)[0], SIGKILL);
  EXPECT_EQ(*Get(ref, 30000), 7);
  auto pids = ReadPids(path);
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_NE(pids[0], pids[1]);
}

TEST_F(WorkerDeathTest, RetriesUsedUpGiveWorkerCrashedError) {
  std::string path = root_.path() + "/attempts";
  auto ref = Task(RecordPidAndSleep).SetMaxRetries(0).Remote(path, 5000, 1);
  ASSERT_TRUE(
      WaitUntil([&] { return ReadPids(path).size() == 1; }, absl::Seconds(10)));
  kill(ReadPids(path)[0], SIGKILL);
  EXPECT_THROW(Get(ref, 30000), WorkerCrashedError);
  // The cluster keeps working.
  EXPECT_EQ(*Get(Task(Echo).Remote(3), 30000), 3);
}

// An actor killed with -9 while it owns three 8 MiB puts: its raylet frees
// them when it reaps the process, and the store is back where it was within
// seconds. The head is frozen meanwhile (SIGSTOP): the free must not wait
// on its WORKER_DEAD.
TEST(WorkerDeath, AKilledWorkersPutsAreFreedByItsRaylet) {
  // A frozen head must not declare the node dead meanwhile.
  Cluster cluster({.num_cpus = 2, .node_timeout_ms = 30000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  cluster.Connect();
  auto used = [&] {
    return RayletMetric(cluster.head().session_dir(),
                        "loom_object_store_used_bytes");
  };
  double baseline = used();
  auto keeper = Actor(MakeCounter).Remote(0);
  int pid = 0;
  for (int i = 0; i < 3; ++i) {
    pid = *Get(keeper.Task(&Counter::KeepPut).Remote(int64_t{8} << 20), 30000);
  }
  const double puts = 3 * (8 << 20);
  ASSERT_TRUE(
      WaitUntil([&] { return used() >= baseline + puts; }, absl::Seconds(5)))
      << used();
  pid_t gcs = cluster.head().handle().pids.front();
  ASSERT_EQ(kill(gcs, SIGSTOP), 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  bool freed = WaitUntil([&] { return used() <= baseline; }, absl::Seconds(5));
  kill(gcs, SIGCONT);
  EXPECT_TRUE(freed) << "still used: " << used() << " bytes (baseline "
                     << baseline << ")";
}

TEST(NodeDeath, HeadSeesAKilledRayletAsDeadWithinItsTimeout) {
  Cluster cluster({.node_timeout_ms = 1000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* node = cluster.AddNode();
  ASSERT_NE(node, nullptr);
  auto s = ClusterStatus(cluster.address());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(CountNodes(*s, true), 2);
  ASSERT_TRUE(WaitUntil([&] { return PidsMatching(node->root()).size() >= 2; },
                        absl::Seconds(5)));  // raylet and its workers
  absl::Time killed = absl::Now();
  kill(node->raylet_pid(), SIGKILL);
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto st = ClusterStatus(cluster.address());
        return st.ok() && CountNodes(*st, false) == 1;
      },
      absl::Seconds(4)));
  EXPECT_LT(absl::Now() - killed, absl::Seconds(4));
  // Its workers followed it (lifeline).
  EXPECT_TRUE(WaitUntil([&] { return PidsMatching(node->root()).empty(); },
                        absl::Seconds(5)));
}

// A head whose nodes die after 1 s of silence, and two hosts with one
// "pool" each, a driver connected.
struct TwoPoolHosts {
  TwoPoolHosts() {
    if (!cluster.status().ok()) return;
    a = cluster.AddNode({.resources = {{"pool", 1}}});
    b = cluster.AddNode({.resources = {{"pool", 1}}});
    if (a != nullptr && b != nullptr) cluster.Connect();
  }
  bool ok() const { return a != nullptr && b != nullptr; }
  Cluster cluster{{.node_timeout_ms = 1000}};
  Cluster::Node* a = nullptr;
  Cluster::Node* b = nullptr;
};

// A host cut off long enough to be declared dead (its raylet and its actor
// frozen with SIGSTOP) comes back: the head fences it, so its raylet exits
// with the fenced status and takes its workers along, its actor runs only
// where it was restarted, and the node stays dead.
TEST(NodeDeath, ANodeDeclaredDeadIsFencedWhenItReturns) {
  TwoPoolHosts hosts;
  ASSERT_TRUE(hosts.ok());
  auto counter = Actor(MakeCounter)
                     .SetResource("pool", 1)
                     .SetMaxRestarts(1)
                     .SetMaxTaskRetries(-1)
                     .Remote(5);
  pid_t raylet = *Get(counter.Task(&Counter::RayletPid).Remote(), 30000);
  pid_t actor = *Get(counter.Task(&Counter::Pid).Remote(), 30000);
  pid_t a = hosts.a->raylet_pid(), b = hosts.b->raylet_pid();
  ASSERT_TRUE(raylet == a || raylet == b) << raylet;
  // The host freezes: the head declares it dead within its timeout.
  ASSERT_EQ(kill(raylet, SIGSTOP), 0);
  ASSERT_EQ(kill(actor, SIGSTOP), 0);
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto st = ClusterStatus(hosts.cluster.address());
        return st.ok() && CountNodes(*st, false) == 1;
      },
      absl::Seconds(5)));
  // The actor is restarted on the other node.
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 60000), 6);
  EXPECT_EQ(*Get(counter.Task(&Counter::RayletPid).Remote(), 30000),
            raylet == a ? b : a);
  // The host comes back: its raylet is told it is dead and exits fenced.
  ASSERT_EQ(kill(actor, SIGCONT), 0);
  ASSERT_EQ(kill(raylet, SIGCONT), 0);
  int status = 0;
  ASSERT_TRUE(
      WaitUntil([&] { return waitpid(raylet, &status, WNOHANG) == raylet; },
                absl::Seconds(10)));
  (raylet == a ? hosts.a : hosts.b)->handle().pids.pop_back();  // reaped
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), kFencedExitCode);
  // Its old actor process went with it; the restarted one keeps state.
  EXPECT_TRUE(WaitUntil([&] { return kill(actor, 0) != 0; }, absl::Seconds(5)));
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 30000), 7);
  // It never rejoined: two nodes alive, one dead, for several heartbeats.
  EXPECT_TRUE(StaysTrue(
      [&] {
        auto st = ClusterStatus(hosts.cluster.address());
        return st.ok() && CountNodes(*st, true) == 2 &&
               CountNodes(*st, false) == 1;
      },
      absl::Seconds(2)));
}

// The id of the node whose raylet is `pid`, alive or dead; empty if none.
std::string NodeOfRaylet(const std::string& gcs, pid_t pid, bool alive) {
  auto st = ClusterStatus(gcs);
  if (!st.ok()) return "";
  for (const auto& n : st->nodes()) {
    if (n.pid() == pid && n.alive() == alive) return n.node_id();
  }
  return "";
}

// The same with --restart-on-fence: the returning raylet kills its workers
// and rejoins under a new node id (same process, same fixed port), the old
// id stays dead, its actor runs only where it was restarted, and tasks run
// on the new node.
TEST(NodeDeath, AFencedNodeWithRestartOnFenceRejoinsAsANewNode) {
  Cluster cluster({.node_timeout_ms = 1000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  // B, the node that will be fenced, is the only one with a pool at first:
  // the actor lands there.
  const int port = FreePortBelowEphemeralRange();
  Cluster::Node* b = cluster.AddNode({.resources = {{"pool", 1}},
                                      .raylet_port = port,
                                      .restart_on_fence = true});
  ASSERT_NE(b, nullptr);
  cluster.Connect();
  auto counter = Actor(MakeCounter)
                     .SetResource("pool", 1)
                     .SetMaxRestarts(1)
                     .SetMaxTaskRetries(-1)
                     .Remote(5);
  pid_t raylet = b->raylet_pid();
  ASSERT_EQ(*Get(counter.Task(&Counter::RayletPid).Remote(), 30000), raylet);
  pid_t actor = *Get(counter.Task(&Counter::Pid).Remote(), 30000);
  Cluster::Node* c = cluster.AddNode({.resources = {{"pool", 1}}});
  ASSERT_NE(c, nullptr);
  const std::string& gcs = cluster.address();
  // B freezes, is declared dead, and its actor restarts on C.
  ASSERT_EQ(kill(raylet, SIGSTOP), 0);
  ASSERT_EQ(kill(actor, SIGSTOP), 0);
  ASSERT_TRUE(
      WaitUntil([&] { return NodeOfRaylet(gcs, raylet, false) == b->id(); },
                absl::Seconds(5)));
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 60000), 6);
  EXPECT_EQ(*Get(counter.Task(&Counter::RayletPid).Remote(), 30000),
            c->raylet_pid());
  // B comes back: fenced, it kills its old actor and rejoins as a new node
  // (the same process: it re-executes itself).
  ASSERT_EQ(kill(actor, SIGCONT), 0);
  ASSERT_EQ(kill(raylet, SIGCONT), 0);
  std::string new_id;
  EXPECT_TRUE(WaitUntil(
      [&] {
        new_id = NodeOfRaylet(gcs, raylet, true);
        return !new_id.empty();
      },
      absl::Seconds(15)));
  ASSERT_FALSE(new_id.empty());
  EXPECT_NE(new_id, b->id());
  EXPECT_EQ(NodeOfRaylet(gcs, raylet, false), b->id());
  EXPECT_TRUE(WaitUntil([&] { return kill(actor, 0) != 0; }, absl::Seconds(5)));
  auto st = ClusterStatus(gcs);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(CountNodes(*st, true), 3);
  EXPECT_EQ(CountNodes(*st, false), 1);
  for (const auto& n : st->nodes()) {
    if (n.node_id() == new_id) {
      EXPECT_EQ(n.raylet_port(), port);
    }
  }
  // It wrote its ready file again, with its (same) port.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto ready = ReadFileToString(b->session_dir() + "/raylet.ready");
        return ready.ok() &&
               ready->find(absl::StrCat(":", port, " ")) != std::string::npos;
      },
      absl::Seconds(5)));
  // The restarted actor kept its state; a task runs on the new node.
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 30000), 7);
  std::string new_hex = NodeId::FromBinary(new_id)->Hex();
  EXPECT_EQ(*Get(Task(Echo).SetNodeAffinity(new_hex).Remote(3), 30000), 3);
  loom::Shutdown();
  // It still follows its lifeline: closing it stops the raylet.
  close(b->handle().lifeline_fd);
  b->handle().lifeline_fd = -1;
  EXPECT_TRUE(WaitForExit(raylet, absl::Seconds(5)));
  b->handle().pids.pop_back();  // reaped
}

// A host that freezes (SIGSTOP: its connections stay open, as in a network
// cut) while running a task: once the head declares it dead, the owner
// retries the task elsewhere at once instead of waiting on the socket.
TEST(NodeDeath, ATaskOnANodeDeclaredDeadIsRetriedElsewhereAtOnce) {
  TwoPoolHosts hosts;
  ASSERT_TRUE(hosts.ok());
  TempRoot files;
  std::string path = files.path() + "/attempts";
  auto ref = Task(RecordPidAndSleep)
                 .SetResource("pool", 1)
                 .SetMaxRetries(1)
                 .Remote(path, 2000, 7);
  ASSERT_TRUE(
      WaitUntil([&] { return ReadPids(path).size() == 1; }, absl::Seconds(30)));
  // Freeze the host that runs it: its raylet and every worker there.
  int first = ReadPids(path)[0];
  std::string host_root = hosts.a->root();
  std::vector<pid_t> frozen = PidsMatching(host_root);
  if (std::find(frozen.begin(), frozen.end(), first) == frozen.end()) {
    host_root = hosts.b->root();
    frozen = PidsMatching(host_root);
  }
  ASSERT_NE(std::find(frozen.begin(), frozen.end(), first), frozen.end());
  for (pid_t p : frozen) kill(p, SIGSTOP);
  absl::Time cut = absl::Now();
  // Declared dead after 1 s; the retry runs 2 s more on the other host.
  EXPECT_EQ(*Get(ref, 30000), 7);
  EXPECT_LT(absl::Now() - cut, absl::Seconds(1 + 2 + 5));
  std::vector<int> attempts = ReadPids(path);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_NE(attempts[1], first);
  // The host comes back, is fenced, and its processes go.
  for (pid_t p : frozen) kill(p, SIGCONT);
  EXPECT_TRUE(WaitUntil([&] { return PidsMatching(host_root).empty(); },
                        absl::Seconds(10)));
}

// A task bound (hard affinity) to a node that died fails clearly, within
// the infeasible grace period, instead of waiting or retrying forever.
TEST(NodeDeath, ATaskBoundToADeadNodeFailsClearly) {
  Cluster cluster({.node_timeout_ms = 1000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* node = cluster.AddNode();
  ASSERT_NE(node, nullptr);
  std::string node_hex = node->id_hex();
  kill(node->raylet_pid(), SIGKILL);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = ClusterStatus(cluster.address());
        return s.ok() && CountNodes(*s, false) == 1;
      },
      absl::Seconds(5)));
  cluster.Connect();
  absl::Time start = absl::Now();
  auto ref = Task(Echo).SetNodeAffinity(node_hex).Remote(1);
  EXPECT_THAT([&] { Get(ref, 30000); },
              ::testing::ThrowsMessage<InfeasibleError>(
                  ::testing::HasSubstr(node_hex.substr(0, 12))));
  // The raylet's infeasible grace period is 3 s.
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// A long call to a peer that froze (no TCP reset: as when its host is cut
// off) fails within the channels' keepalive, not the call's own deadline.
TEST(NodeDeath, ALongCallToAFrozenPeerFailsWithinTheKeepalive) {
  TempRoot root;
  ClusterOptions options;
  options.session_root = root.path();
  options.num_cpus = 1;
  auto h = StartCluster(options);
  ASSERT_TRUE(h.ok()) << h.status();
  auto gcs = rpc::Gcs::NewStub(rpc::MakeChannel(h->gcs_address));
  rpc::PollEventsReply now;
  {
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 5000);
    rpc::PollEventsRequest req;
    ASSERT_TRUE(gcs->PollEvents(&ctx, req, &now).ok());
  }
  ASSERT_EQ(kill(h->pids.front(), SIGSTOP), 0);
  // Nothing will be published: the poll would wait its 60 s, its deadline
  // 90 s.
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 90000);
  rpc::PollEventsRequest req;
  req.set_after_seq(now.last_seq());
  req.set_timeout_ms(60000);
  rpc::PollEventsReply reply;
  absl::Time start = absl::Now();
  grpc::Status s = gcs->PollEvents(&ctx, req, &reply);
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_LT(took, absl::Milliseconds(rpc::kKeepaliveTimeMs +
                                     rpc::kKeepaliveTimeoutMs + 5000));
  kill(h->pids.front(), SIGCONT);
  StopCluster(*h);
}

TEST(NodeDeath, RayletReRegistersAfterTheHeadRestarts) {
  TempRoot root;
  ClusterOptions head;
  head.session_root = root.path();
  head.num_cpus = 1;
  head.gcs_port = FreePortBelowEphemeralRange();
  auto h = StartCluster(head);
  ASSERT_TRUE(h.ok()) << h.status();
  auto gcs = RestartHead(*h);
  ASSERT_TRUE(gcs.ok()) << gcs.status();
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto st = ClusterStatus(h->gcs_address);
        return st.ok() && CountNodes(*st, true) == 1;
      },
      absl::Seconds(10)));
  TerminateProcess(*gcs, absl::Seconds(2));
  StopCluster(*h);
}

// The nodes the head's object directory lists for `id`.
int CountLocations(const std::string& gcs_address, const std::string& id) {
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(gcs_address));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 2000);
  rpc::GetObjectLocationsRequest req;
  req.set_object_id(id);
  rpc::GetObjectLocationsReply reply;
  if (!stub->GetObjectLocations(&ctx, req, &reply).ok()) return -1;
  return reply.node_ids_size();
}

TEST(NodeDeath, CopiesAreReportedAgainAfterTheHeadRestarts) {
  Cluster cluster({.gcs_port = FreePortBelowEphemeralRange()});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  ASSERT_NE(cluster.AddNode({.resources = {{"far", 1}}}), nullptr);
  const ClusterHandle* h = &cluster.head().handle();
  cluster.Connect();
  auto made = Task(Pattern).SetResource("far", 1).Remote(int64_t{16} << 20);
  EXPECT_EQ(Get(made, 60000)->size(), size_t{16} << 20);  // a copy here
  EXPECT_TRUE(WaitUntil(
      [&] { return CountLocations(h->gcs_address, made.Binary()) == 1; },
      absl::Seconds(5)));
  auto gcs = RestartHead(*h);
  ASSERT_TRUE(gcs.ok()) << gcs.status();
  // The new head knows nothing until the raylets register and report again.
  EXPECT_TRUE(WaitUntil(
      [&] { return CountLocations(h->gcs_address, made.Binary()) == 1; },
      absl::Seconds(10)));
  loom::Shutdown();
  TerminateProcess(*gcs, absl::Seconds(2));
}

// Starts loom-test-driver and waits for its "ready" line.
pid_t StartDriver(const std::vector<std::string>& args,
                  const std::string& out) {
  SpawnOptions opts;
  opts.argv = {BinDir() + "/loom-test-driver"};
  opts.argv.insert(opts.argv.end(), args.begin(), args.end());
  opts.stdout_path = out;
  auto pid = Spawn(opts);
  if (!pid.ok()) return -1;
  WaitUntil(
      [&] {
        auto text = ReadFileToString(out);
        return text.ok() && text->find("ready") != std::string::npos;
      },
      absl::Seconds(20));
  return *pid;
}

// How much of resource "pool" the node that has it has free; -1 when the
// head cannot be asked.
double PoolAvailable(const std::string& head) {
  auto st = ClusterStatus(head);
  if (!st.ok()) return -1.0;
  for (const auto& n : st->nodes()) {
    auto q = n.available().quantities();
    if (n.total().quantities().contains("pool")) {
      return q.contains("pool") ? q.at("pool") : 0.0;
    }
  }
  return -1.0;
}

TEST(DriverDeath, ADeadDriversActorsStopButDetachedOnesStay) {
  TempRoot root;
  ClusterOptions head;
  head.session_root = root.path();
  head.num_cpus = 2;
  auto h = StartCluster(head);
  ASSERT_TRUE(h.ok()) << h.status();
  std::string out = root.path() + "/driver.out";
  pid_t driver = StartDriver({"actors", h->gcs_address, root.path()}, out);
  ASSERT_GT(driver, 0);
  int owned = 0, detached = 0;
  auto text = ReadFileToString(out);
  ASSERT_TRUE(text.ok());
  ASSERT_EQ(std::sscanf(text->c_str(), "ready %d %d", &owned, &detached), 2)
      << *text;
  ASSERT_EQ(kill(driver, SIGKILL), 0);
  absl::Time killed = absl::Now();
  WaitForExit(driver, absl::Seconds(5));
  EXPECT_TRUE(
      WaitUntil([&] { return kill(owned, 0) != 0; }, absl::Seconds(10)));
  // The detached one lives on for as long again as the owned one took to
  // stop (the time in which it would have stopped too).
  absl::Duration took = std::max(absl::Now() - killed, absl::Milliseconds(100));
  EXPECT_TRUE(StaysTrue([&] { return kill(detached, 0) == 0; }, took))
      << "the detached actor was stopped too";
  // A second driver finds the detached actor by name and calls it.
  InitOptions options;
  options.address = h->gcs_address;
  options.session_root = root.path();
  options.code_search_path = {TestLib()};
  loom::Init(options);
  auto keeper = GetActor<Counter>("keeper");
  EXPECT_EQ(*Get(keeper.Task(&Counter::Get).Remote(), 30000), 2);
  loom::Shutdown();
  // The head published each actor's states.
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(h->gcs_address));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  rpc::PollEventsRequest poll;
  rpc::PollEventsReply events;
  ASSERT_TRUE(stub->PollEvents(&ctx, poll, &events).ok());
  int alive = 0, dead = 0;
  for (const auto& e : events.events()) {
    if (e.kind() != rpc::Event::ACTOR_STATE) continue;
    alive += e.detail() == "ALIVE";
    dead += e.detail().rfind("DEAD", 0) == 0;
  }
  EXPECT_EQ(alive, 2);
  EXPECT_EQ(dead, 1);  // the driver's own actor
  StopCluster(*h);
}

TEST(DriverDeath, KilledDriverTakesItsPrivateClusterDown) {
  TempRoot root;
  pid_t driver = StartDriver({"private", root.path()}, root.path() + "/out");
  ASSERT_GT(driver, 0);
  ASSERT_NE(ReadFileToString(root.path() + "/out")->find("ready"),
            std::string::npos);
  // gcs, raylet and at least one worker run under the driver's session.
  EXPECT_GE(PidsMatching(root.path()).size(), 3u);
  kill(driver, SIGKILL);
  WaitForExit(driver, absl::Seconds(5));
  EXPECT_TRUE(WaitUntil([&] { return PidsMatching(root.path()).empty(); },
                        absl::Seconds(5)));
}

TEST(DriverDeath, ADeadDriversWorkersAndLeasesAreFreed) {
  TempRoot root, driver_root;
  ClusterOptions head;
  head.session_root = root.path();
  head.num_cpus = 2;
  auto h = StartCluster(head);
  ASSERT_TRUE(h.ok()) << h.status();
  std::string session = LatestSessionDir(root.path());
  pid_t driver = StartDriver({"join", h->gcs_address, root.path()},
                             driver_root.path() + "/out");
  ASSERT_GT(driver, 0);
  EXPECT_GE(RayletMetric(session, "loom_workers{state=\"leased\"}"), 1);
  kill(driver, SIGKILL);
  WaitForExit(driver, absl::Seconds(5));
  absl::Time killed = absl::Now();
  EXPECT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(session, "loom_workers{state=\"leased\"}") == 0;
      },
      absl::Seconds(5)));
  EXPECT_LT(absl::Now() - killed, absl::Seconds(5));
  // The head records the job as lost with its driver.
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(h->gcs_address));
  EXPECT_TRUE(WaitUntil(
      [&] {
        rpc::Context ctx;
        rpc::GetJobsReply jobs;
        stub->GetJobs(&ctx, rpc::GetJobsRequest(), &jobs);
        return jobs.jobs_size() == 1 &&
               jobs.jobs(0).state() == rpc::JobInfo::DRIVER_DIED;
      },
      absl::Seconds(5)));
  StopCluster(*h);
}

// A driver whose node dies (its raylet killed, the driver itself frozen, so
// that nothing on that node reports it): the head ends the job with the
// node, DRIVER_DIED, rather than keeping it running for ever.
TEST(DriverDeath, AJobEndsWhenItsDriversNodeDies) {
  TempRoot root, driver_root;
  ClusterOptions head;
  head.session_root = root.path();
  head.num_cpus = 2;
  head.node_timeout_ms = 1000;
  auto h = StartCluster(head);
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_EQ(h->pids.size(), 2u);  // loom-gcs, loom-raylet
  pid_t driver = StartDriver({"join", h->gcs_address, root.path()},
                             driver_root.path() + "/out");
  ASSERT_GT(driver, 0);
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(h->gcs_address));
  auto state = [&] {
    rpc::Context ctx;
    rpc::GetJobsReply jobs;
    stub->GetJobs(&ctx, rpc::GetJobsRequest(), &jobs);
    return jobs.jobs_size() == 1 ? jobs.jobs(0).state()
                                 : rpc::JobInfo::State(-1);
  };
  EXPECT_EQ(state(), rpc::JobInfo::RUNNING);
  kill(driver, SIGSTOP);
  kill(h->pids[1], SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return state() == rpc::JobInfo::DRIVER_DIED; },
                        absl::Seconds(10)));
  kill(driver, SIGKILL);
  WaitForExit(driver, absl::Seconds(5));
  StopCluster(*h);
}

// A driver killed while its task runs on another node (spilled there): the
// head publishes the job's end, and that node frees the lease and kills the
// worker, though the driver never talked to its raylet.
TEST(DriverDeath, ADeadDriversLeasesOnOtherNodesAreFreed) {
  Cluster cluster;
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  ASSERT_NE(cluster.AddNode({.resources = {{"pool", 1}}}), nullptr);
  TempRoot files;
  std::string path = files.path() + "/pid";
  pid_t driver =
      StartDriver({"pool", cluster.address(), cluster.head().root(), path},
                  files.path() + "/out");
  ASSERT_GT(driver, 0);
  ASSERT_TRUE(
      WaitUntil([&] { return !ReadPids(path).empty(); }, absl::Seconds(30)));
  int worker = ReadPids(path)[0];
  auto pool_free = [&] { return PoolAvailable(cluster.address()); };
  ASSERT_TRUE(WaitUntil([&] { return pool_free() == 0; }, absl::Seconds(5)));
  ASSERT_EQ(kill(driver, SIGKILL), 0);
  WaitForExit(driver, absl::Seconds(5));
  EXPECT_TRUE(
      WaitUntil([&] { return kill(worker, 0) != 0; }, absl::Seconds(5)));
  EXPECT_TRUE(WaitUntil([&] { return pool_free() == 1; }, absl::Seconds(5)));
}

// A driver killed while it owns objects in two nodes' stores (its put on
// its own node, a task's return on the other), and its actor there owns
// one too: every one of them is deleted (the actor's when the job's end
// stops it).
TEST(DriverDeath, ADeadDriversObjectsAreDeletedOnEveryNode) {
  Cluster cluster({.object_store_memory = 64 << 20});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* pool = cluster.AddNode({.num_cpus = 2,
                                         .resources = {{"pool", 2}},
                                         .object_store_memory = 64 << 20});
  ASSERT_NE(pool, nullptr);
  TempRoot files;
  pid_t driver =
      StartDriver({"objects", cluster.address(), cluster.head().root()},
                  files.path() + "/out");
  ASSERT_GT(driver, 0);
  auto out = ReadFileToString(files.path() + "/out");
  ASSERT_TRUE(out.ok() && absl::StrContains(*out, "ready"))
      << "the driver is not ready: " << out.value_or("");
  auto used = [&](Cluster::Node& n) {
    return RayletMetric(n.session_dir(), "loom_object_store_used_bytes");
  };
  const double four_mb = 4 << 20;
  // The gauges follow the stores on each raylet's tick.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return used(cluster.head()) >= four_mb && used(*pool) >= 2 * four_mb;
      },
      absl::Seconds(5)))
      << used(cluster.head()) << " and " << used(*pool);
  ASSERT_EQ(kill(driver, SIGKILL), 0);
  WaitForExit(driver, absl::Seconds(5));
  EXPECT_TRUE(WaitUntil([&] { return used(cluster.head()) < (1 << 20); },
                        absl::Seconds(5)))
      << used(cluster.head());
  EXPECT_TRUE(
      WaitUntil([&] { return used(*pool) < (1 << 20); }, absl::Seconds(5)))
      << used(*pool);
}

// A worker killed while it holds a lease on another node (a nested task
// spilled there) and owns an object in that node's store: the head tells
// that node, which frees the lease (killing its worker) and deletes the
// object.
TEST(WorkerDeath, ADeadWorkersLeasesAndObjectsOnOtherNodesAreFreed) {
  Cluster cluster({.num_cpus = 2});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* pool = cluster.AddNode({.num_cpus = 2,
                                         .resources = {{"pool", 2}},
                                         .object_store_memory = 64 << 20});
  ASSERT_NE(pool, nullptr);
  cluster.Connect();
  TempRoot files;
  std::string path = files.path() + "/pids";
  auto holder = loom::Task(HoldWorkOnThePool).SetMaxRetries(0).Remote(path);
  ASSERT_TRUE(
      WaitUntil([&] { return ReadPids(path).size() == 2; }, absl::Seconds(30)));
  int sleeper = ReadPids(path)[0], worker = ReadPids(path)[1];
  auto pool_free = [&] { return PoolAvailable(cluster.address()); };
  auto used = [&] {
    return RayletMetric(pool->session_dir(), "loom_object_store_used_bytes");
  };
  EXPECT_TRUE(WaitUntil([&] { return used() >= (4 << 20); }, absl::Seconds(5)));
  // The head's view follows the raylet's heartbeats: the sleeper's lease
  // shows there a beat later.
  EXPECT_TRUE(WaitUntil([&] { return pool_free() < 2; }, absl::Seconds(5)));
  ASSERT_EQ(kill(worker, SIGKILL), 0);
  EXPECT_TRUE(
      WaitUntil([&] { return kill(sleeper, 0) != 0; }, absl::Seconds(5)));
  EXPECT_TRUE(WaitUntil([&] { return pool_free() == 2; }, absl::Seconds(5)))
      << pool_free();
  EXPECT_TRUE(WaitUntil([&] { return used() < (4 << 20); }, absl::Seconds(5)))
      << used();
  EXPECT_THROW(loom::Get(holder, 10000), std::exception);
}

}  // namespace
}  // namespace loom::test

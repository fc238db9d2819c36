// Cluster tests: tasks end to end on real processes.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "runtime/local_cluster.h"
#include "src/common/session.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/private_cluster.h"
#include "tests/cluster/test_cluster.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST_F(PrivateClusterTest, TasksPutGetWaitAndErrors) {
  StartCluster(2);
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 100; ++i) refs.push_back(Task(Echo).Remote(i));
  auto values = Get(refs);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*values[i], i);

  // ObjectRef arguments (from tasks and from Put) resolve before the run.
  auto a = Task(Add).Remote(20, 1);
  auto b = Task(Add).Remote(a, Put(21));
  EXPECT_EQ(*Get(b), 42);
  EXPECT_EQ(*Get(Task(Repeat).Remote(std::string("ab"), 3)), "ababab");
  EXPECT_EQ(Get(Task(Range).Remote(4))->size(), 4u);

  // Wait returns the ready ones, in input order.
  // (Generous margins: parallel test runs load this 2-core machine.)
  auto slow = Task(SleepMs).Remote(20000);
  auto fast = Task(Echo).Remote(5);
  auto waited = Wait(std::vector<ObjectRef<int>>{slow, fast}, 1, 10000);
  ASSERT_EQ(waited.ready.size(), 1u);
  EXPECT_EQ(waited.ready[0], fast);
  ASSERT_EQ(waited.unready.size(), 1u);
  EXPECT_EQ(waited.unready[0], slow);
  EXPECT_THROW(Get(slow, 100), GetTimeoutError);

  // Remote exceptions keep type, message and task name; they propagate
  // through dependent tasks.
  auto bad = Task(Throw).Remote(std::string("no such row"));
  try {
    Get(bad);
    FAIL() << "expected TaskError";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.remote_type(), "std::out_of_range");
    EXPECT_EQ(e.remote_message(), "no such row");
    EXPECT_EQ(e.task_name(), "Throw");
  }
  EXPECT_THROW(Get(Task(Add).Remote(bad, 1)), TaskError);

  EXPECT_THAT([] { Task(Echo).SetResource("CPU", -1).Remote(1); },
              ThrowsMessage<Error>(HasSubstr("'CPU' has invalid quantity -1")));
}

TEST_F(PrivateClusterTest, LargeValuesGoThroughTheObjectStore) {
  StartCluster(2);
  std::string session = SessionDir();
  {
    // Put, a large return, a large argument and a large ref argument.
    std::string big(300 * 1024, 'x');
    big[12345] = 'y';
    auto put = Put(big);
    EXPECT_EQ(*Get(put), big);
    auto ret = Task(Repeat).Remote(std::string("ab"), 100 * 1024);
    EXPECT_EQ(Get(ret)->size(), 200u * 1024);
    auto arg = Task(Repeat).Remote(big, 2);
    EXPECT_EQ(*Get(arg), big + big);
    auto chained = Task(Repeat).Remote(ret, 2);
    EXPECT_EQ(Get(chained)->size(), 400u * 1024);
    EXPECT_TRUE(WaitUntil(  // the gauge follows within a raylet tick
        [&] {
          return RayletMetric(session, "loom_object_store_used_bytes") > 0;
        },
        absl::Seconds(3)));
  }
  // Every reference is gone: the store is empty again.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(session, "loom_object_store_used_bytes") == 0;
      },
      absl::Seconds(5)))
      << RayletMetric(session, "loom_object_store_used_bytes");
}

TEST_F(PrivateClusterTest, BuffersAndTensorsAreReadWithoutCopies) {
  StartCluster(1);
  std::string session = SessionDir();
  const size_t size = 64 << 20;
  {
    std::vector<uint8_t> bytes(size);
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 7);
    auto ref = Put(Buffer::Copy(bytes.data(), size));
    bytes.clear();
    bytes.shrink_to_fit();
    int64_t before = RssAnonKb();
    std::shared_ptr<Buffer> view = Get(ref);
    ASSERT_EQ(view->size(), size);
    EXPECT_TRUE(InStoreMapping(view->data()));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view->data()) % 64, 0u);
    uint64_t sum = 0;
    for (size_t i = 0; i < size; ++i) sum += view->data()[i];  // every byte
    EXPECT_EQ(view->data()[size - 1], static_cast<uint8_t>((size - 1) * 7));
    int64_t grown_kb = RssAnonKb() - before;
    EXPECT_LT(grown_kb, static_cast<int64_t>(size / 1024 / 4))
        << "reading a " << size << "-byte object grew RssAnon by " << grown_kb
        << " KiB";
    EXPECT_GT(sum, 0u);

    std::vector<float> m(512 * 256, 1.5f);
    auto tref = Put(
        Tensor("float32", {512, 256}, Buffer::Copy(m.data(), m.size() * 4)));
    auto t = Get(tref);
    EXPECT_EQ(t->dtype(), "float32");
    EXPECT_EQ(t->shape(), (std::vector<int64_t>{512, 256}));
    EXPECT_TRUE(InStoreMapping(t->data()));
    EXPECT_EQ(reinterpret_cast<const float*>(t->data())[1000], 1.5f);
    auto small = Get(Put(Buffer::Copy("abc", 3)));  // inline
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(small->data()), 3),
              "abc");
  }
  EXPECT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(session, "loom_object_store_used_bytes") == 0;
      },
      absl::Seconds(5)));
}

TEST_F(PrivateClusterTest, AFullStoreIsATypedErrorNamingTheSizes) {
  StartCluster(1, 16 << 20);
  std::vector<uint8_t> bytes(32 << 20, 1);
  try {
    Put(Buffer(bytes.data(), bytes.size(), nullptr));
    FAIL() << "expected ObjectStoreFullError";
  } catch (const ObjectStoreFullError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(16 << 20)),
              std::string::npos)
        << "message: " << e.what();  // names the store's capacity
  }
  // A task whose return does not fit fails the same way, at Get.
  EXPECT_THROW(Get(Task(Repeat).Remote(std::string("x"), 20 << 20)),
               ObjectStoreFullError);
  // What fits still works.
  EXPECT_EQ(Get(Task(Repeat).Remote(std::string("ab"), 1 << 20))->size(),
            2u << 20);
}

TEST_F(PrivateClusterTest, ThreeTimesTheStoreStaysReadableBySpilling) {
  StartCluster(1, 32 << 20);
  std::string session = SessionDir();
  {
    std::vector<ObjectRef<Buffer>> refs;
    std::vector<uint8_t> bytes(8 << 20);
    for (int i = 0; i < 12; ++i) {  // 96 MiB into a 32 MiB store
      std::fill(bytes.begin(), bytes.end(), static_cast<uint8_t>(i + 1));
      refs.push_back(Put(Buffer(bytes.data(), bytes.size(), nullptr)));
    }
    auto memory =
        RunCommand(BinDir() + "/loom memory --session-root " + root_.path());
    EXPECT_EQ(memory.output.find("spilled to disk: 0 B"), std::string::npos)
        << memory.output;
    for (int i = 0; i < 12; ++i) {
      std::shared_ptr<Buffer> b = Get(refs[i], 30000);
      ASSERT_EQ(b->size(), 8u << 20);
      EXPECT_EQ(b->data()[0], i + 1);
      EXPECT_EQ(b->data()[(8 << 20) - 1], i + 1);
    }
  }
  // References gone: nothing left in memory or on disk (frees are
  // asynchronous, so wait for both).
  EXPECT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(session, "loom_object_store_used_bytes") == 0 &&
               RunCommand("ls -A " + session + "/spill").output.empty();
      },
      absl::Seconds(5)))
      << "left behind: " << RunCommand("ls -A " + session + "/spill").output;
}

// A tmpfs of `bytes` mounted on `dir` for the test's life (root only): a
// disk that really fills, without touching the machine's.
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, int64_t bytes) : dir_(dir) {
    std::string size = "size=" + std::to_string(bytes);
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, size.c_str()) != 0) {
      error_ = strerror(errno);
    }
  }
  ~SmallDisk() {
    if (error_.empty()) umount2(dir_.c_str(), MNT_DETACH);
  }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  std::string error_;
};

TEST_F(PrivateClusterTest, AFullSpillDiskFailsNewPutsAndKeepsSpilledReadable) {
  StartCluster(1, 32 << 20);
  std::string spill =
      std::filesystem::canonical(SessionDir() + "/spill").string();
  SmallDisk disk(spill, 12 << 20);  // one 8 MiB object, not two
  if (!disk.error().empty()) {
    GTEST_SKIP() << "cannot mount a tmpfs on " << spill << ": " << disk.error();
  }
  std::vector<ObjectRef<Buffer>> refs;
  std::vector<uint8_t> bytes(8 << 20);
  std::string full;
  for (int i = 0; i < 10 && full.empty(); ++i) {
    std::fill(bytes.begin(), bytes.end(), static_cast<uint8_t>(i + 1));
    try {
      refs.push_back(Put(Buffer(bytes.data(), bytes.size(), nullptr)));
    } catch (const ObjectStoreFullError& e) {
      full = e.what();
    }
  }
  // The store filled, then the disk: the error names the disk.
  ASSERT_FALSE(full.empty()) << refs.size() << " puts of 8 MiB all fit";
  EXPECT_THAT(full, HasSubstr(spill + " has "));
  EXPECT_THAT(full, HasSubstr(" bytes free"));
  EXPECT_GT(refs.size(), 3u) << full;  // one or more spilled first
  EXPECT_FALSE(RunCommand("ls -A " + spill).output.empty());
  // Every object put is readable, the spilled ones too.
  for (size_t i = 0; i < refs.size(); ++i) {
    try {
      std::shared_ptr<Buffer> b = Get(refs[i], 30000);
      ASSERT_EQ(b->size(), 8u << 20);
      EXPECT_EQ(b->data()[0], i + 1);
      EXPECT_EQ(b->data()[(8 << 20) - 1], i + 1);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "object " << i << ": " << e.what();
    }
  }
}

TEST_F(PrivateClusterTest, FiveDeepNestingOnOneCpu) {
  StartCluster(1);
  try {
    EXPECT_EQ(*Get(Task(Nest).Remote(5), 30000), 5);
  } catch (const std::exception& e) {
    FAIL() << "nested tasks failed: " << e.what();
  }
}

// The C++ fork server binds every symbol as it starts, so that its forks
// inherit resolved tables; the workers' own children bind as usual.
TEST_F(PrivateClusterTest, TheForkServerBindsEagerlyItsWorkersDoNot) {
  StartCluster(1);
  EXPECT_EQ(*Get(Task(BindNow).Remote(), 30000), "server 1, worker -");
}

TEST_F(PrivateClusterTest, TenThousandTasksNeedNoMoreLeasesThanWorkers) {
  StartCluster(2);
  std::vector<ObjectRef<int>> refs;
  refs.reserve(10000);
  for (int i = 0; i < 10000; ++i) refs.push_back(Task(Echo).Remote(i));
  auto values = Get(refs);
  int64_t sum = 0;
  for (const auto& v : values) sum += *v;
  EXPECT_EQ(sum, int64_t{10000} * 9999 / 2);
  double granted = RayletMetric(SessionDir(), "loom_leases_granted_total");
  double workers = RayletMetric(SessionDir(), "loom_workers_started_total");
  EXPECT_GE(granted, 1);
  EXPECT_LE(granted, workers);
  // Task counters reach the raylet's /metrics within a report period.
  // (Workers and the driver report on their own 1 s timers.)
  EXPECT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(SessionDir(), "loom_tasks_finished_total") >= 10000;
      },
      absl::Seconds(5)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(SessionDir(), "loom_tasks_submitted_total") >=
               10000;
      },
      absl::Seconds(5)))
      << RayletMetric(SessionDir(), "loom_tasks_submitted_total");
}

TEST_F(PrivateClusterTest, InfeasibleDemandFailsWithinSeconds) {
  StartCluster(1);
  absl::Time start = absl::Now();
  auto ref = Task(Echo).SetResource("unicorn", 1).Remote(1);
  try {
    Get(ref, 20000);
    FAIL() << "expected InfeasibleError";
  } catch (const InfeasibleError& e) {
    EXPECT_NE(std::string(e.what()).find("unicorn"), std::string::npos);
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(PrivateClusterTest, StrategiesFromTheCppApi) {
  StartCluster(1);
  // SPREAD and a label this node has run; a label no node has, or a node
  // that does not exist, fail as infeasible, saying where they looked.
  EXPECT_EQ(*Get(Task(Echo).SetSpread().Remote(3)), 3);
  auto nowhere = Task(Echo).SetLabelSelector({{"zone", "z"}}).Remote(1);
  auto missing = Task(Echo).SetNodeAffinity(std::string(32, 'a')).Remote(1);
  for (auto* ref : {&nowhere, &missing}) {
    try {
      Get(*ref, 20000);
      FAIL() << "expected InfeasibleError";
    } catch (const InfeasibleError& e) {
      EXPECT_TRUE(std::string(e.what()).find("zone=z") != std::string::npos ||
                  std::string(e.what()).find("on node") != std::string::npos)
          << e.what();
    }
  }
  EXPECT_THAT([] { Task(Echo).SetNodeAffinity("not-hex").Remote(1); },
              ThrowsMessage<Error>(HasSubstr("got 'not-hex'")));
}

TEST_F(PrivateClusterTest, PlacementGroupsFromTheCppApi) {
  StartCluster(2);
  auto pg = CreatePlacementGroup({{{"CPU", 1}}, {{"CPU", 1}}},
                                 PlacementStrategy::kStrictPack);
  ASSERT_TRUE(pg.Wait(30000));
  // Tasks and actors run inside the bundles (the node's own CPUs are all
  // reserved by the group, so they could run nowhere else).
  EXPECT_EQ(*Get(Task(Echo).SetPlacementGroup(pg, 0).Remote(5)), 5);
  EXPECT_EQ(*Get(Task(Echo).SetPlacementGroup(pg).Remote(6)), 6);
  auto counter = Actor(MakeCounter).SetPlacementGroup(pg, 1).Remote(10);
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1)), 11);
  RemovePlacementGroup(pg);
  // Removal stops the actor; a group larger than the node is infeasible.
  EXPECT_THROW(Get(counter.Task(&Counter::Add).Remote(1), 30000),
               ActorDiedError);
  auto big = CreatePlacementGroup({{{"CPU", 3}}});
  EXPECT_THROW(big.Wait(30000), InfeasibleError);
  EXPECT_THAT([] { CreatePlacementGroup({}); },
              ThrowsMessage<Error>(HasSubstr("needs 1 to 1000 bundles")));
}

// A head (1 CPU) plus raylets that join it, each with its own session root.
class MultiNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.status().ok()) << cluster_.status();
  }
  Cluster cluster_;
};

TEST_F(MultiNodeTest, TasksNeedingACustomResourceRunWhereItIs) {
  ASSERT_NE(cluster_.AddNode(), nullptr);
  Cluster::Node* special = cluster_.AddNode({.resources = {{"special", 2}}});
  ASSERT_NE(special, nullptr);
  pid_t special_raylet = special->raylet_pid();
  cluster_.Connect();
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) {
    refs.push_back(Task(ParentPid).SetResource("special", 1).Remote());
  }
  for (const auto& pid : Get(refs, 30000)) EXPECT_EQ(*pid, special_raylet);
}

TEST_F(MultiNodeTest, WorkerPrintsOnAnotherNodeReachTheDriversStdoutAndStderr) {
  ASSERT_NE(cluster_.AddNode({.resources = {{"far", 1}}}), nullptr);
  auto status = ClusterStatus(cluster_.address());
  ASSERT_TRUE(status.ok());
  std::string far_ip;
  for (const auto& n : status->nodes()) {
    if (n.total().quantities().contains("far")) far_ip = n.host();
  }
  ASSERT_FALSE(far_ip.empty());
  std::string token = std::to_string(getpid()) + "-" +
                      std::to_string(absl::ToUnixNanos(absl::Now()));
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  cluster_.Connect();
  int out_pid =
      *Get(Task(PrintLine).SetResource("far", 1).Remote("out-" + token, false),
           60000);
  int err_pid =
      *Get(Task(PrintLine).SetResource("far", 1).Remote("err-" + token, true),
           60000);
  loom::Shutdown();  // prints what the workers printed before it returns
  std::string out = testing::internal::GetCapturedStdout();
  std::string err = testing::internal::GetCapturedStderr();
  std::string prefix = "(pid=" + std::to_string(out_pid) + ", ip=" + far_ip;
  EXPECT_NE(out.find(prefix + ") out-" + token + "\n"), std::string::npos)
      << out;
  prefix = "(pid=" + std::to_string(err_pid) + ", ip=" + far_ip;
  EXPECT_NE(err.find(prefix + ") err-" + token + "\n"), std::string::npos)
      << err;
  EXPECT_EQ(out.find("err-" + token), std::string::npos);
  EXPECT_EQ(err.find("out-" + token), std::string::npos);
}

TEST_F(MultiNodeTest, ObjectsMoveBetweenNodes) {
  ASSERT_NE(cluster_.AddNode({.resources = {{"far", 2}}}), nullptr);
  cluster_.Connect();
  // Made on the far node, read here: the head's raylet pulls it.
  const int64_t size = (64 << 20) + 12345;
  auto far = Task(Pattern).SetResource("far", 1).Remote(size);
  std::shared_ptr<std::string> here = Get(far, 60000);
  ASSERT_EQ(static_cast<int64_t>(here->size()), size);
  EXPECT_TRUE(*Get(Task(IsPattern).Remote(*here), 60000));  // a large argument
  bool exact = true;
  for (int64_t i = 0; i < size && exact; ++i) {
    exact = (*here)[i] == static_cast<char>((i * 31 + 7) % 251);
  }
  EXPECT_TRUE(exact);
  // Passed on to tasks on either node, several at once: one transfer each.
  std::vector<ObjectRef<bool>> checks;
  for (int i = 0; i < 3; ++i) checks.push_back(Task(IsPattern).Remote(far));
  checks.push_back(Task(IsPattern).SetResource("far", 1).Remote(far));
  for (const auto& ok : Get(checks, 60000)) EXPECT_TRUE(*ok);
}

TEST_F(MultiNodeTest, DroppingTheLastReferenceFreesEveryCopy) {
  Cluster::Node* far_node = cluster_.AddNode({.resources = {{"far", 1}}});
  ASSERT_NE(far_node, nullptr);
  cluster_.Connect();
  std::string head_session = cluster_.head().session_dir(),
              far_session = far_node->session_dir();
  {
    auto far = Task(Pattern).SetResource("far", 1).Remote(int64_t{32} << 20);
    EXPECT_EQ(Get(far, 60000)->size(), 32u << 20);  // pulled here: two copies
    EXPECT_TRUE(WaitUntil(
        [&] {
          return RayletMetric(head_session, "loom_object_store_used_bytes") >
                     0 &&
                 RayletMetric(far_session, "loom_object_store_used_bytes") > 0;
        },
        absl::Seconds(5)));
  }
  EXPECT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(head_session, "loom_object_store_used_bytes") ==
                   0 &&
               RayletMetric(far_session, "loom_object_store_used_bytes") == 0;
      },
      absl::Seconds(5)))
      << "head " << RayletMetric(head_session, "loom_object_store_used_bytes")
      << " far " << RayletMetric(far_session, "loom_object_store_used_bytes");
}

TEST_F(MultiNodeTest, AGibibyteObjectArrivesByteExact) {
  ASSERT_NE(cluster_.AddNode({.resources = {{"far", 1}}}), nullptr);
  cluster_.Connect();
  const int64_t size = int64_t{1} << 30;
  auto far = Task(Pattern).SetResource("far", 1).Remote(size);
  // Checked on this node, after the pull, by a task reading it in place.
  EXPECT_TRUE(*Get(Task(IsPattern).Remote(far), 300000));
}

TEST_F(MultiNodeTest, APullWhoseSourceDiedUsesAnotherCopy) {
  Cluster::Node* a = cluster_.AddNode({.resources = {{"a", 1}}});
  ASSERT_NE(a, nullptr);
  ASSERT_NE(cluster_.AddNode({.resources = {{"b", 1}}}), nullptr);
  cluster_.Connect();
  const int64_t size = int64_t{24} << 20;
  auto made = Task(Pattern).SetResource("a", 1).Remote(size);
  // Read on node b: a second copy, listed in the head's directory.
  EXPECT_TRUE(*Get(Task(IsPattern).SetResource("b", 1).Remote(made), 60000));
  // The primary's node dies; this node's raylet pulls b's copy instead.
  ASSERT_EQ(kill(a->raylet_pid(), SIGKILL), 0);
  std::shared_ptr<std::string> here = Get(made, 60000);
  ASSERT_EQ(static_cast<int64_t>(here->size()), size);
  EXPECT_TRUE(IsPattern(*here));
}

TEST_F(MultiNodeTest, AnActorOnANodeThatDiesRestartsOnAnother) {
  Cluster::Node* node_a = cluster_.AddNode({.resources = {{"pool", 1}}});
  ASSERT_NE(node_a, nullptr);
  Cluster::Node* node_b = cluster_.AddNode({.resources = {{"pool", 1}}});
  ASSERT_NE(node_b, nullptr);
  cluster_.Connect();
  auto counter = Actor(MakeCounter)
                     .SetResource("pool", 1)
                     .SetMaxRestarts(1)
                     .SetMaxTaskRetries(-1)
                     .Remote(5);
  int raylet = *Get(counter.Task(&Counter::RayletPid).Remote(), 30000);
  int actor = *Get(counter.Task(&Counter::Pid).Remote(), 30000);
  pid_t a = node_a->raylet_pid(), b = node_b->raylet_pid();
  ASSERT_TRUE(raylet == a || raylet == b) << raylet;
  ASSERT_EQ(kill(raylet, SIGKILL), 0);
  // Its workers follow it (their lifeline breaks).
  ASSERT_TRUE(WaitUntil([&] { return kill(actor, 0) != 0; }, absl::Seconds(5)));
  // Restarted on the other node, the factory run again.
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 60000), 6);
  EXPECT_EQ(*Get(counter.Task(&Counter::RayletPid).Remote(), 30000),
            raylet == a ? b : a);
}

TEST_F(MultiNodeTest, ANodeThatJoinsInTheGracePeriodRunsTheDemand) {
  cluster_.Connect();
  auto ref = Task(ParentPid).SetResource("late", 1).Remote();
  // The node joins once the demand waits in the head's raylet's queue.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(cluster_.head().session_dir(),
                            "loom_lease_queue_length") >= 1;
      },
      absl::Seconds(2)));
  Cluster::Node* late = cluster_.AddNode({.resources = {{"late", 1}}});
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(*Get(ref, 20000), late->raylet_pid());
}

// The test cluster helper itself: nodes join with what they were given,
// are listed with distinct ids, run what needs them, and go when removed,
// gracefully (dead at once) or killed (dead after the node timeout).
TEST(TestCluster, NodesJoinRunWorkAndLeave) {
  Cluster cluster({.node_timeout_ms = 1000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* b = cluster.AddNode({.num_cpus = 2,
                                      .resources = {{"special", 1}},
                                      .labels = {{"zone", "b"}}});
  ASSERT_NE(b, nullptr);
  Cluster::Node* c = cluster.AddNode();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(cluster.WaitForNodes());
  EXPECT_EQ(cluster.nodes().size(), 3u);
  auto status = ClusterStatus(cluster.address());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(CountNodes(*status, true), 3);
  for (const auto& n : status->nodes()) {
    if (n.node_id() != b->id()) continue;
    EXPECT_EQ(n.total().quantities().at("CPU"), 2);
    EXPECT_EQ(n.labels().at("zone"), "b");
  }
  EXPECT_NE(b->id(), c->id());
  EXPECT_NE(b->id(), cluster.head().id());
  cluster.Connect();
  EXPECT_EQ(*Get(Task(ParentPid).SetResource("special", 1).Remote(), 30000),
            b->raylet_pid());
  EXPECT_EQ(*Get(Task(ParentPid).SetNodeAffinity(c->id_hex()).Remote(), 30000),
            c->raylet_pid());
  cluster.RemoveNode(b);
  EXPECT_TRUE(WaitUntil([&] { return PidsMatching(b->root()).empty(); },
                        absl::Seconds(5)));
  status = ClusterStatus(cluster.address());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(CountNodes(*status, false), 1);  // at once: it unregistered
  cluster.RemoveNode(c, /*graceful=*/false);
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto st = ClusterStatus(cluster.address());
        return st.ok() && CountNodes(*st, false) == 2;
      },
      absl::Seconds(10)));
  EXPECT_EQ(cluster.nodes().size(), 1u);
  EXPECT_TRUE(cluster.WaitForNodes());
}

// The head's raylet heartbeats rarely, so for the whole test it knows no
// other node; the head does. What only the joined node can run is handed
// to the head's scheduler, which places it there, long before the
// request's infeasible grace period (3 s) would have failed it.
TEST(HeadScheduling, WhatARayletCannotPlaceTheHeadPlaces) {
  Cluster cluster({.heartbeat_ms = 60000, .node_timeout_ms = 120000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* node = cluster.AddNode({.resources = {{"special", 1}}});
  ASSERT_NE(node, nullptr);
  cluster.Connect();
  absl::Time start = absl::Now();
  auto ref = Task(ParentPid).SetResource("special", 1).Remote();
  EXPECT_EQ(*Get(ref, 20000), node->raylet_pid());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

// loom::state: the tasks a C++ driver ran, as the head records them from
// task events, listed, fetched, summarized and traced; bad filters throw.
TEST_F(PrivateClusterTest, StateApiListsTheTasksItRan) {
  StartCluster(2);
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 5; ++i) refs.push_back(Task(Add).Remote(i, 1));
  for (auto& r : refs) ASSERT_NE(Get(r, 30000), nullptr);
  EXPECT_THROW(Get(Task(Throw).Remote(std::string("no")), 30000), TaskError);
  state::Listing finished;
  for (int i = 0; i < 100; ++i) {
    finished = state::List("tasks", {"name=Add", "state=FINISHED"});
    bool ran = finished.rows.size() == 5 &&
               state::List("tasks", {"state=FAILED"}).rows.size() == 1;
    for (const auto& row : finished.rows) ran = ran && !row.at("pid").empty();
    if (ran) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(finished.rows.size(), 5u);
  EXPECT_EQ(finished.total, 5);
  auto failed = state::List("tasks", {"state=FAILED"}, 10, true);
  ASSERT_EQ(failed.rows.size(), 1u);
  EXPECT_EQ(failed.rows[0].at("error_type"), "TASK_ERROR");
  auto one = state::Get("tasks", finished.rows[0].at("task_id").substr(0, 14));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->at("name"), "Add");
  EXPECT_FALSE(state::Get("tasks", "ffffffffffffffff").has_value());
  auto summary = state::Summarize("tasks");
  bool counted = false;
  for (const auto& row : summary.rows) {
    if (row.at("name") == "Add") counted = row.at("FINISHED") == "5";
  }
  EXPECT_TRUE(counted);
  EXPECT_THROW(state::List("tasks", {"colour=red"}), Error);
  EXPECT_THROW(state::List("things"), Error);
  std::string trace = root_.path() + "/trace.json";
  state::Timeline(trace);
  std::ifstream in(trace);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"traceEvents\""), std::string::npos);
  EXPECT_NE(text.find("\"run Add\""), std::string::npos);
}

}  // namespace
}  // namespace loom::test

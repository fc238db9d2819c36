// Cluster tests: the loom command line.
#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"
#include "src/common/version.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

std::string Loom(const std::string& args) { return BinDir() + "/loom " + args; }

// `loom start --head` (1 CPU, any port, on `ip`) under `root` with `flags`:
// the address it prints; empty (the output printed) when it fails.
std::string StartHead(const std::string& root, const std::string& flags,
                      const std::string& ip) {
  auto start =
      RunCommand(Loom("start --head --port 0 --num-cpus 1 " + flags +
                      " --node-ip-address " + ip + " --session-root " + root));
  std::smatch m;
  std::string pattern = "address:\\s+(" +
                        std::regex_replace(ip, std::regex("\\."), "\\.") +
                        ":\\d+)";
  if (start.exit_code != 0 ||
      !std::regex_search(start.output, m, std::regex(pattern))) {
    ADD_FAILURE() << start.output;
    return "";
  }
  return m[1];
}

// `loom start --address` (1 CPU) under `root` with `flags`, with the token of
// the head started under `head_root`, as a user of another machine would.
bool Join(const std::string& address, const std::string& root,
          const std::string& head_root, const std::string& flags) {
  auto join = RunCommand(Loom("start --address " + address +
                              " --num-cpus 1 --auth-token-file " + head_root +
                              "/session_latest/auth_token " + flags +
                              " --session-root " + root));
  EXPECT_EQ(join.exit_code, 0) << join.output;
  return join.exit_code == 0;
}

TEST(Cli, StartStatusStopLeavesNoProcesses) {
  TempRoot head_root, node_root;
  std::string address = StartHead(head_root.path(), "", "127.0.0.1");
  ASSERT_FALSE(address.empty());
  ASSERT_TRUE(Join(address, node_root.path(), head_root.path(),
                   "--node-ip-address 127.0.0.1 --resources '{\"accel\": 2}'"));

  auto status = RunCommand(Loom("status --session-root " + head_root.path()));
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("2 nodes alive, 0 dead"), std::string::npos)
      << status.output;
  EXPECT_NE(status.output.find("accel"), std::string::npos) << status.output;

  EXPECT_FALSE(PidsMatching(head_root.path()).empty());
  EXPECT_EQ(
      RunCommand(Loom("stop --session-root " + node_root.path())).exit_code, 0);
  auto after = RunCommand(Loom("status --session-root " + head_root.path()));
  EXPECT_NE(after.output.find("1 node alive, 1 dead"), std::string::npos)
      << after.output;
  EXPECT_EQ(
      RunCommand(Loom("stop --session-root " + head_root.path())).exit_code, 0);
  EXPECT_TRUE(WaitUntil(
      [&] {
        return PidsMatching(head_root.path()).empty() &&
               PidsMatching(node_root.path()).empty();
      },
      absl::Seconds(5)));
}

// Every daemon of a node listens on and advertises its --node-ip-address,
// not 127.0.0.1: a head on 127.0.0.2 and a node on 127.0.0.3 run a driver's
// tasks and actors, move objects both ways and reach the driver as owner.
TEST(Cli, NodesListenOnAndAdvertiseTheirNodeIp) {
  TempRoot head_root, node_root;
  std::string address = StartHead(head_root.path(), "", "127.0.0.2");
  ASSERT_FALSE(address.empty());
  ASSERT_TRUE(Join(address, node_root.path(), head_root.path(),
                   "--node-ip-address 127.0.0.3 --resources '{\"pool\": 1}'"));
  auto nodes =
      RunCommand(Loom("list nodes --session-root " + head_root.path()));
  ASSERT_EQ(nodes.exit_code, 0) << nodes.output;
  EXPECT_NE(nodes.output.find("127.0.0.2"), std::string::npos) << nodes.output;
  EXPECT_NE(nodes.output.find("127.0.0.3"), std::string::npos) << nodes.output;
  EXPECT_EQ(nodes.output.find("127.0.0.1"), std::string::npos) << nodes.output;
  {
    InitOptions options;
    options.address = address;
    options.session_root = head_root.path();
    options.code_search_path = {TestLib()};
    loom::Init(options);
    // A value the driver owns, read on the other node; the copy it returns
    // comes back here.
    std::string big(300000, 'y');
    ObjectRef<std::string> ref = Put(big);
    auto twice = Task(Repeat).SetResource("pool", 1).Remote(ref, 2);
    EXPECT_EQ(*Get(twice, 60000), big + big);
    auto counter = Actor(MakeCounter).SetResource("pool", 1).Remote(5);
    EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 60000), 6);
    loom::Shutdown();
  }
  EXPECT_EQ(
      RunCommand(Loom("stop --session-root " + node_root.path())).exit_code, 0);
  EXPECT_EQ(
      RunCommand(Loom("stop --session-root " + head_root.path())).exit_code, 0);
}

TEST(Cli, ANodeIpMustBeOneOfThisMachinesIpv4Addresses) {
  TempRoot root;
  auto foreign = RunCommand(Loom(
      "start --head --port 0 --node-ip-address 203.0.113.9 --session-root " +
      root.path()));
  EXPECT_NE(foreign.exit_code, 0);
  EXPECT_NE(foreign.output.find("not an address of this machine"),
            std::string::npos)
      << foreign.output;
  auto garbage = RunCommand(
      Loom("start --head --port 0 --node-ip-address node-1 --session-root " +
           root.path()));
  EXPECT_NE(garbage.exit_code, 0);
  EXPECT_NE(garbage.output.find("not an IPv4 address"), std::string::npos)
      << garbage.output;
  EXPECT_TRUE(PidsMatching(root.path()).empty());
}

TEST(Cli, BadArgumentsGetClearErrors) {
  TempRoot root;
  auto neither = RunCommand(Loom("start --session-root " + root.path()));
  EXPECT_NE(neither.exit_code, 0);
  EXPECT_NE(neither.output.find("--head or --address"), std::string::npos);
  auto bad_json = RunCommand(
      Loom("start --head --port 0 --resources '{oops' --session-root " +
           root.path()));
  EXPECT_NE(bad_json.exit_code, 0);
  EXPECT_NE(bad_json.output.find("JSON"), std::string::npos) << bad_json.output;
  auto negative = RunCommand(
      Loom("start --head --port 0 --resources '{\"x\": -1}' --session-root " +
           root.path()));
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_NE(negative.output.find("invalid quantity"), std::string::npos)
      << negative.output;
  auto status = RunCommand(Loom("status --session-root " + root.path()));
  EXPECT_NE(status.exit_code, 0);
  EXPECT_NE(status.output.find("no cluster found"), std::string::npos);
  EXPECT_TRUE(PidsMatching(root.path()).empty());
}

TEST(Cli, APortInUseIsRefused) {
  TempRoot a, b;
  auto first =
      RunCommand(Loom("start --head --port 0 --node-ip-address 127.0.0.1 "
                      "--session-root " +
                      a.path()));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(first.output, m, std::regex("127\\.0\\.0\\.1:(\\d+)")));
  auto second = RunCommand(Loom("start --head --port " + std::string(m[1]) +
                                " --node-ip-address 127.0.0.1 --session-root " +
                                b.path()));
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.output.find("cannot listen"), std::string::npos)
      << second.output;
  RunCommand(Loom("stop --session-root " + a.path()));
  RunCommand(Loom("stop --session-root " + b.path()));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return PidsMatching(a.path()).empty() && PidsMatching(b.path()).empty();
      },
      absl::Seconds(5)));
}

// A driver joining a cluster with no raylet on this machine (a head alone,
// whose only node runs on another host) is told to start one here or to run
// the driver inside the cluster, and is left uninitialized.
TEST(Join, ADriverOnAMachineWithoutARayletIsToldToStartOne) {
  TempRoot root;
  auto head = StartHeadOnly(root.path());
  ASSERT_TRUE(head.ok()) << head.status();
  const std::string& address = head->gcs_address;
  InitOptions options;
  options.address = address;
  options.session_root = root.path();
  auto refused = [&](const std::string& where) {
    return ::testing::ThrowsMessage<Error>(::testing::AllOf(
        ::testing::HasSubstr("no raylet of the cluster at " + address +
                             " runs on this machine (" + where + ")"),
        ::testing::HasSubstr("`loom start --address " + address + "`"),
        ::testing::HasSubstr("job submission")));
  };
  EXPECT_THAT([&] { loom::Init(options); },
              refused("the head lists no alive node"));
  EXPECT_FALSE(loom::IsInitialized());
  // A node on another host (registered by hand: nothing connects to it).
  auto gcs = rpc::Gcs::NewStub(rpc::MakeChannel(address));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  rpc::RegisterNodeRequest req;
  req.mutable_node()->set_node_id(NodeId::FromRandom().Binary());
  req.mutable_node()->set_host("198.51.100.7");
  req.mutable_node()->set_raylet_port(7000);
  (*req.mutable_node()->mutable_total()->mutable_quantities())["CPU"] = 1;
  req.set_protocol_version(kProtocolVersion);
  req.set_build_version(BuildVersion());
  rpc::RegisterNodeReply reply;
  ASSERT_TRUE(gcs->RegisterNode(&ctx, req, &reply).ok());
  EXPECT_THAT([&] { loom::Init(options); },
              refused("its nodes run on 198.51.100.7"));
  EXPECT_FALSE(loom::IsInitialized());
  StopCluster(*head);
}

}  // namespace
}  // namespace loom::test

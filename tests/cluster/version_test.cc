// Cluster tests: a node whose protocol or build differs from the head's is
// refused at registration, and says so.
#include "src/common/version.h"

#include <sys/wait.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/daemon.h"
#include "src/common/ids.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "tests/cluster/cluster_util.h"

namespace loom::test {
namespace {

using ::testing::HasSubstr;

constexpr char kOtherBuild[] = "0.0.1+gdeadbeefdead";

// A well-formed registration of a new node, with `protocol` and `build`.
rpc::RegisterNodeRequest Registration(int protocol, const std::string& build) {
  rpc::RegisterNodeRequest req;
  req.mutable_node()->set_node_id(NodeId::FromRandom().Binary());
  req.mutable_node()->set_host("127.0.0.1");
  req.mutable_node()->set_raylet_port(1);
  (*req.mutable_node()->mutable_total()->mutable_quantities())["CPU"] = 1;
  req.set_protocol_version(protocol);
  req.set_build_version(build);
  return req;
}

// Whether the head lists the node `req` registered.
bool Listed(const std::string& gcs, const rpc::RegisterNodeRequest& req) {
  auto status = ClusterStatus(gcs);
  EXPECT_TRUE(status.ok()) << status.status();
  if (!status.ok()) return false;
  for (const auto& n : status->nodes()) {
    if (n.node_id() == req.node().node_id()) return true;
  }
  return false;
}

TEST(Version, TheHeadRefusesANodeOfAnotherProtocolOrBuild) {
  TempRoot root;
  auto head = StartHeadOnly(root.path());
  ASSERT_TRUE(head.ok()) << head.status();
  auto gcs = rpc::Gcs::NewStub(rpc::MakeChannel(head->gcs_address));
  auto call = [&](const rpc::RegisterNodeRequest& req) {
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 5000);
    rpc::RegisterNodeReply reply;
    return gcs->RegisterNode(&ctx, req, &reply);
  };
  const std::string head_says = absl::StrCat(
      "head runs protocol ", kProtocolVersion, " (build ", BuildVersion(), ")");

  auto other_protocol = Registration(kProtocolVersion + 1, BuildVersion());
  grpc::Status s = call(other_protocol);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(
      s.error_message(),
      HasSubstr(absl::StrCat("node runs protocol ", kProtocolVersion + 1,
                             " (build ", BuildVersion(), ")")));
  EXPECT_THAT(s.error_message(), HasSubstr(head_says));
  EXPECT_FALSE(Listed(head->gcs_address, other_protocol));

  auto other_build = Registration(kProtocolVersion, kOtherBuild);
  s = call(other_build);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(),
              HasSubstr(absl::StrCat("node runs protocol ", kProtocolVersion,
                                     " (build ", kOtherBuild, ")")));
  EXPECT_THAT(s.error_message(), HasSubstr(head_says));
  EXPECT_FALSE(Listed(head->gcs_address, other_build));

  // One that sends no version (an older node) is refused too.
  auto none = Registration(0, "");
  EXPECT_EQ(call(none).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_FALSE(Listed(head->gcs_address, none));

  // The same registration with the head's versions is taken.
  auto same = Registration(kProtocolVersion, BuildVersion());
  s = call(same);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(Listed(head->gcs_address, same));
  StopCluster(*head);
}

// A raylet of another build than its head's: `loom start --address` fails
// and shows both versions; the raylet itself exits with
// kVersionMismatchExitCode and the message on stderr and in its log.
TEST(Version, ARayletOfAnotherBuildExitsAndLoomStartSaysWhy) {
  TempRoot head_root, node_root;
  auto head = StartHeadOnly(head_root.path(),
                            {"--build-version-for-testing", kOtherBuild});
  ASSERT_TRUE(head.ok()) << head.status();
  const std::string why = absl::StrCat(
      "node runs protocol ", kProtocolVersion, " (build ", BuildVersion(),
      "), head runs protocol ", kProtocolVersion, " (build ", kOtherBuild, ")");

  const std::string token = head->session_dir + "/auth_token";
  auto start = RunCommand(BinDir() + "/loom start --num-cpus 1 --address " +
                          head->gcs_address + " --node-ip-address 127.0.0.1" +
                          " --auth-token-file " + token + " --session-root " +
                          node_root.path());
  EXPECT_NE(start.exit_code, 0) << start.output;
  EXPECT_THAT(start.output, HasSubstr(why));

  auto dir = CreateSessionDir(node_root.path());
  ASSERT_TRUE(dir.ok()) << dir.status();
  SpawnOptions raylet;
  raylet.argv = {BinDir() + "/loom-raylet",
                 "--num-cpus",
                 "1",
                 "--gcs-address",
                 head->gcs_address,
                 "--session-dir",
                 *dir,
                 "--auth-token-file",
                 token};
  raylet.stderr_path = *dir + "/raylet.err";
  auto pid = Spawn(raylet);
  ASSERT_TRUE(pid.ok()) << pid.status();
  int status = 0;
  ASSERT_TRUE(WaitUntil([&] { return waitpid(*pid, &status, WNOHANG) == *pid; },
                        absl::Seconds(20)));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), kVersionMismatchExitCode);
  EXPECT_THAT(ReadFileToString(*dir + "/raylet.err").value_or(""),
              HasSubstr(why));
  EXPECT_THAT(ReadFileToString(*dir + "/logs/raylet.log").value_or(""),
              HasSubstr(why));

  auto nodes = ClusterStatus(head->gcs_address);
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  EXPECT_EQ(nodes->nodes_size(), 0);
  EXPECT_TRUE(WaitUntil([&] { return PidsMatching(node_root.path()).empty(); },
                        absl::Seconds(5)));
  StopCluster(*head);
}

}  // namespace
}  // namespace loom::test

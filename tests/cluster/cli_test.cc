// Cluster tests: the loom command line.
#include <regex>

#include "gtest/gtest.h"
#include "tests/cluster/cluster_util.h"

namespace loom::test {
namespace {

std::string Loom(const std::string& args) { return BinDir() + "/loom " + args; }

TEST(Cli, StartStatusStopLeavesNoProcesses) {
  TempRoot head_root, node_root;
  auto start = RunCommand(Loom(
      "start --head --port 0 --num-cpus 1 --session-root " + head_root.path()));
  ASSERT_EQ(start.exit_code, 0) << start.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      start.output, m, std::regex("address:\\s+(127\\.0\\.0\\.1:\\d+)")))
      << start.output;
  std::string address = m[1];
  auto join = RunCommand(Loom("start --address " + address +
                              " --num-cpus 1 --resources '{\"accel\": 2}'"
                              " --session-root " +
                              node_root.path()));
  ASSERT_EQ(join.exit_code, 0) << join.output;

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
      RunCommand(Loom("start --head --port 0 --session-root " + a.path()));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(first.output, m, std::regex("127\\.0\\.0\\.1:(\\d+)")));
  auto second = RunCommand(Loom("start --head --port " + std::string(m[1]) +
                                " --session-root " + b.path()));
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

}  // namespace
}  // namespace loom::test

// The raylet's log files for `loom logs`: listing, reading from an offset
// or back from the end, in bounded chunks, and names that could reach
// outside the log directory refused.
#include "src/raylet/log_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace loom::raylet {
namespace {

class LogFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/loom-logs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Write("raylet.log", "one\ntwo\nthree\n");
    Write("empty.err", "");
    mkdir((dir_ + "/subdir").c_str(), 0755);
    Write("../outside-" + std::string(dir_.substr(5)), "secret\n");
    symlink(("/tmp/outside-" + dir_.substr(5)).c_str(),
            (dir_ + "/link.log").c_str());
  }
  void TearDown() override {
    std::system(("rm -rf " + dir_ + " /tmp/outside-" + dir_.substr(5)).c_str());
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  absl::StatusOr<std::string> Read(const std::string& name, int64_t offset,
                                   int64_t max_bytes = 0) {
    rpc::ReadLogFileRequest req;
    req.set_name(name);
    req.set_offset(offset);
    req.set_max_bytes(max_bytes);
    rpc::ReadLogFileReply reply;
    absl::Status s = ReadLogFile(dir_, req, &reply);
    if (!s.ok()) return s;
    EXPECT_EQ(reply.size(), 14 * (name == "raylet.log"));
    return reply.data();
  }
  std::string dir_;
};

TEST_F(LogFilesTest, ListsRegularFilesByName) {
  auto files = ListLogFiles(dir_);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);  // not the directory, not the symlink
  EXPECT_EQ((*files)[0].name(), "empty.err");
  EXPECT_EQ((*files)[1].name(), "raylet.log");
  EXPECT_EQ((*files)[1].size(), 14);
  EXPECT_GT((*files)[1].mtime_ms(), 0);
  EXPECT_EQ(ListLogFiles(dir_ + "/nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(LogFilesTest, ReadsFromAnOffsetOrBackFromTheEnd) {
  EXPECT_EQ(*Read("raylet.log", 0), "one\ntwo\nthree\n");
  EXPECT_EQ(*Read("raylet.log", 4), "two\nthree\n");
  EXPECT_EQ(*Read("raylet.log", -6), "three\n");
  EXPECT_EQ(*Read("raylet.log", -100), "one\ntwo\nthree\n");
  EXPECT_EQ(*Read("raylet.log", 100), "");
  EXPECT_EQ(*Read("raylet.log", 0, 3), "one");
  EXPECT_EQ(*Read("empty.err", 0), "");
}

TEST_F(LogFilesTest, RefusesNamesOutsideTheDirectory) {
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "../raylet.log", "subdir/x",
                                "/etc/passwd", std::string("a\0b", 3)}) {
    EXPECT_EQ(Read(bad, 0).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(Read("link.log", 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read("subdir", 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read("missing.log", 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Read("raylet.log", 0, 2 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loom::raylet

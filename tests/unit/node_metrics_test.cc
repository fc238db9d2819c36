// What a raylet's /metrics adds: user metrics gathered from workers, and
// the machine's figures read from /proc (a fake one here).
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "src/raylet/node_stats.h"
#include "src/raylet/user_metrics.h"

namespace loom::raylet {
namespace {

rpc::MetricPoint Point(const std::string& name, rpc::MetricPoint::Kind kind,
                       double value,
                       std::map<std::string, std::string> labels) {
  rpc::MetricPoint p;
  p.set_name(name);
  p.set_help("help");
  p.set_kind(kind);
  p.set_value(value);
  for (const auto& [k, v] : labels) (*p.mutable_labels())[k] = v;
  return p;
}

const prometheus::MetricFamily* Find(const MetricFamilies& fs,
                                     const std::string& name) {
  for (const auto& f : fs) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

TEST(UserMetrics, CountersAddUpGaugesKeepTheLastHistogramsMergeBuckets) {
  UserMetrics user({});
  auto c = Point("requests", rpc::MetricPoint::COUNTER, 2, {{"route", "/a"}});
  ASSERT_TRUE(user.Add(c).ok());
  ASSERT_TRUE(user.Add(c).ok());  // another worker's two
  ASSERT_TRUE(user.Add(Point("depth", rpc::MetricPoint::GAUGE, 7, {})).ok());
  ASSERT_TRUE(user.Add(Point("depth", rpc::MetricPoint::GAUGE, 3, {})).ok());
  rpc::MetricPoint h = Point("lat", rpc::MetricPoint::HISTOGRAM, 0, {});
  for (double b : {0.1, 1.0}) h.add_boundaries(b);
  for (uint64_t n : {1, 2, 3}) h.add_bucket_counts(n);
  h.set_sum(9);
  ASSERT_TRUE(user.Add(h).ok());
  ASSERT_TRUE(user.Add(h).ok());

  MetricFamilies fs = user.Collect();
  const auto* requests = Find(fs, "requests");
  ASSERT_NE(requests, nullptr);
  EXPECT_EQ(requests->type, prometheus::MetricType::Counter);
  ASSERT_EQ(requests->metric.size(), 1u);
  EXPECT_EQ(requests->metric[0].counter.value, 4);
  EXPECT_EQ(requests->metric[0].label[0].value, "/a");
  EXPECT_EQ(Find(fs, "depth")->metric[0].gauge.value, 3);
  const auto& hist = Find(fs, "lat")->metric[0].histogram;
  EXPECT_EQ(hist.sample_count, 12u);
  EXPECT_EQ(hist.bucket[0].cumulative_count, 2u);
  EXPECT_EQ(hist.bucket[1].cumulative_count, 6u);
  EXPECT_DOUBLE_EQ(hist.sample_sum, 18);
}

TEST(UserMetrics, RefusesMalformedConflictingAndTooManySeries) {
  UserMetrics user({.max_series = 2});
  EXPECT_EQ(
      user.Add(Point("bad name", rpc::MetricPoint::COUNTER, 1, {})).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      user.Add(Point("loom_tasks", rpc::MetricPoint::GAUGE, 1, {})).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(user.Add(Point("down", rpc::MetricPoint::COUNTER, -1, {})).code(),
            absl::StatusCode::kInvalidArgument);
  rpc::MetricPoint h = Point("lat", rpc::MetricPoint::HISTOGRAM, 0, {});
  h.add_boundaries(1);
  h.add_bucket_counts(1);  // one short of boundaries + 1
  EXPECT_EQ(user.Add(h).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(user.Add(Point("x", rpc::MetricPoint::COUNTER, 1, {})).ok());
  EXPECT_EQ(user.Add(Point("x", rpc::MetricPoint::GAUGE, 1, {})).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(
      user.Add(Point("x", rpc::MetricPoint::COUNTER, 1, {{"k", "1"}})).ok());
  EXPECT_EQ(
      user.Add(Point("x", rpc::MetricPoint::COUNTER, 1, {{"k", "2"}})).code(),
      absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(user.Add(Point("y", rpc::MetricPoint::COUNTER, 1, {})).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Find(user.Collect(), "y"), nullptr);  // no empty family
}

TEST(NodeStats, ReadsCpuMemoryAndNetworkFromProc) {
  auto dir = std::filesystem::temp_directory_path() /
             ("loom-proc-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "net");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  };
  write("meminfo",
        "MemTotal:       1000 kB\nMemFree: 10 kB\n"
        "MemAvailable:    400 kB\n");
  write("net/dev",
        "Inter-|   Receive\n face |bytes packets\n"
        "    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n"
        "  eth0: 100 1 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n");
  write("stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3\n");
  NodeStats stats({.disk_path = dir.string(), .proc = dir.string()});
  MetricFamilies first = stats.Collect();
  EXPECT_DOUBLE_EQ(
      Find(first, "loom_node_cpu_utilization")->metric[0].gauge.value,
      20);  // 200 busy of 1000 since boot
  EXPECT_EQ(Find(first, "loom_node_mem_total")->metric[0].gauge.value, 1024000);
  EXPECT_EQ(Find(first, "loom_node_mem_used")->metric[0].gauge.value, 614400);
  EXPECT_EQ(Find(first, "loom_node_network_received")->metric[0].gauge.value,
            100);  // loopback left out
  EXPECT_EQ(Find(first, "loom_node_network_sent")->metric[0].gauge.value, 50);
  EXPECT_NE(Find(first, "loom_node_disk_usage"), nullptr);
  // Then over the time since the last scrape: 300 busy of 400.
  write("stat", "cpu  300 0 200 900 0 0 0 0 0 0\n");
  MetricFamilies second = stats.Collect();
  EXPECT_DOUBLE_EQ(
      Find(second, "loom_node_cpu_utilization")->metric[0].gauge.value, 75);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace loom::raylet

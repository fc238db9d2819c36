// The /metrics endpoint (an idle connection does not block it), sources
// and snapshots read at each scrape, user metric definitions.
#include "src/common/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace loom {
namespace {

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// GET /metrics, waiting at most timeout_ms for the whole answer.
std::string Scrape(int port, int timeout_ms) {
  int fd = Connect(port);
  std::string req =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(write(fd, req.data(), req.size()),
            static_cast<ssize_t>(req.size()));
  std::string out;
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, timeout_ms) == 1) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, n);
  }
  close(fd);
  return out;
}

TEST(Metrics, IdleConnectionsDoNotBlockTheEndpoint) {
  Metrics metrics;
  metrics.Counter("loom_test_total", "a test counter").Increment();
  auto port = metrics.Serve("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  // Connections that never send a request, one fewer than its threads.
  std::vector<int> idle;
  for (int i = 0; i + 1 < Metrics::kServingThreads; ++i) {
    idle.push_back(Connect(*port));
  }
  std::string answer = Scrape(*port, 1000);
  EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;
  EXPECT_NE(answer.find("loom_test_total 1"), std::string::npos);
  for (int fd : idle) close(fd);
}

TEST(Metrics, SourcesAndSnapshotsAreReadAtEachScrapeUntilDetached) {
  Metrics metrics;
  GaugeSnapshot snapshot;
  auto source = metrics.AddSource([&] { return snapshot.Collect(); });
  auto port = metrics.Serve("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  snapshot.Set("loom_things", "Things by state",
               {{{{"state", "A"}}, 2}, {{{"state", "B"}}, 3}});
  std::string answer = Scrape(*port, 1000);
  EXPECT_NE(answer.find("loom_things{state=\"A\"} 2"), std::string::npos)
      << answer;
  EXPECT_NE(answer.find("loom_things{state=\"B\"} 3"), std::string::npos);
  // A new set replaces the whole family: B is gone.
  snapshot.Set("loom_things", "Things by state", {{{{"state", "A"}}, 5}});
  answer = Scrape(*port, 1000);
  EXPECT_NE(answer.find("loom_things{state=\"A\"} 5"), std::string::npos);
  EXPECT_EQ(answer.find("state=\"B\""), std::string::npos);
  source.reset();
  answer = Scrape(*port, 1000);
  EXPECT_NE(answer.find("200 OK"), std::string::npos);
  EXPECT_EQ(answer.find("loom_things"), std::string::npos);
}

TEST(Metrics, AHistogramSampleIsCumulativeWithAnInfiniteLastBucket) {
  auto m =
      HistogramSample({MetricLabel("name", "f")}, {0.1, 1}, {2, 3, 1}, 4.5);
  ASSERT_EQ(m.histogram.bucket.size(), 3u);
  EXPECT_EQ(m.histogram.bucket[0].cumulative_count, 2u);
  EXPECT_EQ(m.histogram.bucket[1].cumulative_count, 5u);
  EXPECT_EQ(m.histogram.bucket[2].cumulative_count, 6u);
  EXPECT_TRUE(std::isinf(m.histogram.bucket[2].upper_bound));
  EXPECT_EQ(m.histogram.sample_count, 6u);
  EXPECT_DOUBLE_EQ(m.histogram.sample_sum, 4.5);
}

TEST(Metrics, UserMetricDefinitionsFollowPrometheusRules) {
  EXPECT_TRUE(CheckMetricDefinition("requests_total", {"route"}, {}).ok());
  EXPECT_TRUE(CheckMetricDefinition("ns:latency", {}, {0.1, 1}).ok());
  auto bad = CheckMetricDefinition("2fast", {}, {});
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("2fast"), std::string::npos);
  EXPECT_FALSE(CheckMetricDefinition("has-dash", {}, {}).ok());
  EXPECT_FALSE(CheckMetricDefinition("loom_tasks", {}, {}).ok());
  EXPECT_FALSE(CheckMetricDefinition("x", {"a:b"}, {}).ok());
  EXPECT_FALSE(CheckMetricDefinition("x", {"__name"}, {}).ok());
  EXPECT_FALSE(CheckMetricDefinition("x", {"le"}, {}).ok());
  EXPECT_FALSE(CheckMetricDefinition("x", {}, {1, 1}).ok());
  EXPECT_FALSE(CheckMetricDefinition("x", {}, {2, 1}).ok());
}

}  // namespace
}  // namespace loom

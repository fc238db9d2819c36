// The /metrics endpoint: an idle connection does not block it.
#include "src/common/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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

}  // namespace
}  // namespace loom

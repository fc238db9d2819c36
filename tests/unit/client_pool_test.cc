// ClientPool: one channel per peer, shared stubs, dropped on death or idle.
#include "src/common/client_pool.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/rpc.h"

namespace loom {
namespace {

TEST(ClientPool, OneChannelPerPeerSharedByItsStubs) {
  ClientPool pool;
  auto a = pool.Channel("127.0.0.1:1");
  EXPECT_EQ(pool.Channel("127.0.0.1:1"), a);
  EXPECT_NE(pool.Channel("127.0.0.1:2"), a);
  auto raylet = pool.Stub<rpc::Raylet>("127.0.0.1:1");
  EXPECT_EQ(pool.Stub<rpc::Raylet>("127.0.0.1:1"), raylet);
  auto gcs = pool.Stub<rpc::Gcs>("127.0.0.1:1");
  EXPECT_NE(static_cast<void*>(gcs.get()), static_cast<void*>(raylet.get()));
  EXPECT_EQ(pool.size(), 2);
}

TEST(ClientPool, ADroppedPeerGetsAFreshChannelAndHeldStubsStayUsable) {
  ClientPool pool;
  auto held = pool.Stub<rpc::Raylet>("127.0.0.1:1");
  std::weak_ptr<grpc::Channel> old = pool.Channel("127.0.0.1:1");
  pool.Drop("127.0.0.1:1");
  EXPECT_EQ(pool.size(), 0);
  auto fresh = pool.Stub<rpc::Raylet>("127.0.0.1:1");
  EXPECT_NE(fresh, held);
  EXPECT_NE(pool.Channel("127.0.0.1:1"), old.lock());
  // What a caller holds (a call in flight, a lease) keeps the old channel
  // until it lets go, and still calls through it.
  EXPECT_FALSE(old.expired());
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 2000);
  rpc::GetNodeStatsReply reply;
  grpc::Status s = held->GetNodeStats(&ctx, {}, &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  pool.Drop("127.0.0.1:9");  // unknown: nothing happens
  EXPECT_EQ(pool.size(), 1);
}

TEST(ClientPool, ADroppedChannelGoesWithItsLastHolder) {
  ClientPool pool;
  auto held = pool.Stub<rpc::Gcs>("127.0.0.1:1");
  std::weak_ptr<grpc::Channel> old = pool.Channel("127.0.0.1:1");
  pool.Drop("127.0.0.1:1");
  EXPECT_FALSE(old.expired());
  held.reset();
  EXPECT_TRUE(old.expired());
}

TEST(ClientPool, IdleChannelsAreDroppedAndUsedOnesKept) {
  ManualClock clock;
  ClientPool pool({.idle_timeout = absl::Seconds(60), .clock = &clock});
  pool.Channel("127.0.0.1:1");
  pool.Channel("127.0.0.1:2");
  clock.Advance(absl::Seconds(45));
  pool.Stub<rpc::Raylet>("127.0.0.1:2");  // a use keeps it
  clock.Advance(absl::Seconds(30));
  EXPECT_EQ(pool.DropIdle(), 1);
  EXPECT_EQ(pool.size(), 1);
  clock.Advance(absl::Seconds(61));
  EXPECT_EQ(pool.DropIdle(), 1);
  EXPECT_EQ(pool.size(), 0);
}

// Accepts TCP connections on 127.0.0.1 and holds them (no gRPC answers, so
// a client neither finishes connecting nor retries meanwhile): counts how
// many connections clients opened.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 16);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() {
    for (int fd : accepted_) close(fd);
    close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Connections accepted within `wait`.
  int Count(absl::Duration wait) {
    absl::Time deadline = absl::Now() + wait;
    while (absl::Now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) == 1)
        accepted_.push_back(accept(fd_, nullptr, nullptr));
    }
    return static_cast<int>(accepted_.size());
  }

 private:
  int fd_ = -1, port_ = 0;
  std::vector<int> accepted_;
};

TEST(ClientPool, BulkChannelsAreThePeersOwnConnectionsKeptUntilDropped) {
  Listener listener;
  const std::string address = listener.address();
  ClientPool pool;
  auto bulk = pool.BulkChannels(address, 2);
  ASSERT_EQ(bulk.size(), 2u);
  EXPECT_NE(bulk[0], bulk[1]);
  EXPECT_EQ(pool.BulkChannels(address, 2), bulk);
  EXPECT_EQ(pool.BulkChannels(address, 1)[0], bulk[0]);
  auto control = pool.Channel(address);
  EXPECT_NE(control, bulk[0]);
  // Each opens a connection of its own: none is shared.
  for (auto& c : {bulk[0], bulk[1], control})
    c->GetState(/*try_to_connect=*/true);
  EXPECT_EQ(listener.Count(absl::Seconds(1)), 3);
  pool.Drop(address);
  EXPECT_NE(pool.BulkChannels(address, 1)[0], bulk[0]);
}

}  // namespace
}  // namespace loom

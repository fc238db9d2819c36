// ClientPool: one channel per peer, shared stubs, dropped on death or idle.
#include "src/common/client_pool.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace loom

// This machine's addresses and the --node-ip-address check.
#include "src/common/net.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>

namespace loom {
namespace {

TEST(Net, LoopbackAndThisMachinesInterfacesAreLocal) {
  EXPECT_TRUE(IsLocalAddress("127.0.0.1"));
  EXPECT_TRUE(IsLocalAddress("127.0.0.2"));  // all of 127/8
  EXPECT_TRUE(IsLocalAddress("::1"));
  EXPECT_TRUE(IsLocalAddress("localhost"));
  EXPECT_FALSE(IsLocalAddress("203.0.113.9"));  // documentation range
  EXPECT_FALSE(IsLocalAddress("not-an-ip"));
  EXPECT_FALSE(IsLocalAddress(""));
  // Each IPv4 address of an interface here is local.
  ifaddrs* list = nullptr;
  ASSERT_EQ(getifaddrs(&list), 0);
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    auto* a = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    EXPECT_TRUE(IsLocalAddress(text)) << text;
  }
  freeifaddrs(list);
}

TEST(Net, ANodeIpMustBeAnAddressOfThisMachine) {
  EXPECT_TRUE(CheckNodeIp("127.0.0.2").ok());
  absl::Status s = CheckNodeIp("node-1");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("not an IPv4 address"));
  EXPECT_EQ(CheckNodeIp("::1").code(), absl::StatusCode::kInvalidArgument);
  s = CheckNodeIp("203.0.113.9");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              ::testing::HasSubstr("not an address of this machine"));
}

}  // namespace
}  // namespace loom

// src/common/net.h
//
// This machine's addresses: whether an IP literal names this machine (so a
// daemon can listen on it and a driver can tell its own node's raylet), the
// default node address, and the checks `--node-ip-address` and
// `--bind-address` get.
//
//   std::string ip = PrimaryAddress();  // what `loom start` advertises
//   if (auto s = CheckNodeIp(ip); !s.ok()) return Fail(s.message());
//   bool mine = IsLocalAddress(node.host());
#ifndef LOOM_COMMON_NET_H_
#define LOOM_COMMON_NET_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace loom {

// True for the loopback ranges (127.0.0.0/8, ::1), "localhost", and the
// addresses of this machine's interfaces.
bool IsLocalAddress(const std::string& host);
// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackAddress(const std::string& host);

// This machine's primary routable IPv4 address: the source address of its
// default route (found by connecting a UDP socket, which sends nothing),
// else 127.0.0.1.
std::string PrimaryAddress();

// InvalidArgument unless `address` is 0.0.0.0 or an IPv4 address of this
// machine.
absl::Status CheckBindAddress(const std::string& address);

// InvalidArgument unless `ip` is an IPv4 literal that names this machine (a
// node must be reachable at the address it advertises; IPv6 is not
// supported yet, as addresses travel as "host:port").
absl::Status CheckNodeIp(const std::string& ip);

// A daemon's --host (advertised) and --bind-address: host must be this
// machine's, bind 0.0.0.0 or this machine's, and --no-auth only with both on
// loopback.
absl::Status CheckListenAddresses(const std::string& host,
                                  const std::string& bind, bool no_auth);

// What gRPC dials for a head address. "HOST:PORT" stays as it is; a list
// "HOST:PORT,HOST:PORT" (an active head and its standby) becomes one target
// of IPv4 addresses ("ipv4:10.0.0.5:6380,10.0.0.6:6380", names resolved now)
// whose channel uses the first that answers, in order, and tries them again
// when it breaks. An entry that does not resolve is left out (logged).
std::string ChannelTarget(const std::string& address);
// The addresses of a head address list, in order ("HOST:PORT" gives one).
std::vector<std::string> HeadAddresses(const std::string& address);

}  // namespace loom

#endif  // LOOM_COMMON_NET_H_

// src/common/net.h
//
// This machine's addresses: whether an IP literal names this machine (so a
// daemon can listen on it and a driver can tell its own node's raylet), and
// the check `--node-ip-address` gets.
//
//   if (auto s = CheckNodeIp(ip); !s.ok()) return Fail(s.message());
//   bool mine = IsLocalAddress(node.host());
#ifndef LOOM_COMMON_NET_H_
#define LOOM_COMMON_NET_H_

#include <string>

#include "absl/status/status.h"

namespace loom {

// True for the loopback ranges (127.0.0.0/8, ::1), "localhost", and the
// addresses of this machine's interfaces.
bool IsLocalAddress(const std::string& host);

// InvalidArgument unless `ip` is an IPv4 literal that names this machine (a
// node must be reachable at the address it advertises; IPv6 is not
// supported yet, as addresses travel as "host:port").
absl::Status CheckNodeIp(const std::string& ip);

}  // namespace loom

#endif  // LOOM_COMMON_NET_H_

#include "src/common/net.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace loom {
namespace {

bool ParseIp(const std::string& host, int* family, in6_addr* v6, in_addr* v4) {
  if (inet_pton(AF_INET, host.c_str(), v4) == 1) {
    *family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), v6) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

}  // namespace

bool IsLocalAddress(const std::string& host) {
  if (host == "localhost") return true;
  int family = 0;
  in_addr v4{};
  in6_addr v6{};
  if (!ParseIp(host, &family, &v6, &v4)) return false;
  if (family == AF_INET && (ntohl(v4.s_addr) >> 24) == 127) return true;
  if (family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != family) continue;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
      found = a->sin_addr.s_addr == v4.s_addr;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
      found = std::memcmp(&a->sin6_addr, &v6, sizeof(v6)) == 0;
    }
  }
  freeifaddrs(list);
  return found;
}

absl::Status CheckNodeIp(const std::string& ip) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) != 1) {
    // Addresses travel as "host:port" everywhere: IPv6 would need brackets.
    return absl::InvalidArgumentError(
        absl::StrCat("--node-ip-address '", ip,
                     "' is not an IPv4 address (IPv6 node addresses are not "
                     "supported yet)"));
  }
  if (!IsLocalAddress(ip)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--node-ip-address ", ip,
        " is not an address of this machine (see `ip addr`); a node must "
        "be reachable at the address it advertises"));
  }
  return absl::OkStatus();
}

}  // namespace loom

#include "src/common/net.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "src/common/logging.h"

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

bool IsLoopbackAddress(const std::string& host) {
  if (host == "localhost") return true;
  int family = 0;
  in_addr v4{};
  in6_addr v6{};
  if (!ParseIp(host, &family, &v6, &v4)) return false;
  if (family == AF_INET) return (ntohl(v4.s_addr) >> 24) == 127;
  return IN6_IS_ADDR_LOOPBACK(&v6);
}

std::string PrimaryAddress() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "127.0.0.1";
  // Any address outside this machine's networks selects the default route;
  // connect() on a UDP socket only picks the route and source address.
  sockaddr_in probe{};
  probe.sin_family = AF_INET;
  probe.sin_port = htons(9);
  inet_pton(AF_INET, "198.51.100.1", &probe.sin_addr);  // TEST-NET-2
  std::string result = "127.0.0.1";
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  if (connect(fd, reinterpret_cast<sockaddr*>(&probe), sizeof(probe)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
      local.sin_addr.s_addr != htonl(INADDR_ANY)) {
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &local.sin_addr, text, sizeof(text))) result = text;
  }
  close(fd);
  return result;
}

absl::Status CheckBindAddress(const std::string& address) {
  if (address == "0.0.0.0") return absl::OkStatus();
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) != 1 ||
      !IsLocalAddress(address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--bind-address '", address,
        "' is neither 0.0.0.0 nor an IPv4 address of this machine"));
  }
  return absl::OkStatus();
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

absl::Status CheckListenAddresses(const std::string& host,
                                  const std::string& bind, bool no_auth) {
  if (!IsLocalAddress(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat(host, " is not an address of this machine"));
  }
  if (absl::Status s = CheckBindAddress(bind); !s.ok()) return s;
  if (no_auth && (!IsLoopbackAddress(host) || !IsLoopbackAddress(bind))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--no-auth is only for loopback clusters, and this one would listen "
        "on ",
        bind, " (advertising ", host,
        "): anyone who reaches it could "
        "run code in it; use the cluster token instead"));
  }
  return absl::OkStatus();
}

std::vector<std::string> HeadAddresses(const std::string& address) {
  std::vector<std::string> out;
  for (absl::string_view a : absl::StrSplit(address, ',', absl::SkipEmpty())) {
    a = absl::StripAsciiWhitespace(a);
    if (!a.empty()) out.emplace_back(a);
  }
  return out;
}

std::string ChannelTarget(const std::string& address) {
  if (address.find(',') == std::string::npos) return address;
  std::vector<std::string> resolved;
  for (const std::string& a : HeadAddresses(address)) {
    size_t colon = a.rfind(':');
    std::string host = a.substr(0, colon);
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (colon == std::string::npos ||
        getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 ||
        found == nullptr) {
      spdlog::warn("head address {} does not resolve to IPv4; left out", a);
      continue;
    }
    char ip[INET_ADDRSTRLEN] = {0};
    inet_ntop(AF_INET,
              &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, ip,
              sizeof(ip));
    freeaddrinfo(found);
    resolved.push_back(absl::StrCat(ip, a.substr(colon)));
  }
  if (resolved.empty()) return address;
  return absl::StrCat("ipv4:", absl::StrJoin(resolved, ","));
}

}  // namespace loom

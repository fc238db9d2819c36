#include "src/cli/commands.h"

#include <dirent.h>
#include <sys/types.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "runtime/local_cluster.h"
#include "src/common/auth.h"
#include "src/common/net.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "src/common/tls.h"
#include "src/common/wire.h"

namespace loom::cli {
namespace {

std::string Root(const std::string& session_root) {
  return session_root.empty() ? DefaultSessionRoot() : session_root;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "loom: %s\n", message.c_str());
  return 1;
}

}  // namespace

int Start(const StartArgs& args) {
  if (args.head == !args.address.empty()) {
    return Fail("start needs exactly one of --head or --address HOST:PORT");
  }
  if (args.standby && !args.head) return Fail("--standby goes with --head");
  auto resources = ParseResourcesJson(args.resources_json);
  if (!resources.ok()) return Fail(std::string(resources.status().message()));
  auto check = ResourceSet::FromMap(*resources);
  if (!check.ok()) return Fail(std::string(check.status().message()));
  ClusterOptions options;
  options.host = args.node_ip.empty() ? PrimaryAddress() : args.node_ip;
  if (auto s = CheckNodeIp(options.host); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  if (const auto& tls = ProcessTls(); !tls.ok()) {
    return Fail(std::string(tls.status().message()));
  } else if (tls->has_value()) {
    if (auto s = CheckCertNamesIp(**tls, options.host); !s.ok()) {
      return Fail(std::string(s.message()));
    }
  }
  options.bind_address = args.bind_address;
  options.no_auth = args.no_auth;
  options.session_root = Root(args.session_root);
  if (!args.no_auth) {
    // A head makes a new token unless given one; a joining node needs its.
    absl::StatusOr<std::string> token = absl::NotFoundError("");
    if (!args.token_file.empty()) {
      token = ReadTokenFile(args.token_file);
    } else if (std::getenv(kAuthTokenEnv) != nullptr) {
      token = TokenFromEnv();
    } else if (!args.head) {
      token = FindSessionToken(options.session_root, args.address);
    }
    if (token.ok()) {
      options.auth_token = *token;
    } else if (!absl::IsNotFound(token.status()) || !args.token_file.empty()) {
      return Fail(std::string(token.status().message()));
    }
  }
  options.head_address = args.address;
  options.gcs_port = args.port;
  options.raylet_port = args.raylet_port;
  options.num_cpus = args.num_cpus;
  options.num_gpus = args.num_gpus;
  options.gpu_memory = args.gpu_memory;
  options.memory = args.memory;
  options.object_store_memory = args.object_store_memory;
  options.resources = *resources;
  options.node_timeout_ms = args.node_timeout_ms;
  options.storage = args.storage;
  options.metrics_sd_file = args.metrics_sd_file;
  options.dashboard_port = args.dashboard_port;
  options.grafana_url = args.grafana_url;
  options.prometheus_url = args.prometheus_url;
  options.standby = args.standby;
  options.standby_addresses = args.standby_addresses;
  options.restart_on_fence = args.restart_on_fence;
  options.memory_usage_threshold = args.memory_usage_threshold;
  options.memory_monitor_limit_bytes = args.memory_monitor_limit_bytes;
  options.detach = true;
  if (args.serve_port) {
    options.labels["serve_port"] = std::to_string(*args.serve_port);
  }
  for (const auto& l : args.labels) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(l, absl::MaxSplits('=', 1));
    if (kv.first.empty()) return Fail("label '" + l + "' is not k=v");
    options.labels[kv.first] = kv.second;
  }
  absl::Time start = absl::Now();
  auto cluster = StartCluster(options);
  if (!cluster.ok()) return Fail(std::string(cluster.status().message()));
  double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (args.standby) {
    std::printf(
        "Loom standby head on %s, started in %.0f ms: it serves once the "
        "active head stops renewing its lease in its storage.\n"
        "  session:  %s\n\n"
        "Clients and nodes name both heads: --address ACTIVE:PORT,%s\n",
        cluster->gcs_address.c_str(), ms, cluster->session_dir.c_str(),
        cluster->gcs_address.c_str());
  } else if (args.head) {
    std::string token_file =
        absl::StrCat(cluster->session_dir, "/", kAuthTokenFile);
    std::string join =
        cluster->auth_token.empty()
            ? absl::StrCat("loom start --address ", cluster->gcs_address,
                           " --no-auth")
            : absl::StrCat("loom start --address ", cluster->gcs_address,
                           " --auth-token-file FILE\n"
                           "                          (FILE: a copy of ",
                           token_file, ", mode 0600)");
    std::printf(
        "Loom head started in %.0f ms.\n"
        "  address:  %s\n"
        "  session:  %s\n"
        "  token:    %s\n\n"
        "Join from another node:   %s\n"
        "Connect from C++:         loom::Init({.address = \"%s\"})  (or "
        "\"auto\")\n"
        "Inspect:                  loom status\n"
        "Stop:                     loom stop\n",
        ms, cluster->gcs_address.c_str(), cluster->session_dir.c_str(),
        cluster->auth_token.empty() ? "none (--no-auth)" : token_file.c_str(),
        join.c_str(), cluster->gcs_address.c_str());
  } else {
    std::printf(
        "Loom node joined %s in %.0f ms.\n  raylet:   %s\n  session:  %s\n",
        cluster->gcs_address.c_str(), ms, cluster->raylet_address.c_str(),
        cluster->session_dir.c_str());
  }
  return 0;
}

int Stop(const std::string& session_root) {
  std::string root = Root(session_root);
  DIR* dir = opendir(root.c_str());
  if (dir == nullptr) {
    std::printf("Nothing to stop under %s.\n", root.c_str());
    return 0;
  }
  std::vector<std::string> sessions;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name.rfind("session_", 0) == 0 && name != "session_latest") {
      sessions.push_back(root + "/" + name);
    }
  }
  closedir(dir);
  int stopped = 0;
  for (const auto& session : sessions) {
    auto pids = ReadFileToString(session + "/pids");
    if (!pids.ok()) continue;
    std::vector<pid_t> list;
    for (absl::string_view p : absl::StrSplit(*pids, ' ', absl::SkipEmpty())) {
      int pid = 0;
      if (absl::SimpleAtoi(p, &pid) && pid > 0) list.push_back(pid);
    }
    // Raylets first (they stop their workers), then the head.
    for (auto it = list.rbegin(); it != list.rend(); ++it) {
      if (ProcessAlive(*it)) {
        TerminateProcess(*it, absl::Seconds(5));
        ++stopped;
      }
    }
    std::remove((session + "/pids").c_str());
  }
  std::printf("Stopped %d Loom process%s under %s.\n", stopped,
              stopped == 1 ? "" : "es", root.c_str());
  return 0;
}

absl::Status UseToken(const std::string& token_file,
                      const std::string& session_root,
                      const std::string& address) {
  auto addr = HeadAddress(session_root, address);
  if (!token_file.empty()) {
    auto token = ReadTokenFile(token_file);
    if (!token.ok()) return token.status();
    rpc::SetClusterToken(*token);
    return addr.ok() ? TradePersonToken(*addr) : absl::OkStatus();
  }
  if (addr.ok()) return UseTokenOf(*addr, Root(session_root));
  return absl::OkStatus();
}

// The head's address: --address, else this session root's cluster.
absl::StatusOr<std::string> HeadAddress(const std::string& session_root,
                                        const std::string& address) {
  if (!address.empty()) return address;
  auto resolved =
      ReadFileToString(LatestSessionDir(Root(session_root)) + "/address");
  if (!resolved.ok()) {
    return absl::NotFoundError(
        "no cluster found under " + Root(session_root) +
        " (start one with `loom start --head`, or pass --address)");
  }
  return *resolved;
}

absl::StatusOr<rpc::GetClusterStatusReply> FetchStatus(
    const std::string& addr) {
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(addr));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  rpc::GetClusterStatusReply reply;
  grpc::Status s =
      stub->GetClusterStatus(&ctx, rpc::GetClusterStatusRequest(), &reply);
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the head at ", addr,
        " refused this command's cluster token: pass --auth-token-file or "
        "set $",
        kAuthTokenEnv));
  }
  if (!s.ok()) {
    return HeadUnreachableError(addr, s.error_message());
  }
  return reply;
}

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

int Memory(const std::string& session_root, const std::string& address) {
  auto addr = HeadAddress(session_root, address);
  if (!addr.ok()) return Fail(std::string(addr.status().message()));
  auto status = FetchStatus(*addr);
  if (!status.ok()) return Fail(std::string(status.status().message()));
  for (const auto& n : status->nodes()) {
    if (!n.alive()) continue;
    std::string raylet = absl::StrCat(n.host(), ":", n.raylet_port());
    auto stub = rpc::Raylet::NewStub(rpc::MakeChannel(raylet));
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 5000);
    rpc::GetNodeStatsReply stats;
    grpc::Status s =
        stub->GetNodeStats(&ctx, rpc::GetNodeStatsRequest(), &stats);
    std::printf("Node %s  %s\n", HexEncode(n.node_id()).substr(0, 12).c_str(),
                raylet.c_str());
    if (!s.ok()) {
      std::printf("  unreachable: %s\n", s.error_message().c_str());
      continue;
    }
    std::printf("  object store: %s used of %s, %llu objects (%llu pinned)\n",
                Bytes(stats.store_used()).c_str(),
                Bytes(stats.store_capacity()).c_str(),
                static_cast<unsigned long long>(stats.store_objects()),
                static_cast<unsigned long long>(stats.store_pinned()));
    std::printf("  spilled to disk: %s in %llu objects\n",
                Bytes(stats.store_spilled_bytes()).c_str(),
                static_cast<unsigned long long>(stats.store_spilled_objects()));
    if (stats.largest_objects_size() > 0) std::printf("  largest objects:\n");
    for (const auto& o : stats.largest_objects()) {
      std::printf("    %s  %10s  %-9s %s%s\n", HexEncode(o.object_id()).c_str(),
                  Bytes(o.size()).c_str(), o.primary() ? "primary" : "copy",
                  o.owner().c_str(), o.pinned() ? "  (pinned)" : "");
    }
  }
  return 0;
}

int Status(const std::string& session_root, const std::string& address) {
  auto addr_or = HeadAddress(session_root, address);
  if (!addr_or.ok()) return Fail(std::string(addr_or.status().message()));
  std::string addr = *addr_or;
  auto reply_or = FetchStatus(addr);
  if (!reply_or.ok()) return Fail(std::string(reply_or.status().message()));
  const rpc::GetClusterStatusReply& reply = *reply_or;
  int alive = 0, dead = 0;
  for (const auto& n : reply.nodes()) (n.alive() ? alive : dead)++;
  std::printf("Cluster %s: %d node%s alive, %d dead\n\n", addr.c_str(), alive,
              alive == 1 ? "" : "s", dead);
  std::map<std::string, int64_t> pending, infeasible;
  for (const auto& n : reply.nodes()) {
    std::printf("Node %s  %s:%d  %s  pid %lld\n",
                HexEncode(n.node_id()).substr(0, 12).c_str(), n.host().c_str(),
                n.raylet_port(), n.alive() ? "ALIVE" : "DEAD",
                static_cast<long long>(n.pid()));
    if (!n.alive()) continue;
    auto total = ResourcesFromProto(n.total());
    auto avail = ResourcesFromProto(n.available());
    if (!total.ok() || !avail.ok()) continue;
    for (const auto& [name, qty] : total->ToMap()) {
      double used = qty - avail->Get(name).ToDouble();
      if (name == kGpuMemory || name == kMemory) {
        std::printf("  %-12s %s/%s used\n", name.c_str(),
                    Bytes(static_cast<uint64_t>(used)).c_str(),
                    Bytes(static_cast<uint64_t>(qty)).c_str());
      } else if (name == kGpu) {
        // GPUs: used/total, the model and each GPU's memory.
        auto model = n.labels().find("gpu_model");
        auto mem = n.labels().find("gpu_memory");
        std::string what =
            model != n.labels().end() ? model->second : "declared";
        if (mem != n.labels().end()) {
          uint64_t bytes = 0;
          if (absl::SimpleAtoi(mem->second, &bytes)) {
            what += ", " + Bytes(bytes) + " each";
          }
        }
        std::printf("  %-12s %g/%g used  (%s)\n", name.c_str(), used, qty,
                    what.c_str());
      } else {
        std::printf("  %-12s %g/%g used\n", name.c_str(), used, qty);
      }
    }
    for (const auto& d : n.pending()) {
      pending[FormatResources(d.shape())] += d.count();
    }
    for (const auto& d : n.infeasible()) {
      infeasible[FormatResources(d.shape())] += d.count();
    }
  }
  std::printf("\nPending demands:%s\n", pending.empty() ? " none" : "");
  for (const auto& [d, count] : pending)
    std::printf("  %s x%lld\n", d.c_str(), static_cast<long long>(count));
  std::printf("Infeasible demands:%s\n", infeasible.empty() ? " none" : "");
  for (const auto& [d, count] : infeasible) {
    std::printf("  %s x%lld (no node can run this)\n", d.c_str(),
                static_cast<long long>(count));
  }
  return 0;
}

}  // namespace loom::cli

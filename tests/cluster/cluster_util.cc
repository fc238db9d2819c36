#include "tests/cluster/cluster_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "loom/loom.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/auth.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"
#include "src/common/session.h"

namespace loom::test {

TempRoot::TempRoot() {
  char tmpl[] = "/tmp/lc_XXXXXX";
  path_ = mkdtemp(tmpl);
}

TempRoot::~TempRoot() {
  // LOOM_TEST_KEEP=1 keeps session directories (logs) for a post-mortem.
  if (const char* keep = std::getenv("LOOM_TEST_KEEP"); keep && *keep == '1') {
    std::fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  std::system(("rm -rf " + path_).c_str());
}

// The build's paths, unless the environment names a copy of the build
// (to run the tests from elsewhere, e.g. on a GPU machine).
std::string BinDir() {
  const char* dir = std::getenv("LOOM_TEST_BIN_DIR");
  return dir && *dir ? dir : LOOM_BIN_DIR_FOR_TESTS;
}
std::string TestLib() {
  const char* lib = std::getenv("LOOM_TEST_LIB");
  return lib && *lib ? lib : LOOM_TEST_LIB;
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0)
    result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError("connect failed");
  }
  std::string req =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return absl::UnavailableError("write failed");
  }
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? out : out.substr(body + 4);
}

double MetricValue(const std::string& text, const std::string& name) {
  double total = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    absl::string_view key = line.substr(0, space);
    if (key != name) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(space + 1), &v)) total += v;
  }
  return total;
}

int RayletMetricsPort(const std::string& session_dir) {
  auto ready = ReadFileToString(session_dir + "/raylet.ready");
  if (!ready.ok()) return 0;
  std::vector<std::string> parts = absl::StrSplit(*ready, ' ');
  int port = 0;
  if (parts.size() == 2) (void)absl::SimpleAtoi(parts[1], &port);
  return port;
}

double RayletMetric(const std::string& session_dir, const std::string& name) {
  auto text = HttpGet(RayletMetricsPort(session_dir), "/metrics");
  return text.ok() ? MetricValue(*text, name) : -1;
}

std::vector<pid_t> PidsMatching(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  while (dirent* e = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid) || pid == getpid()) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string cmd = ss.str();
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    std::getline(stat, line);
    size_t paren = line.rfind(')');
    bool zombie = paren != std::string::npos && paren + 2 < line.size() &&
                  line[paren + 2] == 'Z';
    if (!zombie && absl::StrContains(cmd, needle)) out.push_back(pid);
  }
  closedir(proc);
  return out;
}

bool InStoreMapping(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    if (line.find("memfd:loom-object-store") == std::string::npos) continue;
    uintptr_t start = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    uintptr_t end = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
    if (addr >= start && addr < end) return true;
  }
  return false;
}

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

bool StaysTrue(const std::function<bool()>& condition, absl::Duration period) {
  absl::Time deadline = absl::Now() + period;
  while (absl::Now() < deadline) {
    if (!condition()) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

absl::StatusOr<ClusterHandle> StartHeadOnly(
    const std::string& root, const std::vector<std::string>& extra_args) {
  auto dir = CreateSessionDir(root);
  if (!dir.ok()) return dir.status();
  auto lifeline = MakeLifeline();
  if (!lifeline.ok()) return lifeline.status();
  ClusterHandle head;
  head.session_dir = *dir;
  head.lifeline_fd = lifeline->parent_fd;
  // A token of its own, this process's too, as StartCluster makes one.
  head.auth_token = NewClusterToken();
  auto written = WriteTokenFile(*dir + "/" + kAuthTokenFile, head.auth_token);
  if (!written.ok()) {
    close(lifeline->child_fd);
    StopCluster(head);
    return written;
  }
  rpc::SetClusterToken(head.auth_token);
  SpawnOptions spawn;
  spawn.argv = {BinDir() + "/loom-gcs", "--port", "0", "--session-dir", *dir};
  spawn.extra_env = {std::string(kAuthTokenEnv) + "=" + head.auth_token};
  spawn.argv.insert(spawn.argv.end(), extra_args.begin(), extra_args.end());
  spawn.stdout_path = *dir + "/logs/gcs.out";
  spawn.stderr_path = *dir + "/logs/gcs.err";
  spawn.lifeline_fd = lifeline->child_fd;
  auto pid = Spawn(spawn);
  close(lifeline->child_fd);
  if (!pid.ok()) {
    StopCluster(head);
    return pid.status();
  }
  head.pids.push_back(*pid);
  std::string ready;
  WaitUntil(
      [&] {
        auto text = ReadFileToString(*dir + "/gcs.ready");
        if (text.ok()) ready = *text;
        return !ready.empty() || !ProcessAlive(*pid);
      },
      absl::Seconds(20));
  if (ready.empty()) {
    StopCluster(head);
    return absl::UnavailableError("loom-gcs did not start; see " + *dir +
                                  "/logs");
  }
  head.gcs_address = ready.substr(0, ready.find(' '));
  // Drivers and the CLI find the cluster, and its token, by this file.
  auto s = WriteFileAtomic(*dir + "/address", head.gcs_address);
  if (!s.ok()) {
    StopCluster(head);
    return s;
  }
  return head;
}

absl::StatusOr<rpc::GetClusterStatusReply> ClusterStatus(
    const std::string& gcs_address) {
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(gcs_address));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 3000);
  rpc::GetClusterStatusReply reply;
  auto s = stub->GetClusterStatus(&ctx, rpc::GetClusterStatusRequest(), &reply);
  if (!s.ok()) return rpc::ToAbsl(s);
  return reply;
}

int CountNodes(const rpc::GetClusterStatusReply& status, bool alive) {
  int n = 0;
  for (const auto& node : status.nodes()) n += node.alive() == alive;
  return n;
}

void KillHead(const ClusterHandle& cluster) {
  kill(cluster.pids.front(), SIGKILL);
  WaitForExit(cluster.pids.front(), absl::Seconds(5));
}

absl::StatusOr<pid_t> StartHeadAgain(const ClusterHandle& cluster,
                                     std::vector<std::string> args) {
  std::string port =
      cluster.gcs_address.substr(cluster.gcs_address.rfind(':') + 1);
  SpawnOptions opts;
  // The job API on any free port: 8265 may be anyone's.
  opts.argv = {
      BinDir() + "/loom-gcs", "--port",           port, "--session-dir",
      cluster.session_dir,    "--dashboard-port", "0"};
  opts.argv.insert(opts.argv.end(), args.begin(), args.end());
  // Tied to this process: a failed assertion that skips the test's own
  // cleanup does not leave the head running after the test binary exits.
  // The parent's end stays open until then.
  auto lifeline = MakeLifeline();
  if (!lifeline.ok()) return lifeline.status();
  opts.lifeline_fd = lifeline->child_fd;
  auto pid = Spawn(opts);
  close(lifeline->child_fd);
  if (!pid.ok()) close(lifeline->parent_fd);
  return pid;
}

absl::StatusOr<pid_t> RestartHead(const ClusterHandle& cluster,
                                  std::vector<std::string> args) {
  KillHead(cluster);
  return StartHeadAgain(cluster, std::move(args));
}

absl::StatusOr<uint32_t> NewJob(const std::string& gcs_address) {
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(gcs_address));
  rpc::AddJobReply reply;
  grpc::Status s = rpc::CallHead(30000, [&](rpc::Context* ctx) {
    rpc::AddJobRequest req;
    req.set_driver_pid(getpid());
    return stub->AddJob(ctx, req, &reply);
  });
  if (!s.ok()) return rpc::ToAbsl(s);
  auto id = JobId::FromBinary(reply.job_id());
  if (!id.ok()) return id.status();
  return JobId(*id).ToInt();
}

}  // namespace loom::test

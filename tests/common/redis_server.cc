#include "tests/common/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/common/free_port.h"

namespace loom::test {
namespace {

constexpr absl::Duration kReadyTimeout = absl::Seconds(10);
constexpr absl::Duration kStopGrace = absl::Seconds(10);

std::string RespCommand(const std::vector<std::string>& argv) {
  std::string out = absl::StrCat("*", argv.size(), "\r\n");
  for (const auto& a : argv)
    absl::StrAppend(&out, "$", a.size(), "\r\n", a, "\r\n");
  return out;
}

// Sends `commands` (RESP) on a new connection; returns the reply's first
// `lines` lines.
absl::StatusOr<std::string> Exchange(int port, const std::string& commands,
                                     size_t lines) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", port));
  }
  bool sent = send(fd, commands.data(), commands.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(commands.size());
  std::string reply;
  char buf[256];
  while (sent && static_cast<size_t>(
                     std::count(reply.begin(), reply.end(), '\n')) < lines) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    reply.append(buf, n);
  }
  close(fd);
  if (!sent) return absl::UnavailableError("send failed");
  return reply;
}

std::string AuthThen(const std::string& password,
                     const std::vector<std::string>& argv) {
  return (password.empty() ? "" : RespCommand({"AUTH", password})) +
         RespCommand(argv);
}

// Whether the server answers PING with PONG (not LOADING: its data is in).
bool Pong(int port, const std::string& password) {
  auto reply =
      Exchange(port, AuthThen(password, {"PING"}), password.empty() ? 1 : 2);
  return reply.ok() && absl::StrContains(*reply, "+PONG");
}

std::string LogTail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options, std::string dir, int port)
    : options_(std::move(options)), dir_(std::move(dir)), port_(port) {}

RedisServer::~RedisServer() {
  Kill();
  if (const char* keep = std::getenv("LOOM_TEST_KEEP"); keep && *keep == '1') {
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    RedisServerOptions options) {
  absl::Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    char tmpl[] = "/tmp/lr_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
    int port = FreePortBelowEphemeralRange();
    if (port == 0) return absl::UnavailableError("no free port");
    std::unique_ptr<RedisServer> server(new RedisServer(options, tmpl, port));
    last = server->Launch();
    if (last.ok()) return server;
    // Another process took the port between our check and the bind.
    if (!absl::StrContains(last.message(), "in use")) break;
  }
  return last;
}

std::string RedisServer::host_port() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::string RedisServer::url() const {
  return options_.password.empty()
             ? absl::StrCat("redis://", host_port())
             : absl::StrCat("redis://:", options_.password, "@", host_port());
}

absl::Status RedisServer::Launch() {
  const char* env_bin = std::getenv("LOOM_REDIS_SERVER");
  std::string bin = env_bin && *env_bin ? env_bin : "redis-server";
  std::vector<std::string> args = {bin,
                                   "--port",
                                   absl::StrCat(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_,
                                   "--daemonize",
                                   "no",
                                   "--save",
                                   "",
                                   "--logfile",
                                   "",
                                   "--loglevel",
                                   "warning",
                                   "--appendonly",
                                   options_.persistent ? "yes" : "no"};
  if (options_.persistent) {
    args.insert(args.end(), {"--appendfsync", "always"});
  }
  if (!options_.password.empty()) {
    args.insert(args.end(), {"--requirepass", options_.password});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = dir_ + "/redis.log";
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execvp(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  absl::Time deadline = absl::Now() + kReadyTimeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      bool missing = WIFEXITED(status) && WEXITSTATUS(status) == 127;
      return absl::UnavailableError(absl::StrCat(
          missing ? absl::StrCat(bin,
                                 " not found: scripts/install-deps.sh "
                                 "installs redis-server")
                  : absl::StrCat(bin, " exited at start"),
          "; its log:\n", LogTail(log)));
    }
    if (Pong(port_, options_.password)) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(10));
  }
  Kill();
  return absl::DeadlineExceededError(absl::StrCat(
      bin, " on port ", port_, " did not answer PING within ",
      absl::FormatDuration(kReadyTimeout), "; its log:\n", LogTail(log)));
}

absl::StatusOr<std::string> RedisServer::Command(
    const std::vector<std::string>& argv) {
  size_t skip = options_.password.empty() ? 0 : 1;
  auto reply = Exchange(port_, AuthThen(options_.password, argv), skip + 1);
  if (!reply.ok()) return reply.status();
  std::vector<std::string> lines = absl::StrSplit(*reply, "\r\n");
  if (lines.size() <= skip) return absl::UnavailableError("no reply");
  return lines[skip];
}

void RedisServer::Kill() {
  if (pid_ == 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

void RedisServer::Stop() {
  if (pid_ == 0) return;
  kill(pid_, SIGTERM);
  absl::Time deadline = absl::Now() + kStopGrace;
  while (absl::Now() < deadline) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = 0;
      return;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Kill();
}

absl::Status RedisServer::Restart() {
  Kill();
  return Launch();
}

}  // namespace loom::test

#include "src/common/process.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "src/common/daemon.h"

extern char** environ;

namespace loom {
namespace {

// ResourceExhausted, naming the limit, when the system ran out of
// something; Internal otherwise.
absl::Status SystemError(absl::string_view what, int err) {
  std::string text = absl::StrCat(what, ": ", DescribeResourceError(err));
  bool exhausted =
      err == EMFILE || err == ENFILE || err == EAGAIN || err == ENOMEM;
  return exhausted ? absl::ResourceExhaustedError(text)
                   : absl::InternalError(text);
}

}  // namespace

absl::StatusOr<Lifeline> MakeLifeline() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return SystemError("pipe", errno);
  }
  // Keep the child's end above fd 3 so that dup2 onto 3 clears CLOEXEC.
  int child = fcntl(fds[0], F_DUPFD_CLOEXEC, 10);
  close(fds[0]);
  if (child < 0) {
    close(fds[1]);
    return SystemError("dup", errno);
  }
  return Lifeline{fds[1], child};
}

absl::StatusOr<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty argv");
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  if (!options.stdout_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, options.stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  if (!options.stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, 2, options.stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  if (options.lifeline_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, options.lifeline_fd,
                                     kLifelineFd);
  }
  if (!options.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
  }
  if (options.control_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, options.control_fd, kControlFd);
  }
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_session) flags |= POSIX_SPAWN_SETSID;
  posix_spawnattr_setflags(&attr, flags);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);

  // Ours, less LOOM_LIFELINE and what extra_env sets anew.
  auto replaced = [&options](const char* e) {
    if (std::strncmp(e, "LOOM_LIFELINE=", 14) == 0) return true;
    for (const auto& x : options.extra_env) {
      size_t eq = x.find('=');
      if (std::strncmp(e, x.c_str(), eq + 1) == 0) return true;
    }
    return false;
  };
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (!replaced(*e)) env.emplace_back(*e);
  }
  if (options.lifeline_fd >= 0) env.push_back("LOOM_LIFELINE=1");
  for (const auto& e : options.extra_env) env.push_back(e);
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const auto& a : options.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  pid_t pid = 0;
  int rc =
      posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return SystemError(absl::StrCat("spawn ", options.argv[0]), rc);
  }
  if (options.niceness != 0) {
    errno = 0;
    int now = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && setpriority(PRIO_PROCESS, pid, now + options.niceness)) {
      // Only a lower priority is asked for, which anyone may set: this is
      // a child that exited already.
      spdlog::debug("niceness of {} (pid {}): {}", options.argv[0], pid,
                    std::strerror(errno));
    }
  }
  return pid;
}

namespace {
std::atomic<bool> g_follows_lifeline{false};
}  // namespace

void WatchLifelineFromEnv() {
  const char* env = std::getenv("LOOM_LIFELINE");
  if (env == nullptr || std::string(env) != "1") return;
  unsetenv("LOOM_LIFELINE");
  g_follows_lifeline = true;
  fcntl(kLifelineFd, F_SETFD, FD_CLOEXEC);
  std::thread([] {
    char buf[64];
    while (true) {
      ssize_t n = read(kLifelineFd, buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EINTR)) _exit(0);
    }
  }).detach();
}

absl::Status ExecSelf(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  bool lifeline = g_follows_lifeline;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(dir)) {
      int fd = std::atoi(e->d_name);
      if (fd <= 2 || fd == dirfd(dir) || (lifeline && fd == kLifelineFd)) {
        continue;
      }
      fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(dir);
  }
  if (lifeline) {
    fcntl(kLifelineFd, F_SETFD, 0);
    setenv("LOOM_LIFELINE", "1", 1);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv("/proc/self/exe", args.data());
  int err = errno;
  if (lifeline) {
    fcntl(kLifelineFd, F_SETFD, FD_CLOEXEC);
    unsetenv("LOOM_LIFELINE");
  }
  return absl::InternalError(
      absl::StrCat("exec /proc/self/exe: ", std::strerror(err)));
}

namespace {

// A thread's state letter from its stat line ('?' when unreadable).
char ThreadState(const std::string& stat_path) {
  std::ifstream stat(stat_path);
  std::string line;
  if (!std::getline(stat, line)) return '?';
  size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return '?';
  return line[paren + 2];
}

}  // namespace

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  int status;
  if (waitpid(pid, &status, WNOHANG) == pid) return false;
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  // A zombie (exited, not yet reaped by its parent) is not alive; but the
  // main thread turns zombie before the others have finished exiting (a
  // raylet unmapping its store), and the last one out closes the
  // process's files: alive while any thread is not a zombie.
  std::string task_dir = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = opendir(task_dir.c_str());
  if (dir == nullptr) return false;
  bool alive = false;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char state = ThreadState(absl::StrCat(task_dir, "/", e->d_name, "/stat"));
    if (state != 'Z' && state != '?') {
      alive = true;
      break;
    }
  }
  closedir(dir);
  return alive;
}

bool WaitForExit(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (ProcessAlive(pid)) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

void TerminateProcess(pid_t pid, absl::Duration grace) {
  if (!ProcessAlive(pid)) return;
  kill(pid, SIGTERM);
  if (!WaitForExit(pid, grace)) {
    kill(pid, SIGKILL);
    WaitForExit(pid, absl::Seconds(5));
  }
}

int64_t RssAnonKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoll(line.substr(8));
  }
  return -1;
}

std::string ExecutableDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, n);
  return path.substr(0, path.rfind('/'));
}

std::string CodeDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&CodeDir), &info) == 0 ||
      info.dli_fname == nullptr) {
    return ".";
  }
  char real[PATH_MAX];
  if (realpath(info.dli_fname, real) == nullptr) return ".";
  std::string path(real);
  return path.substr(0, path.rfind('/'));
}

std::string FindLoomBinary(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("LOOM_BIN_DIR")) dirs.push_back(env);
  dirs.push_back(ExecutableDir());
  // An installed libloom.so: P/lib, beside P/bin.
  dirs.push_back(CodeDir() + "/../bin");
#ifdef LOOM_BUILD_BIN_DIR
  dirs.push_back(LOOM_BUILD_BIN_DIR);
#endif
  for (const auto& d : dirs) {
    std::string path = d + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return name;
}

}  // namespace loom

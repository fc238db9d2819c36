#include "src/common/daemon.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace loom {
namespace {
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

void BlockStopSignals() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

long RaiseDescriptorLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? -1 : static_cast<long>(lim.rlim_cur);
}

std::string DescribeResourceError(int err) {
  auto limit = [](int resource) {
    rlimit lim{};
    if (getrlimit(resource, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) {
      return std::string("unlimited");
    }
    return absl::StrCat(lim.rlim_cur);
  };
  switch (err) {
    case EMFILE:
      return absl::StrCat(
          "out of file descriptors: this process reached RLIMIT_NOFILE (",
          limit(RLIMIT_NOFILE),
          "); raise the hard limit (ulimit -Hn, limits.conf, LimitNOFILE=) "
          "and restart the node");
    case ENFILE:
      return "out of file descriptors: the system-wide limit (fs.file-max) "
             "is reached";
    case EAGAIN:
      return absl::StrCat(
          "out of processes or threads: RLIMIT_NPROC (", limit(RLIMIT_NPROC),
          "), kernel.pid_max, kernel.threads-max or the cgroup's pids.max "
          "is reached");
    default:
      return std::strerror(err);
  }
}

int WaitForStopSignal() {
  sigset_t set = StopSignals();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

namespace {

// Descriptors this process has open now: /proc/self/fd's entries.
int OpenDescriptors() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (readdir(dir) != nullptr) ++n;
  closedir(dir);
  return n - 3;  // ".", ".." and the directory's own descriptor
}

// Slots in this process's descriptor table (FDSize in /proc/self/status):
// more than its highest open descriptor, so at least how many are open,
// read without listing them (a listing of thousands takes milliseconds).
int DescriptorSlots() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "FDSize:")) {
      int n = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(7)), &n)) {
        return n;
      }
      break;
    }
  }
  return -1;
}

}  // namespace

absl::Status CheckDescriptorHeadroom(int needed, const std::string& who,
                                     const std::string& what) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) {
    return absl::OkStatus();
  }
  const int64_t limit = static_cast<int64_t>(lim.rlim_cur);
  // Far from the limit (the usual case once it is raised to the hard
  // limit): no count needed.
  int slots = DescriptorSlots();
  if (slots >= 0 && slots + needed + kDescriptorReserve <= limit) {
    return absl::OkStatus();
  }
  static absl::Mutex mu;
  static int open = 0;
  static absl::Time counted = absl::InfinitePast();
  absl::MutexLock lock(&mu);
  absl::Time now = absl::Now();
  if (open > limit / 2 || now - counted > absl::Milliseconds(100)) {
    open = OpenDescriptors();
    counted = now;
  }
  if (open < 0 || open + needed + kDescriptorReserve <= limit) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "out of file descriptors: ", who, " has ", open, " open of its ",
      "RLIMIT_NOFILE (", limit, "), and ", what, " needs ", needed,
      " more; raise the hard limit (ulimit -Hn, limits.conf, LimitNOFILE=) "
      "and restart the node"));
}

}  // namespace loom

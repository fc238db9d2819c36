// src/common/process.h
//
// Starting and watching processes. A lifeline is a pipe whose write end
// stays with the parent: the child sees EOF on its end when the parent dies,
// even after kill -9, and exits. That is how workers follow their raylet and
// a private cluster follows its driver.
//
//   auto lifeline = MakeLifeline();
//   SpawnOptions opts{.argv = {"/path/loom-worker", "--raylet", addr}};
//   opts.lifeline_fd = lifeline->child_fd;
//   auto pid = Spawn(opts);
//   ...in the child: WatchLifelineFromEnv();  // exits on EOF
#ifndef LOOM_COMMON_PROCESS_H_
#define LOOM_COMMON_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace loom {

inline constexpr int kLifelineFd = 3;
inline constexpr int kControlFd = 4;  // a second channel (the fork server's)

struct Lifeline {
  int parent_fd = -1;  // keep open while the child should live
  int child_fd = -1;   // handed to the child as fd 3, then closed here
};
absl::StatusOr<Lifeline> MakeLifeline();

struct SpawnOptions {
  std::vector<std::string> argv;
  std::vector<std::string> extra_env;  // "NAME=value", over ours
  std::string stdout_path;             // empty: inherit
  std::string stderr_path;             // empty: inherit
  int lifeline_fd = -1;                // becomes fd 3 in the child
  int control_fd = -1;                 // becomes fd 4 in the child
  bool new_session = false;            // setsid: survives the terminal
  std::string cwd;                     // empty: ours
  // Added to the child's niceness (setpriority, once it has exec'd and
  // before it starts threads of its own, which inherit it): 0 keeps ours.
  int niceness = 0;
};
absl::StatusOr<pid_t> Spawn(const SpawnOptions& options);

// In a child: if LOOM_LIFELINE=1, a thread waits on fd 3 and _exits the
// process when the parent's end closes.
void WatchLifelineFromEnv();

// Replaces this process with a new run of its own executable
// (/proc/self/exe: the same binary even if the file was replaced since; the
// same pid) with `argv`. Every descriptor but stdin, stdout, stderr and the
// lifeline this process follows (WatchLifelineFromEnv) closes on exec, so
// the new run can bind the same ports and sockets, and still exits with its
// parent. Returns only on failure.
absl::Status ExecSelf(const std::vector<std::string>& argv);

// False once pid has exited: reaped, gone, or every thread a zombie.
bool ProcessAlive(pid_t pid);
// Reaps if pid is our child; for other processes polls kill(pid, 0).
bool WaitForExit(pid_t pid, absl::Duration timeout);
// SIGTERM, then SIGKILL after `grace`.
void TerminateProcess(pid_t pid, absl::Duration grace);

// This process's anonymous resident memory (RssAnon), in KiB; -1 if unknown.
int64_t RssAnonKb();

// The directory holding this executable.
std::string ExecutableDir();
// The directory of the file holding Loom's code in this process: libloom.so
// (a driver) or the executable (a daemon).
std::string CodeDir();
// Finds a Loom binary: $LOOM_BIN_DIR, beside this executable, CodeDir()/../bin
// (an installed libloom.so's bin/), then the build directory this was
// compiled in.
std::string FindLoomBinary(const std::string& name);

}  // namespace loom

#endif  // LOOM_COMMON_PROCESS_H_

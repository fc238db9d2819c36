// src/common/daemon.h
//
// What every Loom daemon's main does the same way: block SIGTERM/SIGINT
// before any thread starts, follow a lifeline if it has one, and wait for a
// stop signal.
//
//   BlockStopSignals();          // first thing in main
//   WatchLifelineFromEnv();
//   ...start servers...
//   WaitForStopSignal();         // returns on SIGTERM or SIGINT
#ifndef LOOM_COMMON_DAEMON_H_
#define LOOM_COMMON_DAEMON_H_

#include <string>

#include "absl/status/status.h"

namespace loom {

void BlockStopSignals();
int WaitForStopSignal();

// Raises this process's soft limit on open descriptors to its hard limit
// (children inherit it: a raylet's workers too) and returns the limit now
// in force. A node with thousands of actors holds a socket or two each.
long RaiseDescriptorLimit();

// An errno from fork, exec, socket or open, said with the limit it hit
// when it is one (EMFILE, ENFILE, EAGAIN from fork), else strerror.
std::string DescribeResourceError(int err);

// ResourceExhausted when opening `needed` more descriptors (for `what`, e.g.
// "a worker") would leave this process (`who`, e.g. "the raylet") fewer
// than kDescriptorReserve under its RLIMIT_NOFILE; the message names the
// limit, the count and how to raise it. OK otherwise. Reads the size of
// the descriptor table (an upper bound of the count, cheap); only when that
// comes near the limit counts /proc/self/fd, at most every 100 ms while
// well under it. Thread-safe.
absl::Status CheckDescriptorHeadroom(int needed, const std::string& who,
                                     const std::string& what);
inline constexpr int kDescriptorReserve = 32;

// A raylet's exit status when the head fenced it: it had been declared dead
// (cut off, or silent past the node timeout) and came back.
inline constexpr int kFencedExitCode = 3;
// A raylet's exit status when the head refused it for running another
// protocol or build (see src/common/version.h); its stderr names both.
inline constexpr int kVersionMismatchExitCode = 4;

}  // namespace loom

#endif  // LOOM_COMMON_DAEMON_H_

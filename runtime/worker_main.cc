// loom-worker: the C++ worker host. Started by a raylet's worker pool; runs
// the tasks pushed to it and exits when its raylet goes away.
//
//   loom-worker --raylet-address A --worker-id HEX [--host H]
//               [--session-dir D] [--gcs-address G]
//   loom-worker --zygote ...the same, without --worker-id
//
// As a zygote (fork server) it stays single-threaded, with the libraries
// loaded and relocated once (every symbol bound: the raylet starts it with
// LD_BIND_NOW); each worker id the raylet writes on fd 4
// becomes a forked worker, whose pid goes back on fd 4. A fork costs about
// a millisecond where exec and dynamic linking cost about twelve.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "runtime/core_worker.h"
#include "src/common/logging.h"
#include "src/common/process.h"
#include "src/common/wire.h"

namespace {

struct Args {
  std::string raylet, host = "127.0.0.1", session_dir, worker_id_hex, gcs;
  bool zygote = false;
};

// What the worker prints from now on goes to files of the job's own, which
// its raylet follows and publishes to the job's driver: stdout and stderr,
// line-buffered, to <session>/logs/cpp-<job>-<pid>.out and .err.
void PrintToJobFiles(const std::string& session_dir, const loom::JobId& job) {
  std::fflush(stdout);
  std::fflush(stderr);
  for (auto [fd, ext] : {std::pair{1, "out"}, std::pair{2, "err"}}) {
    std::string path = absl::StrCat(session_dir, "/logs/cpp-", job.Hex(), "-",
                                    getpid(), ".", ext);
    int f = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) {
      spdlog::warn("cannot open {}: {}", path, strerror(errno));
      continue;
    }
    dup2(f, fd);  // dup2 clears O_CLOEXEC on fd
    close(f);
  }
}

int RunWorker(const Args& args) {
  loom::WatchLifelineFromEnv();
  loom::InitLogging(absl::StrCat("worker-", getpid()),
                    args.session_dir.empty() ? "" : args.session_dir + "/logs",
                    /*create_on_first_message=*/true);
  auto worker_id =
      loom::WorkerId::FromBinary(absl::HexStringToBytes(args.worker_id_hex));
  if (!worker_id.ok()) {
    spdlog::error("bad --worker-id: {}", worker_id.status().ToString());
    return 2;
  }
  loom::CoreWorker::Options options;
  options.is_driver = false;
  options.host = args.host;
  options.raylet_address = args.raylet;
  options.gcs_address = args.gcs;
  options.worker_id = *worker_id;
  if (!args.session_dir.empty()) {
    options.store_socket = args.session_dir + "/sockets/store";
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line as it ends
    options.on_job = [dir = args.session_dir](const loom::JobId& job) {
      PrintToJobFiles(dir, job);
    };
  }
  auto cw = loom::CoreWorker::Create(options);
  if (!cw.ok()) {
    spdlog::error("worker start failed: {}", cw.status().ToString());
    return 1;
  }
  (*cw)->WaitForExit();
  loom::SetGlobalCoreWorker(nullptr);
  // Exit without unwinding: user code may hold threads and statics.
  _exit(0);
}

// Reads one line (a worker id) from fd; false at EOF or error.
bool ReadLine(int fd, std::string* line) {
  line->clear();
  char c;
  while (true) {
    ssize_t n = read(fd, &c, 1);
    if (n <= 0) return false;
    if (c == '\n') return true;
    if (line->size() > 64) return false;
    line->push_back(c);
  }
}

int RunZygote(Args args) {
  // The kernel reaps the workers (none becomes a zombie): the server sleeps
  // until the raylet writes, instead of waking to reap.
  signal(SIGCHLD, SIG_IGN);
  if (write(loom::kControlFd, "ready\n", 6) != 6) _exit(1);
  while (true) {
    pollfd fds[2] = {{loom::kLifelineFd, POLLIN, 0},
                     {loom::kControlFd, POLLIN, 0}};
    int ready = poll(fds, 2, -1);
    if (ready < 0) continue;
    if (fds[0].revents) _exit(0);  // the raylet is gone; workers follow
    if (!fds[1].revents) continue;
    std::string id;
    if (!ReadLine(loom::kControlFd, &id)) _exit(0);
    pid_t pid = fork();
    if (pid == 0) {
      signal(SIGCHLD, SIG_DFL);  // the worker's own children are waited for
      close(loom::kControlFd);
      if (getenv("LOOM_UNSET_BIND_NOW") != nullptr) {
        // Set for the zygote alone (worker_pool.cc): the worker's own
        // children bind lazily, as usual.
        unsetenv("LD_BIND_NOW");
        unsetenv("LOOM_UNSET_BIND_NOW");
      }
      args.worker_id_hex = id;
      args.zygote = false;
      _exit(RunWorker(args));
    }
    std::string reply = absl::StrCat(pid < 0 ? -errno : pid, "\n");
    if (write(loom::kControlFd, reply.data(), reply.size()) < 0) _exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{"loom-worker: runs Loom tasks (started by loom-raylet)"};
  app.add_option("--raylet-address", args.raylet)->required();
  app.add_option("--host", args.host);
  app.add_option("--session-dir", args.session_dir);
  app.add_option("--worker-id", args.worker_id_hex);
  app.add_option("--gcs-address", args.gcs);
  app.add_flag("--zygote", args.zygote, "serve forks of this process");
  CLI11_PARSE(app, argc, argv);
  if (args.zygote) return RunZygote(args);
  if (args.worker_id_hex.empty()) {
    std::fprintf(stderr, "loom-worker: --worker-id is required\n");
    return 2;
  }
  return RunWorker(args);
}

#include "src/raylet/worker_pool.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/common/daemon.h"
#include "src/common/grpc_cores.h"
#include "src/common/process.h"

namespace loom::raylet {

WorkerPool::WorkerPool(Options options) : options_(std::move(options)) {
  if (Metrics* m = options_.metrics) {
    const char* help = "Worker processes by state";
    starting_ = &m->Gauge("loom_workers", help, {{"state", "starting"}});
    idle_ = &m->Gauge("loom_workers", help, {{"state", "idle"}});
    leased_ = &m->Gauge("loom_workers", help, {{"state", "leased"}});
    start_ms_ = &m->Histogram("loom_worker_start_ms",
                              "Milliseconds from spawn to registration",
                              {5, 10, 20, 50, 100, 200, 500, 1000, 5000});
    cold_start_ms_ = &m->Histogram(
        "loom_worker_start_with_fork_server_ms",
        "Milliseconds from a fork server's spawn to the registration of the "
        "first worker it forked",
        {5, 10, 20, 50, 100, 200, 500, 1000, 5000});
    started_total_ =
        &m->Counter("loom_workers_started_total", "Worker processes started");
  }
}

WorkerPool::~WorkerPool() { KillAll(); }

std::string RuntimeKey(const rpc::WorkerRuntime& runtime) {
  if (runtime.language() != rpc::WorkerRuntime::PYTHON) return "";
  std::string key =
      absl::StrCat("python\n", runtime.python_executable(), "\n",
                   absl::StrJoin(runtime.python_path(), ":"), "\n",
                   runtime.cwd(), "\n", runtime.runtime_env());
  std::map<std::string, std::string> vars(runtime.env_vars().begin(),
                                          runtime.env_vars().end());
  for (const auto& [k, v] : vars) absl::StrAppend(&key, "\n", k, "=", v);
  return key;
}

void WorkerPool::Prestart() {
  StartZygote(rpc::WorkerRuntime());
  StartWorkers(options_.prestart).IgnoreError();  // logged
}

void WorkerPool::PrestartForkServer(const rpc::WorkerRuntime& runtime) {
  std::string key = RuntimeKey(runtime);
  if (key.empty() || zygotes_.count(key)) return;
  int python = 0;
  for (const auto& [k, z] : zygotes_) python += !k.empty();
  if (python >= kMaxPrestartedRuntimes) return;
  spdlog::info("starting a fork server for {}'s workers",
               runtime.python_executable());
  StartZygote(runtime);
}

std::vector<std::string> WorkerPool::WorkerArgs() const {
  return {"--raylet-address", options_.raylet_address, "--host",
          options_.host,      "--session-dir",         options_.session_dir,
          "--gcs-address",    options_.gcs_address};
}

namespace {

// Workers (and the fork servers they come from) tell gRPC they have one
// core (grpc_cores.h), unless the raylet was told a number itself. And
// they run without gRPC's client-channel backup poller (a 5 s timer for a
// process in which no thread polls: a client making only blocking calls,
// whose channel would not reconnect between them without it): a worker's
// serve thread always waits on its queue, so the poller only woke it (an
// idle actor ~21 times in 10 s without it, ~25 with). Unless set already.
std::vector<std::string> WorkerEnv() {
  std::vector<std::string> env;
  if (std::getenv(rpc::kGrpcCoresEnv) == nullptr) {
    env.push_back(absl::StrCat(rpc::kGrpcCoresEnv, "=1"));
  }
  constexpr char kBackupPoll[] = "GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS";
  if (std::getenv(kBackupPoll) == nullptr) {
    env.push_back(absl::StrCat(kBackupPoll, "=0"));
  }
  return env;
}

// A fork server's first line, once its imports are done: "ready". False
// when it closes the socket (it died) or stays silent for two minutes.
bool WaitForReady(int fd) {
  std::string line;
  while (line.empty() || line.back() != '\n') {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 120000) <= 0) return false;
    char c;
    if (read(fd, &c, 1) != 1) return false;  // one byte: nothing after it
    line.push_back(c);
    if (line.size() > 16) return false;
  }
  return line == "ready\n";
}

}  // namespace

// The Python fork server: the driver's interpreter, its sys.path and
// working directory, with loom, numpy and cloudpickle imported once. A C++
// driver's Python workers put their path before the interpreter's own
// (LOOM_PYTHON_PATH_MODE=prepend).
static constexpr char kPythonBootstrap[] =
    "import os, sys\n"
    "path = os.environ['LOOM_PYTHON_PATH'].split(os.pathsep)\n"
    "if os.environ.get('LOOM_PYTHON_PATH_MODE') == 'prepend':\n"
    "    sys.path[:0] = [p for p in path if p]\n"
    "else:\n"
    "    sys.path[:] = path\n"
    "cwd = os.environ['LOOM_CWD']\n"
    "if os.path.isdir(cwd): os.chdir(cwd)  # else not on this host\n"
    "from loom._private import executor\n"
    "executor.zygote_main(sys.argv[1:])\n";

WorkerPool::Zygote* WorkerPool::StartZygote(const rpc::WorkerRuntime& runtime) {
  std::string key = RuntimeKey(runtime);
  if (auto it = zygotes_.find(key); it != zygotes_.end()) return &it->second;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return nullptr;
  }
  auto lifeline = MakeLifeline();
  if (!lifeline.ok()) {
    close(fds[0]);
    close(fds[1]);
    return nullptr;
  }
  SpawnOptions spawn;
  if (key.empty()) {
    spawn.argv = {options_.worker_binary, "--zygote"};
    spawn.extra_env = WorkerEnv();
    // It binds every symbol of its libraries as it starts, so that its
    // workers inherit resolved tables instead of each looking up what it
    // calls first (and copying the pages it writes them to): ~10% more
    // C++ actors a second. Its workers drop the variable again. (Python
    // loads its extension modules, and what they need, bound already.)
    if (std::getenv("LD_BIND_NOW") == nullptr) {
      spawn.extra_env.push_back("LD_BIND_NOW=1");
      spawn.extra_env.push_back("LOOM_UNSET_BIND_NOW=1");
    }
  } else {
    spawn.argv = {runtime.python_executable(), "-c", kPythonBootstrap};
    spawn.extra_env = WorkerEnv();
    spawn.extra_env.insert(
        spawn.extra_env.end(),
        {"LOOM_PYTHON_PATH=" + absl::StrJoin(runtime.python_path(), ":"),
         "LOOM_CWD=" + runtime.cwd(), "PYTHONUNBUFFERED=1",
         "LOOM_RUNTIME_ENV=" + runtime.runtime_env()});
    for (const auto& [k, v] : runtime.env_vars()) {
      spawn.extra_env.push_back(absl::StrCat(k, "=", v));
    }
  }
  for (auto& a : WorkerArgs()) spawn.argv.push_back(a);
  if (!options_.session_dir.empty()) {
    spawn.stderr_path = options_.session_dir + "/logs/workers.err";
    spawn.stdout_path = options_.session_dir + "/logs/workers.out";
  }
  spawn.lifeline_fd = lifeline->child_fd;
  spawn.control_fd = fds[1];
  spawn.niceness = options_.niceness;  // its workers inherit it
  auto pid = Spawn(spawn);
  close(lifeline->child_fd);
  close(fds[1]);
  if (!pid.ok()) {
    spdlog::warn("no fork server for {} ({})",
                 key.empty() ? "C++" : runtime.python_executable(),
                 pid.status().ToString());
    close(lifeline->parent_fd);
    close(fds[0]);
    return nullptr;
  }
  Zygote& z = zygotes_[key];
  z.pid = *pid;
  z.fd = fds[0];
  z.lifeline = lifeline->parent_fd;
  z.spawned = options_.clock->Now();
  z.runtime = runtime;
  z.generation = ++zygote_generation_;
  // Its "ready" is read off the loop: the raylet goes on heartbeating and
  // granting while the server imports.
  z.io = std::make_unique<WorkQueue>("fork-server", 1);
  z.io->Post([this, fd = z.fd, key, generation = z.generation] {
    bool ok = WaitForReady(fd);
    options_.post(
        [this, key, generation, ok] { ZygoteStarted(key, generation, ok); });
  });
  return &z;
}

void WorkerPool::ZygoteStarted(const std::string& key, uint64_t generation,
                               bool ok) {
  auto it = zygotes_.find(key);
  if (it == zygotes_.end() || it->second.generation != generation) return;
  Zygote& z = it->second;
  int pending = std::exchange(z.pending, 0);
  rpc::WorkerRuntime runtime = z.runtime;
  if (ok) {
    z.ready = true;
    spdlog::info("fork server pid {} ready in {}", z.pid,
                 absl::FormatDuration(options_.clock->Now() - z.spawned));
    StartWorkers(pending, runtime).IgnoreError();  // logged
    return;
  }
  spdlog::warn("fork server pid {} exited before it was ready", z.pid);
  StopZygote(key);
  if (key.empty()) {  // C++: spawned one by one from now on
    StartWorkers(pending, runtime).IgnoreError();
    return;
  }
  std::string why = NoPythonWorkers(runtime);
  if (options_.on_runtime_failed) options_.on_runtime_failed(key, why);
}

std::string WorkerPool::NoPythonWorkers(const rpc::WorkerRuntime& runtime) {
  std::string why = absl::StrCat(
      "cannot start Python workers with ", runtime.python_executable(),
      ": its fork server exited (does that interpreter import loom? see ",
      options_.session_dir, "/logs/workers.err)");
  spdlog::error("{}", why);
  UpdateGauges();
  return why;
}

void WorkerPool::StopZygote(const std::string& key) {
  auto it = zygotes_.find(key);
  if (it == zygotes_.end()) return;
  Zygote& z = it->second;
  kill(z.pid, SIGKILL);
  waitpid(z.pid, nullptr, 0);
  z.io.reset();  // its socket closed: what it waits for fails at once
  close(z.fd);
  close(z.lifeline);
  zygotes_.erase(it);
}

namespace {

// Writes a worker id on a fork server's control socket and reads the pid of
// the worker it forked back. Off the loop.
absl::StatusOr<pid_t> ForkOver(int fd, const WorkerId& id) {
  std::string line = id.Hex() + "\n";
  if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size())) {
    return absl::UnavailableError("fork server closed");
  }
  absl::Time start = absl::Now();
  std::string reply;
  while (reply.empty() || reply.back() != '\n') {
    pollfd p{fd, POLLIN, 0};
    // It said "ready": a fork takes milliseconds (seconds when the machine
    // is very loaded).
    if (poll(&p, 1, 30000) <= 0) {
      return absl::DeadlineExceededError("fork server silent");
    }
    char buf[32];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return absl::UnavailableError("fork server closed");
    reply.append(buf, n);
  }
  if (absl::Now() - start > absl::Milliseconds(100)) {
    spdlog::info("fork server took {} to fork a worker",
                 absl::FormatDuration(absl::Now() - start));
  }
  pid_t pid = std::atoi(reply.c_str());
  if (pid < -1) {  // -errno from the fork server
    return absl::ResourceExhaustedError(absl::StrCat(
        "fork server could not fork a worker: ", DescribeResourceError(-pid)));
  }
  if (pid <= 0) return absl::InternalError("fork failed");
  return pid;
}

}  // namespace

void WorkerPool::Fork(Zygote& zygote, const std::string& key) {
  auto w = std::make_unique<Worker>();
  w->id = WorkerId::FromRandom();
  w->runtime = key;
  w->started = options_.clock->Now();
  if (!zygote.asked) w->fork_server_spawned = zygote.spawned;
  zygote.asked = true;
  zygote.io->Post(
      [this, fd = zygote.fd, id = w->id, key, generation = zygote.generation] {
        absl::StatusOr<pid_t> pid = ForkOver(fd, id);
        options_.post([this, key, generation, id, pid] {
          Forked(key, generation, id, pid);
        });
      });
  forking_[w->id] = std::move(w);
}

void WorkerPool::Forked(const std::string& key, uint64_t generation,
                        const WorkerId& id, const absl::StatusOr<pid_t>& pid) {
  auto z = zygotes_.find(key);
  bool current = z != zygotes_.end() && z->second.generation == generation;
  auto it = forking_.find(id);
  if (it == forking_.end()) {
    if (workers_.count(id)) {  // registered before this answer came
      if (current) z->second.forked = true;
    } else if (pid.ok()) {
      kill(*pid, SIGKILL);  // dropped with the pool's workers (KillAll)
    }
    return;
  }
  std::unique_ptr<Worker> w = std::move(it->second);
  forking_.erase(it);
  if (pid.ok()) {
    if (current) z->second.forked = true;
    Started(std::move(w), *pid);
    UpdateGauges();
    return;
  }
  UpdateGauges();
  if (absl::IsResourceExhausted(pid.status())) {
    // Out of processes or memory: not the server's fault, and a new one
    // would not fork either. The leases fail naming the limit.
    spdlog::error("{}", pid.status().ToString());
    if (options_.on_runtime_failed) {
      options_.on_runtime_failed(key, std::string(pid.status().message()));
    }
    return;
  }
  if (!current) {
    // Its fork server was stopped meanwhile: asked again of the one that
    // replaced it, or spawned (C++ without one).
    if (z != zygotes_.end()) {
      StartWorkers(1, z->second.runtime).IgnoreError();  // logged
    } else if (key.empty()) {
      StartWorkers(1).IgnoreError();
    }
    return;
  }
  // A fork server that has forked before and fails now died (killed, or
  // crashed): it is a system failure, not the runtime's, so a fresh one is
  // started once. One that fails on its first fork cannot start workers of
  // this runtime at all.
  bool restart = z->second.forked;
  rpc::WorkerRuntime runtime = z->second.runtime;
  spdlog::warn("fork server pid {} failed ({}); {}", z->second.pid,
               pid.status().ToString(),
               restart       ? "starting a new one"
               : key.empty() ? "spawning workers from now on"
                             : "giving up on this runtime");
  StopZygote(key);
  if (restart) StartZygote(runtime);
  if (restart || key.empty()) {
    StartWorkers(1, runtime).IgnoreError();  // logged
  } else if (options_.on_runtime_failed) {
    options_.on_runtime_failed(key, NoPythonWorkers(runtime));
  }
}

absl::Status WorkerPool::StartWorkers(int n,
                                      const rpc::WorkerRuntime& runtime) {
  std::string key = RuntimeKey(runtime);
  int cap = std::max(8, options_.max_starting > 0 ? options_.max_starting
                                                  : 2 * options_.prestart);
  int starting = 0;
  for (const auto& [k, z] : zygotes_) starting += z.pending;
  starting += CountState(Worker::kStarting) + forking_.size();
  n = std::min(n, std::max(0, cap - starting));
  // Each worker holds a few of the raylet's descriptors (its connection in,
  // a channel out, a pidfd, a lifeline when spawned): out of them, a worker
  // could not even register, and would be started again and again.
  if (n > 0) {
    if (absl::Status s = CheckDescriptorHeadroom(kDescriptorsPerWorker,
                                                 "the raylet", "a worker");
        !s.ok()) {
      spdlog::error("not starting workers: {}", s.ToString());
      return s;
    }
  }
  for (int i = 0; i < n; ++i) {
    Zygote* zygote = nullptr;
    if (auto it = zygotes_.find(key); it != zygotes_.end()) {
      zygote = &it->second;
    } else if (!key.empty()) {
      zygote = StartZygote(runtime);
    }
    if (zygote != nullptr) {
      // A fork server still starting forks this worker once it is ready
      // (ZygoteStarted).
      if (zygote->ready) {
        Fork(*zygote, key);
      } else {
        zygote->pending++;
      }
      continue;
    }
    if (!key.empty()) {
      return absl::FailedPreconditionError(NoPythonWorkers(runtime));
    }
    auto w = std::make_unique<Worker>();
    w->id = WorkerId::FromRandom();
    auto lifeline = MakeLifeline();
    if (!lifeline.ok()) {
      spdlog::error("worker lifeline: {}", lifeline.status().ToString());
      return lifeline.status();
    }
    SpawnOptions spawn;
    spawn.argv = {options_.worker_binary, "--worker-id", w->id.Hex()};
    for (auto& a : WorkerArgs()) spawn.argv.push_back(a);
    spawn.extra_env = WorkerEnv();
    if (!options_.session_dir.empty()) {
      spawn.stderr_path = options_.session_dir + "/logs/workers.err";
      spawn.stdout_path = options_.session_dir + "/logs/workers.out";
    }
    spawn.lifeline_fd = lifeline->child_fd;
    spawn.niceness = options_.niceness;
    auto pid = Spawn(spawn);
    close(lifeline->child_fd);
    if (!pid.ok()) {
      close(lifeline->parent_fd);
      spdlog::error("cannot start worker: {}", pid.status().ToString());
      return pid.status();
    }
    w->lifeline_fd = lifeline->parent_fd;
    w->started = options_.clock->Now();
    Started(std::move(w), *pid);
  }
  UpdateGauges();
  return absl::OkStatus();
}

absl::StatusOr<Worker*> WorkerPool::Register(const WorkerId& id, pid_t pid,
                                             int port,
                                             const std::string& control_key) {
  if (pid <= 0) return absl::InvalidArgumentError("pid must be positive");
  auto it = workers_.find(id);
  if (auto f = forking_.find(id); it == workers_.end() && f != forking_.end()) {
    // Forked, and registering before the fork server's answer reached the
    // loop (Forked then finds it here).
    Started(std::move(f->second), pid);
    forking_.erase(f);
    it = workers_.find(id);
  }
  if (it == workers_.end()) {
    return absl::NotFoundError("unknown worker id: not started by this raylet");
  }
  Worker* w = it->second.get();
  if (w->pid != pid) return absl::InvalidArgumentError("pid does not match");
  if (port <= 0 || port > 65535) {
    return absl::InvalidArgumentError("port out of range");
  }
  if (control_key.size() != kControlKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("control_key must be ", kControlKeySize, " bytes"));
  }
  if (w->state != Worker::kStarting) {
    return absl::AlreadyExistsError("worker already registered");
  }
  w->port = port;
  w->control_key = control_key;
  SetState(w, Worker::kIdle);
  w->idle_since = options_.clock->Now();
  if (start_ms_) {
    start_ms_->Observe(absl::ToDoubleMilliseconds(w->idle_since - w->started));
  }
  if (cold_start_ms_ && w->fork_server_spawned) {
    cold_start_ms_->Observe(
        absl::ToDoubleMilliseconds(w->idle_since - *w->fork_server_spawned));
  }
  UpdateGauges();
  return w;
}

Worker* WorkerPool::PopIdle(const JobId& job, const std::vector<int>& gpus,
                            const std::string& runtime) {
  auto idle = idle_workers_.find(runtime);
  if (idle == idle_workers_.end()) return nullptr;
  Worker* fresh = nullptr;
  for (Worker* w : idle->second) {
    // GPUs only to a worker that held none or the same, and never ran
    // without.
    bool gpus_ok = (w->gpu_ids.empty() || w->gpu_ids == gpus) &&
                   (gpus.empty() || !w->ran_without_gpus);
    if (!gpus_ok) continue;
    if (w->job && *w->job == job) {
      fresh = w;
      break;  // a worker that already serves the job: code is loaded
    }
    if (!w->job && fresh == nullptr) fresh = w;
  }
  if (fresh) {
    SetState(fresh, Worker::kLeased);
    fresh->job = job;
    if (!gpus.empty()) fresh->gpu_ids = gpus;
    if (gpus.empty()) fresh->ran_without_gpus = true;
    UpdateGauges();
  }
  return fresh;
}

void WorkerPool::PushIdle(Worker* worker) {
  SetState(worker, Worker::kIdle);
  worker->idle_since = options_.clock->Now();
  UpdateGauges();
}

Worker* WorkerPool::Find(const WorkerId& id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : it->second.get();
}

void WorkerPool::Started(std::unique_ptr<Worker> w, pid_t pid) {
  w->pid = pid;
  Watch(pid);
  if (started_total_) started_total_->Increment();
  Add(std::move(w));
}

void WorkerPool::Watch(pid_t pid) {
  if (options_.watch == nullptr || !options_.watch->Watch(pid)) {
    unwatched_ = true;
  }
}

std::vector<Worker> WorkerPool::ReapDead() {
  std::vector<Worker> dead;
  if (exited_.empty() && !unwatched_) return dead;
  absl::flat_hash_set<pid_t> lingering;
  for (auto& [id, w] : workers_) {
    bool noted = exited_.contains(w->pid);
    if (!noted && !unwatched_) continue;
    int status = 0;
    pid_t r = waitpid(w->pid, &status, WNOHANG);
    if (r == w->pid) {
      spdlog::info("worker pid {} exited (status {})", w->pid, status);
      dead.push_back(*w);
    } else if (r < 0 && errno == ECHILD && !ProcessAlive(w->pid)) {
      // Forked by the fork server (its child, not ours): gone or a zombie.
      spdlog::info("worker pid {} exited", w->pid);
      dead.push_back(*w);
    } else if (noted) {
      lingering.insert(w->pid);
    }
  }
  // Pids that are no worker's (a driver's, a worker already removed) go.
  exited_ = std::move(lingering);
  for (const Worker& w : dead) Remove(w.id);
  if (!dead.empty()) UpdateGauges();
  return dead;
}

void WorkerPool::Maintain() {
  absl::Time now = options_.clock->Now();
  int fresh = 0;
  for (const auto& [id, w] : forking_) fresh += w->runtime.empty();
  std::vector<WorkerId> stale;
  for (auto& [id, w] : workers_) {
    if (w->runtime.empty() && (w->state == Worker::kStarting ||
                               (w->state == Worker::kIdle && !w->job))) {
      ++fresh;
    }
  }
  int idle_total = CountState(Worker::kIdle);
  for (auto& [id, w] : workers_) {
    if (w->state == Worker::kIdle && !w->holds_objects &&
        now - w->idle_since > options_.idle_timeout &&
        idle_total - static_cast<int>(stale.size()) > options_.prestart) {
      stale.push_back(id);
    }
  }
  for (const auto& id : stale) Kill(id);
  if (fresh < options_.prestart &&
      static_cast<int>(workers_.size() + forking_.size()) <
          options_.prestart * 4) {
    StartWorkers(options_.prestart - fresh).IgnoreError();  // logged
  }
}

std::vector<const Worker*> WorkerPool::All() const {
  std::vector<const Worker*> all;
  all.reserve(workers_.size());
  for (const auto& [id, w] : workers_) all.push_back(w.get());
  return all;
}

void WorkerPool::Kill(const WorkerId& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  kill(it->second->pid, SIGKILL);
  waitpid(it->second->pid, nullptr, 0);
  Remove(id);
  UpdateGauges();
}

std::vector<Worker> WorkerPool::KillJob(const JobId& job) {
  std::vector<Worker> killed;
  for (auto& [id, w] : workers_) {
    if (w->job && *w->job == job && !w->detached) killed.push_back(*w);
  }
  for (const auto& w : killed) Kill(w.id);
  return killed;
}

void WorkerPool::KillAll() {
  while (!zygotes_.empty()) StopZygote(zygotes_.begin()->first);
  forking_.clear();  // their fork servers' lifelines closed: they exit
  for (auto& [id, w] : workers_) kill(w->pid, SIGKILL);
  for (auto& [id, w] : workers_) {
    waitpid(w->pid, nullptr, 0);  // forked ones are the fork server's
    if (w->lifeline_fd >= 0) close(w->lifeline_fd);
  }
  workers_.clear();
  for (int& n : counts_) n = 0;
  starting_by_runtime_.clear();
  idle_workers_.clear();
  UpdateGauges();
}

Worker* WorkerPool::Add(std::unique_ptr<Worker> w) {
  Worker* added = w.get();
  workers_[w->id] = std::move(w);
  Track(added, +1);
  return added;
}

void WorkerPool::SetState(Worker* w, Worker::State state) {
  Track(w, -1);
  w->state = state;
  Track(w, +1);
}

void WorkerPool::Track(Worker* w, int delta) {
  counts_[w->state] += delta;
  if (w->state == Worker::kStarting) {
    int& n = starting_by_runtime_[w->runtime];
    n += delta;
    if (n == 0) starting_by_runtime_.erase(w->runtime);
  } else if (w->state == Worker::kIdle) {
    auto& idle = idle_workers_[w->runtime];
    if (delta > 0) {
      idle.insert(w);
    } else {
      idle.erase(w);
      if (idle.empty()) idle_workers_.erase(w->runtime);
    }
  }
}

void WorkerPool::Remove(const WorkerId& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  if (it->second->lifeline_fd >= 0) close(it->second->lifeline_fd);
  if (options_.watch != nullptr) options_.watch->Forget(it->second->pid);
  Track(it->second.get(), -1);
  workers_.erase(it);
}

bool WorkerPool::AnyStarting() const {
  for (const auto& [key, z] : zygotes_) {
    if (z.pending > 0) return true;
  }
  return !forking_.empty() || counts_[Worker::kStarting] > 0;
}

int WorkerPool::CountStarting(const std::string& runtime) const {
  auto z = zygotes_.find(runtime);
  int n = z == zygotes_.end() ? 0 : z->second.pending;
  for (const auto& [id, w] : forking_) n += w->runtime == runtime;
  auto starting = starting_by_runtime_.find(runtime);
  return n + (starting == starting_by_runtime_.end() ? 0 : starting->second);
}

int WorkerPool::CountRuntime(const std::string& runtime) const {
  auto z = zygotes_.find(runtime);
  int n = z == zygotes_.end() ? 0 : z->second.pending;
  for (const auto& [id, w] : forking_) n += w->runtime == runtime;
  for (const auto& [id, w] : workers_) n += w->runtime == runtime;
  return n;
}

int WorkerPool::CountState(Worker::State s) const { return counts_[s]; }

void WorkerPool::UpdateGauges() {
  if (!starting_) return;
  starting_->Set(CountState(Worker::kStarting));
  idle_->Set(CountState(Worker::kIdle));
  leased_->Set(CountState(Worker::kLeased));
}

}  // namespace loom::raylet

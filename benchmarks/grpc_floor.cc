// The gRPC floor under every Loom RPC, measured through Loom's own helper
// (src/common/rpc.h) against an echo server in a second process:
//   grpc_unary_roundtrip_floor  sync unary echoes, one at a time (us each)
//   grpc_pipelined_ceiling      callback-API echoes, 256 in flight (calls/s)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "benchmarks/bench.grpc.pb.h"
#include "benchmarks/bench_util.h"
#include "src/common/rpc.h"

namespace loom::bench {
namespace {

constexpr int kUnaryBatch = 10000;
constexpr int kPipelineDepth = 256;
constexpr char kPayload[] = "0123456789abcdef";

class EchoService final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx,
                                 const EchoMsg* request,
                                 EchoMsg* reply) override {
    reply->set_payload(request->payload());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// `loom-bench --echo-server` in a child process; killed when this goes away
// (and by the kernel should this process die first).
class EchoServerProcess {
 public:
  EchoServerProcess() {
    std::string exe = SelfExe();
    pid_t parent = getpid();
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      dup2(fds[1], STDOUT_FILENO);
      execl(exe.c_str(), exe.c_str(), "--echo-server",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    port_ = ReadPort(fds[0]);
    close(fds[0]);
    if (port_ <= 0) {
      int status = Stop();
      throw std::runtime_error(
          "echo server did not report a port (wait status " +
          std::to_string(status) + ")");
    }
  }
  ~EchoServerProcess() { Stop(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  static int ReadPort(int fd) {
    std::string line;
    char c;
    while (line.size() < 16) {
      pollfd p{fd, POLLIN, 0};
      int ready = poll(&p, 1, 10000);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return -1;
      ssize_t n = read(fd, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n != 1) return -1;
      if (c == '\n') break;
      line.push_back(c);
    }
    try {
      return std::stoi(line);
    } catch (const std::exception&) {
      return -1;
    }
  }

  // Returns the child's wait status.
  int Stop() {
    if (pid_ <= 0) return 0;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  pid_t pid_ = -1;
  int port_ = -1;
};

double UnaryLatencyUs(Echo::Stub* stub, double min_seconds) {
  EchoMsg request;
  request.set_payload(kPayload);
  double rate = RateFor(min_seconds, [&] {
    for (int i = 0; i < kUnaryBatch; ++i) {
      grpc::ClientContext ctx;
      EchoMsg reply;
      grpc::Status s = stub->Echo(&ctx, request, &reply);
      if (!s.ok())
        throw std::runtime_error("echo failed: " + s.error_message());
    }
    return int64_t{kUnaryBatch};
  });
  return 1e6 / rate;
}

// kPipelineDepth callback-API calls in flight; each completion issues the
// next until the run's time is up.
class Pipeline {
 public:
  explicit Pipeline(Echo::Stub* stub) : stub_(stub), slots_(kPipelineDepth) {
    for (auto& s : slots_) s.request.set_payload(kPayload);
  }

  // Calls per second over at least min_seconds.
  double Run(double min_seconds) {
    stop_ = false;
    completed_ = 0;
    failed_ = 0;
    in_flight_ = kPipelineDepth;
    int64_t start = NowNs();
    for (auto& s : slots_) Issue(&s);
    std::this_thread::sleep_for(std::chrono::duration<double>(min_seconds));
    stop_ = true;
    int64_t done = completed_.load();
    double elapsed = SecondsSince(start);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0; });
    if (failed_ > 0) throw std::runtime_error("pipelined echoes failed");
    return done / elapsed;
  }

 private:
  struct Slot {
    std::unique_ptr<grpc::ClientContext> ctx;
    EchoMsg request;
    EchoMsg reply;
  };

  void Issue(Slot* slot) {
    slot->ctx = std::make_unique<grpc::ClientContext>();
    stub_->async()->Echo(slot->ctx.get(), &slot->request, &slot->reply,
                         [this, slot](grpc::Status s) { OnDone(slot, s); });
  }

  void OnDone(Slot* slot, const grpc::Status& s) {
    if (!s.ok()) {
      failed_.fetch_add(1);
      stop_ = true;
    } else {
      completed_.fetch_add(1);
    }
    if (!stop_.load()) {
      Issue(slot);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (--in_flight_ == 0) cv_.notify_all();
  }

  Echo::Stub* stub_;
  std::vector<Slot> slots_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> completed_{0};
  std::atomic<int64_t> failed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;  // guarded by mu_
};

std::vector<Result> RunUnaryFloor() {
  EchoServerProcess server;
  auto stub = Echo::NewStub(rpc::MakeChannel(server.address()));
  double us = MedianOfRuns([&](double min_seconds) {
    return UnaryLatencyUs(stub.get(), min_seconds);
  });
  return {{"grpc_unary_roundtrip_floor", us, "us"}};
}

std::vector<Result> RunPipelinedCeiling() {
  EchoServerProcess server;
  auto stub = Echo::NewStub(rpc::MakeChannel(server.address()));
  Pipeline pipeline(stub.get());
  double rate = MedianOfRuns(
      [&](double min_seconds) { return pipeline.Run(min_seconds); });
  return {{"grpc_pipelined_ceiling", rate, "calls/s"}};
}

}  // namespace

int RunEchoServer() {
  // Block the stop signals before gRPC starts its threads, then wait for one.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  EchoService service;
  int port = 0;
  auto server = rpc::StartServer("127.0.0.1", 0, {&service}, &port);
  if (!server.ok()) {
    std::fprintf(stderr, "echo server: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  std::printf("%d\n", port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  (*server)->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(100));
  return 0;
}

void AddGrpcBenchmarks(std::vector<Benchmark>* out) {
  out->push_back({{"grpc_unary_roundtrip_floor"}, RunUnaryFloor});
  out->push_back({{"grpc_pipelined_ceiling"}, RunPipelinedCeiling});
}

}  // namespace loom::bench

#include "tests/cluster/test_functions.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>

#include "loom/loom.h"

int Echo(int x) { return x; }
int Add(int a, int b) { return a + b; }

int Nest(int depth) {
  if (depth <= 0) return 0;
  return 1 + *loom::Get(loom::Task(Nest).Remote(depth - 1));
}

int SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

// The raylet that started this worker: the parent, or the grandparent
// when the parent is the raylet's fork server (loom-worker --zygote).
int ParentPid() {
  pid_t parent = getppid();
  std::ifstream cmdline("/proc/" + std::to_string(parent) + "/cmdline");
  std::string args((std::istreambuf_iterator<char>(cmdline)),
                   std::istreambuf_iterator<char>());
  if (args.find("--zygote") == std::string::npos) return parent;
  std::ifstream stat("/proc/" + std::to_string(parent) + "/stat");
  std::string line;
  std::getline(stat, line);
  // pid (comm) state ppid ...
  size_t paren = line.rfind(')');
  return std::atoi(line.c_str() + paren + 4);
}
int SelfPid() { return getpid(); }
std::string BindNow() {
  std::ifstream environ("/proc/" + std::to_string(getppid()) + "/environ");
  bool server = false;
  for (std::string entry; std::getline(environ, entry, '\0');) {
    server = server || entry == "LD_BIND_NOW=1";
  }
  const char* own = std::getenv("LD_BIND_NOW");
  return std::string("server ") + (server ? "1" : "-") + ", worker " +
         (own ? own : "-");
}

int RecordPidAndSleep(std::string path, int ms, int x) {
  {
    std::ofstream out(path, std::ios::app);
    out << getpid() << "\n";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return x;
}

int HoldWorkOnThePool(std::string path) {
  auto made =
      loom::Task(Pattern).SetResource("pool", 1).Remote(int64_t{4} << 20);
  loom::Wait(std::vector{made}, 1, 60000);
  auto sleeper = loom::Task(RecordPidAndSleep)
                     .SetResource("pool", 1)
                     .Remote(path, 600000, 1);
  // The sleeper's pid first: the test waits for two lines.
  for (int i = 0; i < 3000; ++i) {
    std::ifstream in(path);
    std::string line;
    if (std::getline(in, line)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return RecordPidAndSleep(path, 600000, 0);
}

int Throw(std::string message) { throw std::out_of_range(message); }

std::string Repeat(std::string s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::vector<int> Range(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}

std::string Pattern(int64_t n) {
  std::string s(n, '\0');
  for (int64_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + 7) % 251);
  return s;
}

std::string Layer(std::string path, std::string below, int n) {
  std::ofstream(path, std::ios::app) << n << "\n";
  return below + std::string(128 << 10, static_cast<char>('a' + n));
}

bool IsPattern(std::string s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != static_cast<char>((i * 31 + 7) % 251)) return false;
  }
  return true;
}

std::pair<int, PatternRefs> PutInside(int64_t n) {
  return {getpid(), {loom::Put(Pattern(n))}};
}

bool AllPatterns(PatternRefs refs) {
  for (const auto& r : refs) {
    if (!IsPattern(*loom::Get(r))) return false;
  }
  return true;
}

PatternRefs PassThrough(PatternRefs refs) { return refs; }

int64_t SizeOfRef(loom::ObjectRef<std::string> ref) {
  return static_cast<int64_t>(loom::Get(ref)->size());
}

int64_t HoldBuffer(std::string path, loom::ObjectRef<loom::Buffer> ref,
                   int ms) {
  std::shared_ptr<loom::Buffer> buffer = loom::Get(ref);
  {
    std::ofstream out(path);
    out << getpid() << "\n";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return static_cast<int64_t>(buffer->size());
}

int CudaDeviceCount() {
  // The driver API, loaded at run time like every CUDA use in Loom.
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return -1;
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(lib, "cuDeviceGetCount"));
  if (init == nullptr || count == nullptr) return -1;
  int rc = init(0);
  if (rc == 100) return 0;  // CUDA_ERROR_NO_DEVICE: none visible
  if (rc != 0) throw std::runtime_error("cuInit failed: " + std::to_string(rc));
  int n = 0;
  rc = count(&n);
  if (rc != 0)
    throw std::runtime_error("cuDeviceGetCount: " + std::to_string(rc));
  return n;
}

std::string HostIps() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char ip[INET_ADDRSTRLEN];
    auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)) == nullptr) continue;
    if (std::strncmp(ip, "127.", 4) == 0) continue;
    out += (out.empty() ? "" : ",") + std::string(ip);
  }
  freeifaddrs(list);
  return out;
}

std::string HostIpsAfter(int ms) {
  SleepMs(ms);
  return HostIps();
}

int Counter::Pid() const { return getpid(); }
int Counter::RayletPid() const { return ParentPid(); }
int Counter::AddTo(loom::ActorHandle<Counter> other, int x) {
  return *loom::Get(other.Task(&Counter::Add).Remote(x));
}
std::string Counter::Gpus() const {
  std::string ids;
  for (int g : loom::GetGpuIds()) {
    ids += (ids.empty() ? "" : ",") + std::to_string(g);
  }
  const char* env = std::getenv("CUDA_VISIBLE_DEVICES");
  return ids + "|" + (env ? env : "");
}
int Counter::Sleep(int ms) { return SleepMs(ms); }
int Counter::KeepPut(int64_t n) {
  kept_.push_back(loom::Put(Pattern(n)));
  return getpid();
}
Counter* MakeCounter(int start) { return new Counter(start); }
Counter* MakeCounterHolding(PatternRefs refs) {
  return new Counter(std::move(refs));
}
int AddThroughHandle(loom::ActorHandle<Counter> counter, int x) {
  return *loom::Get(counter.Task(&Counter::Add).Remote(x));
}
LOOM_REMOTE(MakeCounter, MakeCounterHolding, AddThroughHandle, &Counter::Add,
            &Counter::Get, &Counter::Pid, &Counter::Append, &Counter::InOrder,
            &Counter::Sleep, &Counter::RayletPid, &Counter::Gpus,
            &Counter::AddTo, &Counter::KeepPut, &Counter::HostIps);

loom::CudaBuffer GpuWorker::Share(int64_t n) {
  std::string bytes = Pattern(n);
  kept_ = loom::CudaBuffer::Allocate(n);
  kept_.CopyFromHost(bytes.data(), bytes.size());
  return kept_;
}

std::string GpuWorker::Read(loom::CudaBuffer buffer) {
  std::vector<uint8_t> bytes = buffer.ToHost();
  return std::string(bytes.begin(), bytes.end());
}

bool GpuWorker::Write(loom::CudaBuffer buffer, std::string s) {
  buffer.CopyFromHost(s.data(), s.size());
  return !buffer.is_owner();
}

std::string GpuWorker::ReadKept() { return Read(kept_); }
int GpuWorker::Pid() const { return getpid(); }

int GpuWorker::Join(int world, int rank, std::string group) {
  loom::collective::InitGroup(world, rank, "nccl", group);
  return loom::collective::GetRank(group);
}

bool GpuWorker::Leave(std::string group) {
  loom::collective::DestroyGroup(group);
  return !loom::collective::IsGroupInitialized(group);
}

namespace {

using loom::collective::DType;

// A device array of floats, and a host copy of it.
loom::CudaBuffer ToDevice(const std::vector<float>& v) {
  auto b = loom::CudaBuffer::Allocate(v.size() * sizeof(float));
  b.CopyFromHost(v.data(), v.size() * sizeof(float));
  return b;
}
std::vector<float> FromDevice(const loom::CudaBuffer& b) {
  std::vector<uint8_t> bytes = b.ToHost();
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}
// "" when got[i] == want(i) for every i, else the first difference.
std::string Compare(const std::string& what, const std::vector<float>& got,
                    const std::function<float(size_t)>& want) {
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want(i)) {
      return what + ": element " + std::to_string(i) + " is " +
             std::to_string(got[i]) + ", not " + std::to_string(want(i));
    }
  }
  return "";
}

}  // namespace

// Every output starts as NaN (a sentinel no collective writes), so a
// collective that does nothing fails the check; in-place collectives start
// from values that differ from the result whenever there are two ranks.
std::string GpuWorker::RunCollectives(std::string group) {
  namespace col = loom::collective;
  const int world = col::GetWorldSize(group);
  const int rank = col::GetRank(group);
  const size_t n = 4096;
  const float w = static_cast<float>(world), r = static_cast<float>(rank);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::string diff;
  auto fill = [n](const std::function<float(size_t)>& f, size_t count = 0) {
    std::vector<float> v(count ? count : n);
    for (size_t i = 0; i < v.size(); ++i) v[i] = f(i);
    return v;
  };
  auto nans = [&](size_t count) {
    return ToDevice(fill([&](size_t) { return nan; }, count));
  };

  // AllReduce (sum), in place: every rank adds rank + 1 + i.
  auto a = ToDevice(fill([&](size_t i) { return r + 1 + i % 100; }));
  col::AllReduce(a, DType::kFloat32, col::ReduceOp::kSum, group);
  diff += Compare("AllReduce", FromDevice(a),
                  [&](size_t i) { return w * (w + 1) / 2 + w * (i % 100); });
  // AllReduce (max), out of place, on raw pointers.
  auto m_send = ToDevice(fill([&](size_t i) { return r * 10 + i % 7; }));
  auto m_recv = nans(n);
  col::AllReduce(m_send.data(), m_recv.data(), n, DType::kFloat32,
                 col::ReduceOp::kMax, group);
  diff += Compare("AllReduce max (out of place)", FromDevice(m_recv),
                  [&](size_t i) { return (w - 1) * 10 + i % 7; });

  // Broadcast from the last rank; the others start from NaN.
  const int root = world - 1;
  auto b = rank == root
               ? ToDevice(fill([&](size_t i) { return r * 100 + i % 50; }))
               : nans(n);
  col::Broadcast(b, DType::kFloat32, root, group);
  diff += Compare("Broadcast", FromDevice(b),
                  [&](size_t i) { return root * 100.0f + i % 50; });

  // AllGather: block k is rank k's.
  auto g_send = ToDevice(fill([&](size_t i) { return r * 1000 + i % 10; }));
  auto g_recv = nans(n * world);
  col::AllGather(g_send, g_recv, DType::kFloat32, group);
  diff += Compare("AllGather", FromDevice(g_recv),
                  [&](size_t i) { return (i / n) * 1000.0f + (i % n) % 10; });

  // ReduceScatter: block k of every rank holds rank + k.
  auto s_send = ToDevice(fill([&](size_t i) { return r + i / n; }, n * world));
  auto s_recv = nans(n);
  col::ReduceScatter(s_send, s_recv, DType::kFloat32, col::ReduceOp::kSum,
                     group);
  diff += Compare("ReduceScatter", FromDevice(s_recv),
                  [&](size_t) { return w * (w - 1) / 2 + w * r; });

  // Reduce to rank 0, in place: the others keep their own.
  auto d = ToDevice(fill([&](size_t) { return r + 1; }));
  col::Reduce(d.data(), n, DType::kFloat32, 0, col::ReduceOp::kSum, group);
  diff += Compare("Reduce", FromDevice(d),
                  [&](size_t) { return rank == 0 ? w * (w + 1) / 2 : r + 1; });

  // Send/Recv between ranks 0 and 1, there and back, each received into
  // NaN: both end with rank 0's values.
  if (world >= 2 && rank <= 1) {
    auto mine = ToDevice(fill([&](size_t i) { return r * 7 + i % 3; }));
    auto got = nans(n);
    if (rank == 0) {
      col::Send(mine.data(), n, DType::kFloat32, 1, group);
      col::Recv(got.data(), n, DType::kFloat32, 1, group);
    } else {
      col::Recv(got.data(), n, DType::kFloat32, 0, group);
      col::Send(got.data(), n, DType::kFloat32, 0, group);
    }
    diff += Compare("Send/Recv", FromDevice(got),
                    [&](size_t i) { return 0.0f + i % 3; });
  }
  col::Barrier(group);
  return diff.empty() ? "ok" : diff;
}

GpuWorker* MakeGpuWorker() { return new GpuWorker(); }
LOOM_REMOTE(MakeGpuWorker, &GpuWorker::Share, &GpuWorker::Read,
            &GpuWorker::Write, &GpuWorker::ReadKept, &GpuWorker::Pid,
            &GpuWorker::Join, &GpuWorker::RunCollectives, &GpuWorker::Leave);

LOOM_REMOTE(Layer, &Counter::Bytes);
LOOM_REMOTE(Pattern, IsPattern, PutInside, AllPatterns, PassThrough, SizeOfRef,
            HoldBuffer);
int PrintLine(std::string text, bool to_stderr) {
  (to_stderr ? std::cerr : std::cout) << text << std::endl;
  return getpid();
}

LOOM_REMOTE(Echo, Add, Nest, SleepMs, ParentPid, SelfPid, BindNow,
            RecordPidAndSleep, HoldWorkOnThePool, Throw, Repeat, Range,
            CudaDeviceCount, PrintLine, HostIps, HostIpsAfter);

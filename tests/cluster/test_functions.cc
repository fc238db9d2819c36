#include "tests/cluster/test_functions.h"

#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
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

int RecordPidAndSleep(std::string path, int ms, int x) {
  {
    std::ofstream out(path, std::ios::app);
    out << getpid() << "\n";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return x;
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
Counter* MakeCounter(int start) { return new Counter(start); }
int AddThroughHandle(loom::ActorHandle<Counter> counter, int x) {
  return *loom::Get(counter.Task(&Counter::Add).Remote(x));
}
LOOM_REMOTE(MakeCounter, AddThroughHandle, &Counter::Add, &Counter::Get,
            &Counter::Pid, &Counter::Append, &Counter::InOrder, &Counter::Sleep,
            &Counter::RayletPid, &Counter::Gpus, &Counter::AddTo);

LOOM_REMOTE(Pattern, IsPattern, PutInside, AllPatterns, PassThrough, SizeOfRef,
            HoldBuffer);
LOOM_REMOTE(Echo, Add, Nest, SleepMs, ParentPid, SelfPid, RecordPidAndSleep,
            Throw, Repeat, Range, CudaDeviceCount);

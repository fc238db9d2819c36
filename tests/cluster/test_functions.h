// tests/cluster/test_functions.h: remote functions the cluster tests run.
#ifndef LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_
#define LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_

#include <string>
#include <utility>
#include <vector>

#include "loom/actor.h"
#include "loom/buffer.h"
#include "loom/gpu.h"
#include "loom/object_ref.h"

int Echo(int x);
int Add(int a, int b);
// Nested: each level submits the next and waits for it.
int Nest(int depth);
int SleepMs(int ms);
// The raylet that started this worker (through its fork server or not).
int ParentPid();
// GPUs the CUDA driver shows this task (CUDA_VISIBLE_DEVICES applies);
// -1 when there is no CUDA driver.
int CudaDeviceCount();
int SelfPid();
// "server 1, worker -": LD_BIND_NOW=1 in the fork server's environment (it
// binds every symbol as it starts), none in the worker's.
std::string BindNow();
// Prints `text` and a newline on stdout (or stderr); returns the pid.
int PrintLine(std::string text, bool to_stderr);
// This machine's IPv4 addresses other than loopback, comma-separated (a
// network-namespace host of tests/multihost has one).
std::string HostIps();
// Sleeps ms, then returns HostIps().
std::string HostIpsAfter(int ms);
// Writes this worker's pid to `path` (appending a line), sleeps, returns x.
int RecordPidAndSleep(std::string path, int ms, int x);
// Has a task on the node with resource "pool" make Pattern(4 MiB) (owned
// here), starts RecordPidAndSleep(path, 10 min) there too, then appends its
// own pid to `path` after the other's and sleeps 10 min.
int HoldWorkOnThePool(std::string path);
int Throw(std::string message);
std::string Repeat(std::string s, int n);
std::vector<int> Range(int n);
// n bytes of a fixed pattern: byte i is (i * 31 + 7) % 251.
std::string Pattern(int64_t n);
// Whether s is Pattern(s.size()).
bool IsPattern(std::string s);
// Lineage: `below` then 128 KiB of the letter 'a' + n (so in a store);
// appends "n\n" to `path` each time it runs.
std::string Layer(std::string path, std::string below, int n);

// Borrowing. Puts Pattern(n) in this worker (its owner) and returns a ref
// to it inside a vector, with the worker's pid.
using PatternRefs = std::vector<loom::ObjectRef<std::string>>;
std::pair<int, PatternRefs> PutInside(int64_t n);
// Reads every ref (borrowed) and returns whether each is a pattern.
bool AllPatterns(PatternRefs refs);
// Returns the refs it was given (borrowed) to its caller.
PatternRefs PassThrough(PatternRefs refs);
// The parameter is a ref itself: it arrives unresolved.
int64_t SizeOfRef(loom::ObjectRef<std::string> ref);
// Reads the buffer in place (pinning it), writes this worker's pid to
// `path`, sleeps, returns the buffer's size.
int64_t HoldBuffer(std::string path, loom::ObjectRef<loom::Buffer> ref, int ms);

// An actor: a counter that also checks the order calls arrive in.
class Counter {
 public:
  explicit Counter(int start) : value_(start) {}
  // Keeps `refs` (borrowed from its creator) for its life.
  explicit Counter(std::vector<loom::ObjectRef<std::string>> refs)
      : kept_(std::move(refs)), value_(0) {}
  int Add(int x) {
    value_ += x;
    return value_;
  }
  int Get() const { return value_; }
  // n bytes of 'z' (in a store when above the inline limit).
  std::string Bytes(int64_t n) const { return std::string(n, 'z'); }
  int Pid() const;
  int RayletPid() const;  // the raylet that started this worker
  std::string HostIps() const { return ::HostIps(); }
  // Calls another actor, whose handle it was passed.
  int AddTo(loom::ActorHandle<Counter> other, int x);
  // loom::GetGpuIds() and $CUDA_VISIBLE_DEVICES, as "ids|env".
  std::string Gpus() const;
  // Records x; calls made with 0, 1, 2, ... arrive in order when each x is
  // the count so far.
  int Append(int x) {
    in_order_ = in_order_ && x == appended_;
    return ++appended_;
  }
  bool InOrder() const { return in_order_; }
  int Sleep(int ms);
  // Puts Pattern(n) and keeps the ref (this actor owns the object); returns
  // the pid.
  int KeepPut(int64_t n);

 private:
  std::vector<loom::ObjectRef<std::string>> kept_;
  int value_;
  int appended_ = 0;
  bool in_order_ = true;
};
Counter* MakeCounter(int start);
// A counter at 0 that holds refs it was created with (refs inside its
// creation's arguments).
Counter* MakeCounterHolding(PatternRefs refs);
// Calls the actor from inside a task.
int AddThroughHandle(loom::ActorHandle<Counter> counter, int x);

// An actor on a GPU: shares device memory through CUDA IPC and joins NCCL
// groups. Its methods throw loom::Error (a TaskError to the caller) when
// CUDA or NCCL fails.
class GpuWorker {
 public:
  // Allocates n bytes holding Pattern(n), keeps them (this process owns the
  // memory) and returns them.
  loom::CudaBuffer Share(int64_t n);
  // The bytes of a buffer, read on this process's GPU.
  std::string Read(loom::CudaBuffer buffer);
  // Writes s at the start of the buffer; returns whether the buffer was
  // mapped from another process (not allocated here).
  bool Write(loom::CudaBuffer buffer, std::string s);
  // The bytes of the buffer Share kept.
  std::string ReadKept();
  int Pid() const;
  // loom::collective::InitGroup(world, rank, "nccl", group); returns rank.
  int Join(int world, int rank, std::string group);
  // Runs every collective on device memory with values made from the rank
  // and checks each result; "ok", or what differed. Outputs start as NaN,
  // so a collective that does nothing fails; with one rank, only the
  // out-of-place ones (AllReduce max, AllGather, ReduceScatter) can.
  std::string RunCollectives(std::string group);
  bool Leave(std::string group);

 private:
  loom::CudaBuffer kept_;
};
GpuWorker* MakeGpuWorker();

#endif  // LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_

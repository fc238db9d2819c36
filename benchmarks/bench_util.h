// benchmarks/bench_util.h
//
// The fixed method behind every loom-bench number: warm up, then kRuns runs
// of at least kRunSeconds each, and report the median run. Results print as
// one JSON line each: {"name": ..., "value": ..., "unit": ...}.
//
//   double rate = bench::MedianOfRuns([&](double min_seconds) {
//     return bench::RateFor(min_seconds, [&] { DoOneCall(); return 1; });
//   });
//   bench::PrintResult({"my_calls", rate, "calls/s"});
#ifndef LOOM_BENCHMARKS_BENCH_UTIL_H_
#define LOOM_BENCHMARKS_BENCH_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace loom::bench {

inline constexpr int kRuns = 5;
inline constexpr double kRunSeconds = 2.0;
inline constexpr double kWarmupSeconds = 1.0;

struct Result {
  std::string name;
  double value;
  std::string unit;
};

// A benchmark: the names of the results it prints (what --list shows and
// --filter matches), and the code that measures them. run() throws on
// failure.
struct Benchmark {
  std::vector<std::string> results;
  std::function<std::vector<Result>()> run;
};

// loom-bench --actors N,N,...: actor_creation_per_second measures each N
// on a fresh cluster (actor_creation_per_second_{N}_actors) instead of its
// default rounds of 20. Empty unless given.
std::vector<int>& CreationCounts();

// Each file adds its benchmarks, in the order they should run.
void AddGrpcBenchmarks(std::vector<Benchmark>* out);
void AddTaskBenchmarks(std::vector<Benchmark>* out);
void AddClusterBenchmarks(std::vector<Benchmark>* out);
void AddRecoveryBenchmarks(std::vector<Benchmark>* out);
void AddStoreBenchmarks(std::vector<Benchmark>* out);
void AddStoreFloorBenchmarks(std::vector<Benchmark>* out);
void AddActorBenchmarks(std::vector<Benchmark>* out);
void AddSchedulerBenchmarks(std::vector<Benchmark>* out);
void AddStateBenchmarks(std::vector<Benchmark>* out);
// loom-bench --store-writer SOCKET SIZE ID...: writes objects from another
// process (argv from SOCKET on).
int RunStoreWriter(int argc, char** argv);

// The gRPC echo server's entry point (loom-bench --echo-server): prints its
// port on stdout, serves until SIGTERM or SIGINT, returns the exit code.
int RunEchoServer();

// One run: does the work for at least min_seconds, returns that run's value.
using RunFn = std::function<double(double min_seconds)>;

// Warms up with run(kWarmupSeconds), then returns the median of kRuns
// values of run(kRunSeconds).
double MedianOfRuns(const RunFn& run);
double Median(std::vector<double> values);

// Calls batch() until min_seconds have passed; batch returns how many
// operations it did. Returns operations per second.
double RateFor(double min_seconds, const std::function<int64_t()>& batch);
// `clients` threads each call batch(client) until min_seconds have passed;
// the aggregate operations per second. A batch that throws fails the run.
double ParallelRate(int clients, double min_seconds,
                    const std::function<int64_t(int client)>& batch);

double SecondsSince(int64_t start_ns);
int64_t NowNs();

void PrintResult(const Result& result);

// A fresh directory under /tmp (short, so unix socket paths under it fit),
// removed with everything in it when this goes away.
class TempDir {
 public:
  TempDir();  // throws std::runtime_error when it cannot be made
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// This executable (/proc/self/exe), and the directory it lies in.
std::string SelfExe();
std::string SelfDir();

// Runs argv to completion with stdout and stderr appended to log_path;
// returns its exit status (-1 when it could not run or was killed).
int RunCommand(const std::vector<std::string>& argv,
               const std::string& log_path);

// Reads a whole file; empty when it cannot.
std::string ReadFile(const std::string& path);

}  // namespace loom::bench

#endif  // LOOM_BENCHMARKS_BENCH_UTIL_H_

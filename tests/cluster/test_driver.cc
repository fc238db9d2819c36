// loom-test-driver: a driver the cluster tests start and kill -9.
//   loom-test-driver private ROOT     private cluster under ROOT, then a
//                                     long task; prints "ready" and waits
//   loom-test-driver join ADDRESS ROOT  joins, runs a long task, waits
//   loom-test-driver actors ADDRESS ROOT  joins, makes an actor and a
//                                     detached one, prints "ready PID PID"
//                                     (theirs) and waits
//   loom-test-driver pool ADDRESS ROOT PATH  joins, runs a long task that
//                                     needs resource "pool" (another node's),
//                                     which writes its pid to PATH; prints
//                                     "ready" and waits
//   loom-test-driver objects ADDRESS ROOT  joins, puts 4 MB and has tasks
//                                     on the node with resource "pool" make
//                                     4 MB there (owned here), and an actor
//                                     there put 4 MB (owned by the actor);
//                                     prints "ready" and waits
//   loom-test-driver multihost ADDRESS ROOT  joins a cluster whose nodes
//                                     offer resources "host1".."host3"
//                                     (tests/multihost) and prints, then
//                                     exits 0:
//       spread IP N       for each host the 1,000 no-op SPREAD tasks ran on
//       spread50 IP N     for each host 60 SPREAD tasks of 50 ms ran on
//       transfer BOOL     100 MB made on host2, checked on host3
//       actor IP VALUE    an actor on host2: where it runs, a call's result
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "loom/loom.h"
#include "tests/cluster/test_functions.h"

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  loom::InitOptions options;
  options.code_search_path = {LOOM_TEST_LIB};
  if (std::strcmp(argv[1], "private") == 0) {
    options.session_root = argv[2];
    options.num_cpus = 2;
  } else {
    if (argc < 4) return 2;
    options.address = argv[2];
    options.session_root = argv[3];
  }
  loom::Init(options);
  if (std::strcmp(argv[1], "actors") == 0) {
    auto owned = loom::Actor(MakeCounter).Remote(1);
    auto detached =
        loom::Actor(MakeCounter).SetName("keeper").SetDetached().Remote(2);
    int a = *loom::Get(owned.Task(&Counter::Pid).Remote());
    int d = *loom::Get(detached.Task(&Counter::Pid).Remote());
    std::printf("ready %d %d\n", a, d);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::hours(1));
    return 0;
  }
  if (std::strcmp(argv[1], "pool") == 0 && argc >= 5) {
    auto ref = loom::Task(RecordPidAndSleep)
                   .SetResource("pool", 1)
                   .Remote(std::string(argv[4]), 600000, 1);
    std::printf("ready\n");
    std::fflush(stdout);
    loom::Get(ref);
    return 0;
  }
  if (std::strcmp(argv[1], "objects") == 0) {
    auto put = loom::Put(Pattern(int64_t{4} << 20));
    auto made =
        loom::Task(Pattern).SetResource("pool", 1).Remote(int64_t{4} << 20);
    if (loom::Wait(std::vector{made}, 1, 60000).ready.size() != 1) return 1;
    // And an actor there that puts 4 MB and keeps it (the actor owns it).
    auto keeper = loom::Actor(MakeCounter).SetResource("pool", 1).Remote(0);
    loom::Get(keeper.Task(&Counter::KeepPut).Remote(int64_t{4} << 20));
    std::printf("ready\n");
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::minutes(10));
    return 0;
  }
  if (std::strcmp(argv[1], "multihost") == 0) {
    auto spread = [](const char* label, int n, int ms) {
      std::vector<loom::ObjectRef<std::string>> refs;
      for (int i = 0; i < n; ++i) {
        refs.push_back(loom::Task(HostIpsAfter).SetSpread().Remote(ms));
      }
      std::map<std::string, int> hosts;
      for (const auto& ip : loom::Get(refs, 120000)) hosts[*ip]++;
      for (const auto& [ip, count] : hosts) {
        std::printf("%s %s %d\n", label, ip.c_str(), count);
      }
    };
    spread("spread50", 60, 50);
    spread("spread", 1000, 0);
    auto made =
        loom::Task(Pattern).SetResource("host2", 1).Remote(int64_t{100} << 20);
    bool ok = *loom::Get(
        loom::Task(IsPattern).SetResource("host3", 1).Remote(made), 120000);
    std::printf("transfer %s\n", ok ? "true" : "false");
    auto counter = loom::Actor(MakeCounter).SetResource("host2", 1).Remote(40);
    std::string where = *loom::Get(counter.Task(&Counter::HostIps).Remote());
    int value = *loom::Get(counter.Task(&Counter::Add).Remote(2), 60000);
    std::printf("actor %s %d\n", where.c_str(), value);
    std::fflush(stdout);
    return 0;
  }
  // Hold a lease: a task that runs for a long time.
  auto ref = loom::Task(SleepMs).Remote(600000);
  auto quick = loom::Task(Echo).Remote(1);
  loom::Get(quick);
  std::printf("ready\n");
  std::fflush(stdout);
  loom::Get(ref);
  return 0;
}

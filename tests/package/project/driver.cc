// A driver built against an installed Loom. `user_driver ADDRESS ROOT`
// joins a running cluster ("auto": the one last started under ROOT);
// `user_driver private ROOT` starts its own, from the daemons beside the
// installed libloom.so, and prints where they run from.
#include <loom/loom.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "tasks.h"

namespace {

// The executables of this process's children (the daemons of a private
// cluster).
void PrintChildren() {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(e.path() / "stat");
    std::string pid, comm, state;
    long ppid = 0;
    if (!(stat >> pid >> comm >> state >> ppid) || ppid != getpid()) continue;
    std::error_code ec;
    auto exe = std::filesystem::read_symlink(e.path() / "exe", ec);
    if (!ec) std::printf("child %s\n", exe.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  loom::InitOptions options;
  bool own = std::strcmp(argv[1], "private") == 0;
  if (!own) options.address = argv[1];
  options.session_root = argv[2];
  options.num_cpus = 2;
  options.code_search_path = {USER_TASKS_LIB};
  loom::Init(options);
  int product = *loom::Get(loom::Task(Multiply).Remote(6, 7));
  std::string greeting = *loom::Get(loom::Task(Greet).Remote("loom"));
  auto tally = loom::Actor(MakeTally).Remote();
  tally.Task(&Tally::Add).Remote(5);
  int total = *loom::Get(tally.Task(&Tally::Add).Remote(7));
  std::printf("product %d\ngreeting %s\ntally %d\n", product, greeting.c_str(),
              total);
  if (own) PrintChildren();
  loom::Shutdown();
  return 0;
}

// loom serve ...: loom.serve's commands live in Python (loom/serve/
// __main__.py); this hands the arguments to the interpreter whose loom
// package carries this binary ($LOOM_PYTHON, which the `loom` console
// script sets), else python3 on the PATH.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "src/cli/commands.h"

namespace loom::cli {

int Serve(const std::vector<std::string>& args) {
  const char* env = std::getenv("LOOM_PYTHON");
  std::string python = env && *env ? env : "python3";
  std::vector<std::string> argv = {python, "-m", "loom.serve"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (std::string& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  std::fflush(stdout);
  execvp(python.c_str(), c_argv.data());
  std::fprintf(stderr,
               "loom serve: cannot run %s (%s): loom serve needs the Python "
               "interpreter that has the loom package (set $LOOM_PYTHON)\n",
               python.c_str(), std::strerror(errno));
  return 127;
}

}  // namespace loom::cli

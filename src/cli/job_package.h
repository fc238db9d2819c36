// src/cli/job_package.h
//
// A working directory as the package `loom job submit --working-dir`
// uploads: a zip of its files (paths relative to it; .git, __pycache__ and
// .venv left out) named by a hash of their paths and contents, so that the
// same directory is uploaded once.
//
//   auto package = PackageDirectory("./project");  // {name, zip bytes}
#ifndef LOOM_CLI_JOB_PACKAGE_H_
#define LOOM_CLI_JOB_PACKAGE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace loom::cli {

struct Package {
  std::string name;  // _loom_pkg_<16 hex>.zip
  std::string zip;
};

// InvalidArgument: not a directory, or a zip over max_bytes.
absl::StatusOr<Package> PackageDirectory(const std::string& dir,
                                         int64_t max_bytes);

}  // namespace loom::cli

#endif  // LOOM_CLI_JOB_PACKAGE_H_

// src/common/logging.h
//
// Sets up spdlog for a process: one file per process in the session's logs
// directory, or stderr when there is none.
//
//   InitLogging("raylet", session_dir + "/logs");
//   spdlog::info("registered with {}", gcs_address);
#ifndef LOOM_COMMON_LOGGING_H_
#define LOOM_COMMON_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string>

namespace loom {

void InitLogging(const std::string& name, const std::string& log_dir);

}  // namespace loom

#endif  // LOOM_COMMON_LOGGING_H_

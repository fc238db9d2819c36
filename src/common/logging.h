// src/common/logging.h
//
// Sets up spdlog for a process: one file per process in the session's logs
// directory, or stderr when there is none. Workers ask for their file to be
// created with their first message (most never log: no empty file each).
//
//   InitLogging("raylet", session_dir + "/logs");
//   spdlog::info("registered with {}", gcs_address);
#ifndef LOOM_COMMON_LOGGING_H_
#define LOOM_COMMON_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string>

namespace loom {

void InitLogging(const std::string& name, const std::string& log_dir,
                 bool create_on_first_message = false);

}  // namespace loom

#endif  // LOOM_COMMON_LOGGING_H_

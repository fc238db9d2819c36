#include "src/common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>

namespace loom {

void InitLogging(const std::string& name, const std::string& log_dir) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (!log_dir.empty()) {
      logger = spdlog::basic_logger_mt(name, log_dir + "/" + name + ".log");
    }
  } catch (const spdlog::spdlog_ex&) {
    logger = nullptr;  // fall back to stderr
  }
  if (logger == nullptr) logger = spdlog::stderr_color_mt(name);
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n %P] [%l] %v");
  logger->flush_on(spdlog::level::info);
  const char* level = std::getenv("LOOM_LOG_LEVEL");
  logger->set_level(level ? spdlog::level::from_str(level)
                          : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace loom

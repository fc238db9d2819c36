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
  const char* env = std::getenv("LOOM_LOG_LEVEL");
  spdlog::level::level_enum level = spdlog::level::info;
  if (env != nullptr) {
    level = spdlog::level::from_str(env);
    // from_str maps unknown names to "off": keep logging on instead.
    if (level == spdlog::level::off && std::string(env) != "off") {
      level = spdlog::level::info;
    }
  }
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace loom

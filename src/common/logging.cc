#include "src/common/logging.h"

#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <utility>

namespace loom {
namespace {

// Appends to its file, which it creates with the first message: most
// workers log nothing, and each empty file cost a create as the worker
// started (on some filesystems, with many files deleted lately, ~0.7 ms).
class FirstMessageFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit FirstMessageFileSink(std::string path) : path_(std::move(path)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!open_) {
      file_.open(path_, /*truncate=*/false);  // throws: spdlog reports it
      open_ = true;
    }
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    file_.write(formatted);
  }
  void flush_() override {
    if (open_) file_.flush();
  }

 private:
  const std::string path_;
  spdlog::details::file_helper file_;
  bool open_ = false;
};

}  // namespace

void InitLogging(const std::string& name, const std::string& log_dir,
                 bool create_on_first_message) {
  std::shared_ptr<spdlog::logger> logger;
  std::string path = log_dir + "/" + name + ".log";
  try {
    if (log_dir.empty()) {
      // stderr, below
    } else if (!create_on_first_message) {
      logger = spdlog::basic_logger_mt(name, path);
    } else if (access(log_dir.c_str(), W_OK) == 0) {
      logger = std::make_shared<spdlog::logger>(
          name, std::make_shared<FirstMessageFileSink>(path));
      spdlog::register_logger(logger);
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

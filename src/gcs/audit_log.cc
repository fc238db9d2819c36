#include "src/gcs/audit_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "src/common/json.h"

namespace loom::gcs {
namespace {

// The number after `"field": ` in an entry's line; -1 when absent.
int64_t Field(const std::string& line, const char* field) {
  std::string key = absl::StrCat("\"", field, "\": ");
  size_t at = line.find(key);
  if (at == std::string::npos) return -1;
  size_t start = at + key.size();
  size_t end = line.find_first_not_of("0123456789", start);
  int64_t n = -1;
  if (!absl::SimpleAtoi(line.substr(start, end - start), &n)) return -1;
  return n;
}

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

std::string Rotated(const std::string& path, int n) {
  return absl::StrCat(path, ".", n);
}

}  // namespace

AuditLog::AuditLog(Options options) : options_(std::move(options)) {
  if (options_.path.empty()) return;
  absl::MutexLock lock(&mu_);
  std::vector<std::string> lines = Lines(options_.path);
  if (lines.empty()) lines = Lines(Rotated(options_.path, 1));
  if (!lines.empty()) seq_ = std::max<int64_t>(0, Field(lines.back(), "seq"));
  fd_ = open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
             0600);
  if (fd_ < 0) {
    spdlog::error("cannot open the audit log {}: {}", options_.path,
                  std::strerror(errno));
    return;
  }
  struct stat st {};
  if (fstat(fd_, &st) == 0) size_ = st.st_size;
}

AuditLog::~AuditLog() {
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) close(fd_);
}

void AuditLog::Append(const Identity& who, const std::string& peer,
                      const std::string& action, const std::string& target,
                      const absl::Status& result) {
  absl::Time now = options_.clock->Now();
  const char* outcome = result.ok()                        ? "ok"
                        : absl::IsPermissionDenied(result) ? "denied"
                                                           : "failed";
  absl::MutexLock lock(&mu_);
  std::string line = absl::StrCat(
      "{\"seq\": ", ++seq_, ", \"time_ms\": ", absl::ToUnixMillis(now),
      ", \"time\": ",
      JsonString(
          absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone())),
      ", \"name\": ", JsonString(who.name),
      ", \"role\": ", JsonString(RoleName(who.role)),
      ", \"peer\": ", JsonString(peer), ", \"action\": ", JsonString(action),
      ", \"target\": ", JsonString(target), ", \"result\": \"", outcome, "\"");
  if (!result.ok()) {
    absl::StrAppend(
        &line, ", \"reason\": ", JsonString(std::string(result.message())));
  }
  line += "}\n";
  Write(line);
}

void AuditLog::Denied(const Identity& who, const std::string& peer,
                      const std::string& action, const std::string& reason) {
  Append(who, peer, action, "", absl::PermissionDeniedError(reason));
}

void AuditLog::Write(const std::string& line) {
  if (fd_ < 0) {
    spdlog::info("audit: {}", line.substr(0, line.size() - 1));
    return;
  }
  if (size_ + static_cast<int64_t>(line.size()) > options_.max_bytes) Rotate();
  ssize_t n = write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    spdlog::error("cannot write the audit log {}: {}; the entry was: {}",
                  options_.path, std::strerror(errno), line);
    return;
  }
  size_ += n;
}

void AuditLog::Rotate() {
  for (int i = options_.keep - 1; i >= 1; --i) {
    std::rename(Rotated(options_.path, i).c_str(),
                Rotated(options_.path, i + 1).c_str());
  }
  std::rename(options_.path.c_str(), Rotated(options_.path, 1).c_str());
  close(fd_);
  fd_ = open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
             0600);
  size_ = 0;
  if (fd_ < 0) {
    spdlog::error("cannot open the audit log {}: {}", options_.path,
                  std::strerror(errno));
  }
}

AuditLog::Page AuditLog::Read(int64_t after_seq, int64_t since_ms,
                              int max) const {
  Page page;
  page.last_seq = after_seq;
  if (options_.path.empty()) return page;
  absl::MutexLock lock(&mu_);  // not mid-rotation
  for (int i = options_.keep; i >= 0; --i) {
    std::string path = i == 0 ? options_.path : Rotated(options_.path, i);
    for (std::string& line : Lines(path)) {
      if (static_cast<int>(page.lines.size()) >= max) return page;
      int64_t seq = Field(line, "seq");
      if (seq <= after_seq || Field(line, "time_ms") < since_ms) continue;
      page.last_seq = seq;
      page.lines.push_back(std::move(line));
    }
  }
  return page;
}

}  // namespace loom::gcs

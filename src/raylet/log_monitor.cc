#include "src/raylet/log_monitor.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/rpc.h"

namespace loom::raylet {
namespace {

// Without inotify, files are read this often.
constexpr int kScanWithoutInotifyMs = 100;
// What one read of a file takes at most (the rest on the next turn).
constexpr size_t kMaxReadBytes = 1 << 20;

}  // namespace

std::optional<OutputFile> ParseOutputFileName(absl::string_view name) {
  OutputFile f;
  if (absl::ConsumeSuffix(&name, ".out")) {
    f.is_err = false;
  } else if (absl::ConsumeSuffix(&name, ".err")) {
    f.is_err = true;
  } else {
    return std::nullopt;
  }
  if (absl::ConsumePrefix(&name, "cpp-")) {
    size_t dash = name.find('-');
    if (dash == absl::string_view::npos ||
        !absl::SimpleAtoi(name.substr(dash + 1), &f.pid) || f.pid <= 0) {
      return std::nullopt;
    }
    name = name.substr(0, dash);
  } else if (!absl::ConsumePrefix(&name, "python-")) {
    return std::nullopt;
  }
  if (name.empty() || name.size() % 2 != 0 ||
      !std::all_of(name.begin(), name.end(), absl::ascii_isxdigit)) {
    return std::nullopt;
  }
  auto job = JobId::FromBinary(absl::HexStringToBytes(name));
  if (!job.ok()) return std::nullopt;
  f.job = *job;
  return f;
}

std::pair<int64_t, absl::string_view> ParseOutputLine(absl::string_view line) {
  absl::string_view rest = line;
  if (!absl::ConsumePrefix(&rest, "(pid=")) return {0, line};
  size_t end = rest.find(") ");
  int64_t pid;
  if (end == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, end), &pid) || pid < 0) {
    return {0, line};
  }
  return {pid, rest.substr(end + 2)};
}

LogMonitor::LogMonitor(Options options) : options_(std::move(options)) {
  if (Metrics* m = options_.metrics) {
    dropped_ = &m->Counter("loom_raylet_log_lines_dropped_total",
                           "Worker output lines dropped because the head "
                           "could not take them");
    sent_ = &m->Counter("loom_raylet_log_lines_sent_total",
                        "Worker output lines published to the head");
  }
}

LogMonitor::~LogMonitor() { Stop(); }

void LogMonitor::Start() {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd_ >= 0 &&
      inotify_add_watch(inotify_fd_, options_.logs_dir.c_str(),
                        IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
    spdlog::warn("log monitor: cannot watch {} ({}); reading every {} ms",
                 options_.logs_dir, strerror(errno), kScanWithoutInotifyMs);
    close(inotify_fd_);
    inotify_fd_ = -1;
  }
  thread_ = std::thread([this] { Run(); });
}

void LogMonitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  std::vector<std::pair<JobId, std::function<void(absl::Status)>>> flushes;
  {
    absl::MutexLock lock(&mu_);
    flushes.swap(flushes_);
  }
  for (auto& [job, done] : flushes) {
    done(absl::CancelledError("the raylet is stopping"));
  }
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
}

void LogMonitor::Flush(const JobId& job,
                       std::function<void(absl::Status)> done) {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) {
      done(absl::CancelledError("the raylet is stopping"));
      return;
    }
    flushes_.emplace_back(job, std::move(done));
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

size_t LogMonitor::pending_lines() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

size_t LogMonitor::pending_bytes() const {
  absl::MutexLock lock(&mu_);
  return pending_bytes_;
}

std::vector<std::string> LogMonitor::ListFiles() const {
  std::vector<std::string> names;
  DIR* dir = opendir(options_.logs_dir.c_str());
  if (dir == nullptr) return names;
  while (dirent* e = readdir(dir)) {
    if (ParseOutputFileName(e->d_name)) names.emplace_back(e->d_name);
  }
  closedir(dir);
  return names;
}

void LogMonitor::Run() {
  // Whatever is there already (files of workers started before us).
  std::vector<std::string> dirty = ListFiles();
  bool retry = false;  // the head did not take the last request
  while (true) {
    for (const auto& name : dirty) Read(name);
    dirty.clear();
    std::vector<std::pair<JobId, std::function<void(absl::Status)>>> flushes;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      flushes.swap(flushes_);
    }
    if (!flushes.empty()) {
      // Events may lag the writes they report: read the files outright.
      for (const auto& name : ListFiles()) Read(name);
    }
    bool sent = Send();
    retry = !sent;
    for (auto& [job, done] : flushes) {
      done(sent ? absl::OkStatus()
                : absl::UnavailableError("the head did not take the lines"));
    }

    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    int timeout = -1;  // idle: sleep until a file grows
    if (inotify_fd_ < 0) timeout = kScanWithoutInotifyMs;
    if (retry) timeout = absl::ToInt64Milliseconds(kRetryWait);
    int n = poll(fds, inotify_fd_ >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno != EINTR) {
      spdlog::error("log monitor: poll: {}", strerror(errno));
      return;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t count;
      (void)!read(wake_fd_, &count, sizeof(count));
    }
    if (inotify_fd_ < 0) {
      dirty = ListFiles();
    } else if (fds[1].revents & POLLIN) {
      alignas(inotify_event) char buf[16384];
      ssize_t len;
      while ((len = read(inotify_fd_, buf, sizeof(buf))) > 0) {
        for (char* p = buf; p < buf + len;) {
          auto* e = reinterpret_cast<inotify_event*>(p);
          if (e->len > 0 && ParseOutputFileName(e->name)) {
            std::string name(e->name);
            if (std::find(dirty.begin(), dirty.end(), name) == dirty.end()) {
              dirty.push_back(std::move(name));
            }
          }
          if (e->mask & IN_Q_OVERFLOW) dirty = ListFiles();
          p += sizeof(inotify_event) + e->len;
        }
      }
    }
  }
}

void LogMonitor::Read(const std::string& name) {
  auto parsed = ParseOutputFileName(name);
  if (!parsed) return;
  File& f = files_[name];
  f.what = *parsed;
  std::string path = options_.logs_dir + "/" + name;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size < f.offset) {
    f.offset = 0;  // truncated: from the start
    f.partial.clear();
  }
  std::string buf(kMaxReadBytes, '\0');
  while (true) {
    ssize_t n = pread(fd, buf.data(), buf.size(), f.offset);
    if (n <= 0) break;
    f.offset += n;
    absl::string_view data(buf.data(), n);
    while (!data.empty()) {
      size_t nl = data.find('\n');
      if (nl == absl::string_view::npos) {
        f.partial.append(data.data(), data.size());
        // A line without end, too long to keep: sent in pieces.
        while (f.partial.size() >= kMaxLineBytes) {
          Add(f.what, absl::string_view(f.partial).substr(0, kMaxLineBytes));
          f.partial.erase(0, kMaxLineBytes);
        }
        break;
      }
      if (f.partial.empty()) {
        Add(f.what, data.substr(0, nl));
      } else {
        f.partial.append(data.data(), nl);
        Add(f.what, f.partial);
        f.partial.clear();
      }
      data.remove_prefix(nl + 1);
    }
    if (static_cast<size_t>(n) < buf.size()) break;
  }
  close(fd);
}

void LogMonitor::Add(const OutputFile& from, absl::string_view line) {
  auto [pid, text] =
      from.pid > 0 ? std::make_pair(from.pid, line) : ParseOutputLine(line);
  int64_t dropped = 0;
  {
    absl::MutexLock lock(&mu_);
    do {  // a line longer than the head takes goes in pieces
      absl::string_view piece = text.substr(0, kMaxLineBytes);
      text.remove_prefix(piece.size());
      Pending p{from.job, {}, piece.size() + 32};
      p.line.set_pid(pid);
      p.line.set_is_err(from.is_err);
      p.line.set_text(std::string(piece));
      pending_bytes_ += p.bytes;
      pending_.push_back(std::move(p));
    } while (!text.empty());
    while (pending_bytes_ > options_.max_pending_bytes && !pending_.empty()) {
      pending_bytes_ -= pending_.front().bytes;
      pending_.pop_front();
      ++dropped;
    }
  }
  if (dropped > 0) {
    dropped_total_ += dropped;
    if (dropped_) dropped_->Increment(dropped);
    if (dropped_in_outage_ == 0) {
      spdlog::warn(
          "the head is not taking worker output: dropping the oldest lines "
          "(more than {} bytes wait)",
          options_.max_pending_bytes);
    }
    dropped_in_outage_ += dropped;
  }
}

bool LogMonitor::Send() {
  auto stub = options_.clients->Stub<rpc::Gcs>(options_.gcs_address);
  while (true) {
    rpc::PublishLogsRequest req;
    size_t taken = 0;
    {
      absl::MutexLock lock(&mu_);
      if (pending_.empty()) break;
      size_t bytes = 0;
      rpc::LogBatch* batch = nullptr;
      for (const Pending& p : pending_) {
        if (taken > 0 && bytes + p.bytes > kMaxRequestBytes) break;
        if (batch == nullptr || batch->job_id() != p.job.Binary() ||
            batch->lines_size() >= kMaxLinesPerBatch) {
          batch = req.add_batches();
          batch->set_job_id(p.job.Binary());
          batch->set_node_ip(options_.node_ip);
        }
        *batch->add_lines() = p.line;
        bytes += p.bytes;
        ++taken;
      }
    }
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, absl::ToInt64Milliseconds(kSendTimeout));
    rpc::PublishLogsReply reply;
    grpc::Status s = stub->PublishLogs(&ctx, req, &reply);
    if (!s.ok()) {
      if (!outage_) {
        spdlog::warn("cannot publish worker output to the head: {}",
                     s.error_message());
      }
      outage_ = true;
      return false;
    }
    if (outage_) {
      spdlog::info(
          "publishing worker output to the head again ({} lines dropped "
          "meanwhile)",
          dropped_in_outage_);
      outage_ = false;
      dropped_in_outage_ = 0;
    }
    if (sent_) sent_->Increment(taken);
    absl::MutexLock lock(&mu_);
    // Only this thread removes lines, oldest first: the front `taken`
    // (minus any dropped since, which Add did on this thread too) were sent.
    for (size_t i = 0; i < taken && !pending_.empty(); ++i) {
      pending_bytes_ -= pending_.front().bytes;
      pending_.pop_front();
    }
  }
  return true;
}

}  // namespace loom::raylet

#include "src/common/process_watch.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace loom {
namespace {

int OpenPidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

}  // namespace

ProcessWatch::ProcessWatch(std::function<void(pid_t)> on_exit)
    : on_exit_(std::move(on_exit)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || stop_fd_ < 0) return;  // Watch says false
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;  // the stop event, not a pid
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "loom-procwatch");
    Run();
  });
}

ProcessWatch::~ProcessWatch() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
    thread_.join();
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [pid, fd] : fds_) close(fd);
  fds_.clear();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

bool ProcessWatch::Watch(pid_t pid) {
  if (!thread_.joinable() || pid <= 0) return false;
  absl::MutexLock lock(&mu_);
  if (fds_.contains(pid)) return true;
  int fd = OpenPidFd(pid);
  if (fd < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(pid);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    close(fd);
    return false;
  }
  fds_[pid] = fd;
  return true;
}

void ProcessWatch::Forget(pid_t pid) {
  absl::MutexLock lock(&mu_);
  auto it = fds_.find(pid);
  if (it == fds_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second, nullptr);
  close(it->second);
  fds_.erase(it);
}

void ProcessWatch::Run() {
  epoll_event events[64];
  while (true) {
    int n = epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == UINT64_MAX) return;
      auto pid = static_cast<pid_t>(events[i].data.u64);
      {
        absl::MutexLock lock(&mu_);
        auto it = fds_.find(pid);
        if (it == fds_.end()) continue;  // forgotten meanwhile
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second, nullptr);
        close(it->second);
        fds_.erase(it);
      }
      on_exit_(pid);
    }
  }
}

}  // namespace loom

#include "src/common/async_server.h"

#include <algorithm>
#include <chrono>

namespace loom::rpc {

absl::Status AsyncServer::Start(const std::string& host, int port,
                                grpc::Service* service, int* bound_port,
                                bool also_loopback, int threads) {
  auto server =
      StartServer(host, port, {service}, bound_port, also_loopback, &cq_);
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  {
    absl::MutexLock lock(&queue_->mu);
    queue_->cq = cq_.get();
  }
  for (auto& method : methods_) {
    for (int i = 0; i < method->Waiting(); ++i) method->Listen();
  }
  for (int i = 0; i < std::max(threads, 1); ++i) {
    threads_.emplace_back(
        [cq = cq_.get()] { DrainQueue(cq, "loom-rpc-serve"); });
  }
  return absl::OkStatus();
}

void AsyncServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(grace));
  {
    // From now on neither a new call nor a reply is queued: the calls
    // still being handled were cancelled, and their done does nothing.
    absl::MutexLock lock(&queue_->mu);
    queue_->cq = nullptr;
  }
  cq_->Shutdown();
  for (auto& t : threads_) t.join();  // every queued tag completed and freed
  threads_.clear();
  server_.reset();
}

}  // namespace loom::rpc

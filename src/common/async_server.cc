#include "src/common/async_server.h"

#include <chrono>

namespace loom::rpc {

absl::Status AsyncServer::Start(const std::string& host, int port,
                                grpc::Service* service, int* bound_port) {
  auto server = StartServer(host, port, {service}, bound_port,
                            /*also_loopback=*/false, &cq_);
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  {
    absl::MutexLock lock(&queue_->mu);
    queue_->cq = cq_.get();
  }
  for (auto& method : methods_) {
    for (int i = 0; i < method->Waiting(); ++i) method->Listen();
  }
  thread_ = std::thread([cq = cq_.get()] { DrainQueue(cq, "loom-rpc-serve"); });
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
  thread_.join();  // every queued tag completed (not ok) and freed
  server_.reset();
}

}  // namespace loom::rpc

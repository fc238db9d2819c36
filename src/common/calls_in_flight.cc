#include "src/common/calls_in_flight.h"

#include <grpcpp/client_context.h>

namespace loom {

bool CallsInFlight::Start(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  calls_.insert(ctx);
  return true;
}

void CallsInFlight::Finish(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  calls_.erase(ctx);
}

void CallsInFlight::Shutdown(absl::Duration grace) {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  auto none = [this]()
                  ABSL_SHARED_LOCKS_REQUIRED(mu_) { return calls_.empty(); };
  if (grace > absl::ZeroDuration() &&
      mu_.AwaitWithTimeout(absl::Condition(&none), grace)) {
    return;
  }
  for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
  mu_.AwaitWithTimeout(absl::Condition(&none), kCancelWait);
}

int CallsInFlight::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(calls_.size());
}

}  // namespace loom

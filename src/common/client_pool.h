// src/common/client_pool.h
//
// ClientPool: a process's outgoing gRPC channels, one per peer address, made
// by rpc::MakeChannel (so every channel has the same limits, and will carry
// the same credentials) and shared by every caller of that peer. Stubs are
// made once per service and address. A peer declared dead is dropped, so the
// next caller of that address gets a fresh channel; channels nobody asked
// for in a while are dropped by DropIdle. Dropping only forgets: a caller
// that still holds a stub (a call in flight, a lease) keeps its channel
// until it lets go.
//
//   ClientPool pool;
//   auto raylet = pool.Stub<rpc::Raylet>("10.0.0.2:7001");
//   rpc::AsyncCall(*raylet, &rpc::Raylet::Stub::PrepareAsyncPullObject,
//                  &call->ctx, call->req, &call->reply, cb);
//   pool.Drop("10.0.0.2:7001");  // the head declared that node dead
//
// Tests serve fake peers in-process: a subclass overrides NewChannel (see
// tests/unit/fake_client_pool.h).
//
// Thread-safe.
#ifndef LOOM_COMMON_CLIENT_POOL_H_
#define LOOM_COMMON_CLIENT_POOL_H_

#include <functional>
#include <memory>
#include <string>
#include <typeindex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/clock.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace loom {

class ClientPool {
 public:
  struct Options {
    // A channel not asked for during this long is dropped by DropIdle.
    absl::Duration idle_timeout = absl::Minutes(5);
    // The head's and the raylet's: they hold a channel to every worker
    // they started or placed an actor on, for short control calls. Each
    // open connection costs memory and wakes both ends for its keepalive
    // timer every 10 s; reconnecting costs a connect.
    static Options ForDaemon() { return {.idle_timeout = absl::Seconds(30)}; }
    Clock* clock = Clock::Real();
  };
  ClientPool();
  explicit ClientPool(Options options);
  virtual ~ClientPool();
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  // The channel to `address` ("host:port" or "unix:path"), made on first
  // use.
  std::shared_ptr<grpc::Channel> Channel(const std::string& address);
  // `n` channels to `address` for bulk transfers, each its own connection
  // (rpc::MakeBulkChannel), made on first use and then the same ones.
  std::vector<std::shared_ptr<grpc::Channel>> BulkChannels(
      const std::string& address, int n);

  // A stub of `Service` (a generated service class, such as rpc::Raylet)
  // for the peer at `address`, made once and shared.
  template <typename Service>
  std::shared_ptr<typename Service::Stub> Stub(const std::string& address) {
    return std::static_pointer_cast<typename Service::Stub>(
        StubOf(typeid(Service), address,
               [](const std::shared_ptr<grpc::Channel>& channel) {
                 return std::shared_ptr<void>(Service::NewStub(channel));
               }));
  }

  // The peer at `address` is gone: forget its channel and stubs.
  void Drop(const std::string& address);
  // Forgets channels not asked for within the idle timeout; returns how
  // many.
  int DropIdle();
  // How many peers have a channel.
  int size() const;

 protected:
  // Makes the channel to `address`; rpc::MakeChannel unless overridden.
  virtual std::shared_ptr<grpc::Channel> NewChannel(const std::string& address);
  // Makes a bulk channel to `address`; rpc::MakeBulkChannel unless
  // overridden.
  virtual std::shared_ptr<grpc::Channel> NewBulkChannel(
      const std::string& address);

 private:
  using MakeStub = std::function<std::shared_ptr<void>(
      const std::shared_ptr<grpc::Channel>&)>;
  struct Peer {
    std::shared_ptr<grpc::Channel> channel;
    std::vector<std::shared_ptr<grpc::Channel>> bulk;
    absl::flat_hash_map<std::type_index, std::shared_ptr<void>> stubs;
    absl::Time last_used;
  };
  std::shared_ptr<void> StubOf(std::type_index service,
                               const std::string& address,
                               const MakeStub& make);
  Peer& PeerOf(const std::string& address) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Peer> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loom

#endif  // LOOM_COMMON_CLIENT_POOL_H_

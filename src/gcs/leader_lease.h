// src/gcs/leader_lease.h
//
// LeaderLease: which of the heads sharing one Redis serves. The lease is the
// key `loom:leader`, holding its holder's id ("HOST:PORT pid N #RANDOM")
// with an expiry. The holder renews it every ttl/4; a standby head polls
// (every ttl/4, at most 250 ms) and takes it once it expired or was let go; a
// head that finds it held by another (it was frozen past the expiry, or an
// operator started a head by hand) is told so and stops.
//
//   auto lease = LeaderLease::Connect({.storage = url, .holder = "h:6380"});
//   if (!lease.ok()) return lease.status();
//   (*lease)->Take(/*wait=*/true, [](const std::string& holder) {...});
//   (*lease)->KeepRenewing([](const std::string& holder) { _exit(71); });
//   ...
//   (*lease)->Release();  // a clean stop: the standby need not wait
#ifndef LOOM_GCS_LEADER_LEASE_H_
#define LOOM_GCS_LEADER_LEASE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/event_loop.h"
#include "src/gcs/redis_store.h"

namespace loom::gcs {

class LeaderLease {
 public:
  struct Options {
    std::string storage;  // redis://...
    // Who this head is, for the others' logs: its HOST:PORT (a pid and a
    // random suffix are added, so that a head restarted on its port is
    // another holder).
    std::string holder;
    absl::Duration ttl = absl::Seconds(2);
  };
  using HolderCallback = std::function<void(const std::string& holder)>;

  static absl::StatusOr<std::unique_ptr<LeaderLease>> Connect(Options options);
  ~LeaderLease();

  // Takes the lease; blocks. wait=false (a head started by hand): at once,
  // from whoever holds it (that head then stops). wait=true (a standby):
  // once nobody holds it; `waiting` runs with the holder's id whenever it
  // changes. Redis unreachable: keeps trying (a standby) or fails
  // UNAVAILABLE (a head started by hand; the store would fail too).
  absl::Status Take(bool wait, const HolderCallback& waiting);
  // Renews the lease every ttl/4 until another holds it: then `lost` runs
  // once, on the lease's own thread, with that holder's id. A renewal that
  // cannot reach Redis is retried; the store's writes decide the head's fate.
  void KeepRenewing(HolderCallback lost);
  // Gives the lease up if it is still ours; waits at most `timeout`.
  void Release(absl::Duration timeout = absl::Milliseconds(500));

  const std::string& id() const { return id_; }

 private:
  LeaderLease(Options options, std::string id);
  // One command, waited for (never on loop_'s thread).
  absl::StatusOr<RedisStoreClient::Reply> Run(std::vector<std::string> argv);
  void Renew();

  Options options_;
  std::string id_;
  EventLoop loop_{"lease"};
  std::unique_ptr<RedisStoreClient> redis_;
  HolderCallback lost_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_LEADER_LEASE_H_

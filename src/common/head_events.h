// src/common/head_events.h
//
// HeadEvents: a subscription to the head's published changes (PollEvents,
// a long poll answered at once when there is news). It hands each event to
// `on_event` on the owner's loop, in order, and follows a restarted head
// (whose sequence numbers start again). Core workers act on NODE_DEAD
// through it (what they had in flight there fails over at once, instead of
// waiting on a socket that may never break); raylets on JOB_FINISHED (the
// job's leases and workers here are freed, wherever its driver ran).
//
//   HeadEvents events({&loop, &clients, gcs_address,
//                      [&](const rpc::Event& e) { ... }});
//   events.Start();
//   ...
//   events.Shutdown();  // cancels the poll; no callback after it returns
//
// Thread-safe.
#ifndef LOOM_COMMON_HEAD_EVENTS_H_
#define LOOM_COMMON_HEAD_EVENTS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/gcs.pb.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"

namespace loom {

class HeadEvents {
 public:
  // How long one poll waits at the head for news.
  static constexpr absl::Duration kPollWait = absl::Seconds(30);
  // The wait after a failed poll (the head is down or restarting).
  static constexpr absl::Duration kRetryWait = absl::Milliseconds(500);

  struct Options {
    EventLoop* loop = nullptr;
    ClientPool* clients = nullptr;
    std::string gcs_address;
    std::function<void(const rpc::Event&)> on_event;  // on `loop`
    // Only these kinds are asked for (none: every kind): the head wakes
    // this poll only for them.
    std::vector<rpc::Event::Kind> kinds;
  };
  explicit HeadEvents(Options options) : options_(std::move(options)) {}
  ~HeadEvents() { Shutdown(); }

  // Starts polling from the head's current position: only events from now
  // on are handed over.
  void Start();
  void Shutdown() { calls_.Shutdown(); }

 private:
  void Poll(int64_t after_seq, bool from_now);

  Options options_;
  CallsInFlight calls_;
};

}  // namespace loom

#endif  // LOOM_COMMON_HEAD_EVENTS_H_

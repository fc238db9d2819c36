// runtime/spread_dealer.h
//
// SpreadDealer: deals the tasks of one SPREAD scheduling key to nodes in
// turn. The submitter holds leases on several nodes (each raylet places a
// SPREAD lease request on the next node that fits); without a dealer the
// lease granted first, usually the local node's, would run a backlog of
// short tasks alone before the others' workers have even started. A lease
// may take a task only while its node has been dealt fewer than `slack`
// tasks more than the node dealt the fewest, among the nodes that hold a
// lease for the key and those a request was spilled to in the last `hold`
// (their workers may be starting), and, for `placing_hold`, a request the
// local raylet has not placed yet. A node that joins starts level with the
// fewest, so it does not take a long run of tasks to catch up. Pure logic:
// time comes in as an argument.
//
//   SpreadDealer dealer({.slack = 8, .hold = absl::Seconds(3)});
//   dealer.Asked("10.0.0.2:7001", now);   // a request spilled there
//   dealer.Leased("10.0.0.3:7001", now);  // a lease granted there
//   if (dealer.MayTake("10.0.0.3:7001", now)) {
//     dealer.Took("10.0.0.3:7001");        // and push the task there
//   }
#ifndef LOOM_RUNTIME_SPREAD_DEALER_H_
#define LOOM_RUNTIME_SPREAD_DEALER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace loom {

// Not thread-safe: the submitter's loop owns it.
class SpreadDealer {
 public:
  struct Options {
    int64_t slack = 8;  // how far a node may run ahead of the last one
    absl::Duration hold = absl::Seconds(3);  // how long an asked node counts
    // How long a request the local raylet has not placed yet counts, as a
    // node of its own: it is placed within a round trip unless no node
    // fits, when it waits there.
    absl::Duration placing_hold = absl::Milliseconds(100);
  };
  explicit SpreadDealer(Options options) : options_(options) {}

  // A lease request went to the local raylet, and was placed (granted
  // there, spilled, or failed): until then the nodes that have leases do
  // not run ahead of the node it may go to.
  void Placing(absl::Time now) { Asked(kPlacing, now); }
  void Placed() { Answered(kPlacing); }
  // A lease request was spilled to `node`, which grants or queues it.
  void Asked(const std::string& node, absl::Time now);
  // That request was answered (granted or not).
  void Answered(const std::string& node);
  // A lease on `node` was granted, or given back.
  void Leased(const std::string& node, absl::Time now);
  void Dropped(const std::string& node);

  // Whether a lease on `node` may take the next task now.
  bool MayTake(const std::string& node, absl::Time now) const;
  void Took(const std::string& node) { ++nodes_[node].dealt; }
  // The first time after `now` when a node asked for a lease, that has
  // none yet, stops counting (nullopt: no such node); the nodes it held
  // back may take tasks from then on.
  std::optional<absl::Time> HoldEnds(absl::Time now) const;

 private:
  struct Node {
    int64_t dealt = 0;
    int leases = 0;
    int asked = 0;  // requests spilled there, unanswered
    absl::Time asked_at = absl::InfinitePast();
  };
  static constexpr char kPlacing[] = "";  // the node a request may go to
  absl::Duration Hold(const std::string& node) const {
    return node == kPlacing ? options_.placing_hold : options_.hold;
  }
  bool Counts(const std::string& node, const Node& n, absl::Time now) const {
    return n.leases > 0 || (n.asked > 0 && now - n.asked_at < Hold(node));
  }
  // The fewest tasks dealt to a node that counts (nullopt: none counts).
  std::optional<int64_t> Floor(absl::Time now) const;
  // The entry for `node`, made level with the fewest when it is new.
  Node& Join(const std::string& node, absl::Time now);
  void ForgetIfGone(const std::string& node);

  Options options_;
  absl::flat_hash_map<std::string, Node> nodes_;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_SPREAD_DEALER_H_

// src/gcs/placement_groups.h
//
// PlacementGroupManager: the head's placement groups. A group's bundles are
// assigned to nodes by its strategy (PACK, SPREAD, STRICT_PACK,
// STRICT_SPREAD) from the nodes' last reported free resources, then
// reserved in two phases: every raylet prepares its bundles (reserving the
// resources, or refusing), and only when all have does each commit them
// (offering them as the bundle's resources). A refusal releases what was
// prepared and the group tries again shortly: all bundles or none. A group
// that no set of nodes could ever hold is reported INFEASIBLE (and tried
// again as nodes join). Removing a group releases its bundles, which stops
// the tasks and actors running in them.
//
//   PlacementGroupManager groups(&loop, &nodes, &actors);
//   groups.HandleCreate(req, &reply, done);   // on the loop
#ifndef LOOM_GCS_PLACEMENT_GROUPS_H_
#define LOOM_GCS_PLACEMENT_GROUPS_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "proto/gcs.pb.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"
#include "src/gcs/actor_manager.h"
#include "src/gcs/node_table.h"
#include "src/gcs/storage.h"

namespace loom::gcs {

// Not thread-safe: runs on the GCS loop.
class PlacementGroupManager {
 public:
  // Calls raylets through `clients`; saves each group to `store` at each
  // change of state.
  PlacementGroupManager(EventLoop* loop, NodeTable* nodes, ActorManager* actors,
                        ClientPool* clients, StoreClient* store);
  ~PlacementGroupManager();

  // The load phase of a restarted head (rows of PlacementGroupInfo, after
  // the nodes were loaded): CREATED groups keep their bundles where they
  // are, PENDING and INFEASIBLE ones are placed again.
  absl::Status Load(const StoreClient::Table& rows);
  void HandleCreate(const rpc::CreatePlacementGroupRequest& req,
                    rpc::CreatePlacementGroupReply* reply, Done done);
  void HandleGet(const rpc::GetPlacementGroupRequest& req,
                 rpc::GetPlacementGroupReply* reply, Done done);
  void HandleRemove(const rpc::RemovePlacementGroupRequest& req,
                    rpc::RemovePlacementGroupReply* reply, Done done);
  void HandleList(const rpc::ListPlacementGroupsRequest& req,
                  rpc::ListPlacementGroupsReply* reply, Done done);
  // The binary id of the group's job; "" for a group it does not know.
  std::string JobOf(const PlacementGroupId& id) const;
  // A node died: groups with a bundle there release the rest and are
  // placed again (PENDING until they are).
  void OnNodeDead(const std::string& node_id);
  // The job's driver is gone: its groups are removed.
  void OnJobFinished(const std::string& job_id);
  // Sends nothing more and cancels the calls in flight (see ActorManager).
  void Shutdown() { calls_.Shutdown(); }
  // This head's incarnation, sent with its prepares (see
  // RegisterNodeRequest.held).
  void set_head_epoch(std::string epoch) { head_epoch_ = std::move(epoch); }
  // How many groups are in each state, for loom_placement_groups.
  std::map<std::string, int64_t> CountByState() const;
  // The group whose bundle a lease's demand names: kNone when it names no
  // group this head knows; kGone (with `why`) when the group was removed or
  // cannot be placed; else kLive.
  enum class DemandGroup { kNone, kLive, kGone };
  DemandGroup GroupOf(const rpc::Resources& demand, std::string* why) const;
  // Whether a group placed bundle `index` on that node.
  bool HoldsBundle(const std::string& pg_id, int index,
                   const std::string& node_id);

 private:
  struct Group;
  // The group with that (wire) id; InvalidArgument or NotFound.
  absl::StatusOr<Group*> Find(const std::string& pg_id);
  void Schedule(const PlacementGroupId& id);
  // A node (its NodeInfo) per bundle, or nullopt when none fits now;
  // `infeasible` is set when no nodes ever could.
  std::optional<std::vector<rpc::NodeInfo>> Assign(const Group& g,
                                                   std::string* infeasible);
  // Sends one phase's call for every bundle of the attempt; `next` runs
  // once all have answered (g.failed says whether any refused).
  using Next = void (PlacementGroupManager::*)(const PlacementGroupId&,
                                               int64_t);
  void Phase(Group& g, int64_t attempt, const std::string& method, Next next);
  // After a phase: true (and the bundles released, a retry planned) when
  // the group was removed meanwhile or a node refused.
  bool Abandon(Group& g, int64_t attempt);
  void Prepared(const PlacementGroupId& id, int64_t attempt);
  void Committed(const PlacementGroupId& id, int64_t attempt);
  // Releases the bundles of the attempt in `g.nodes`; `done` (if any) runs
  // once every raylet answered.
  void ReleaseAll(Group& g, std::function<void()> done = nullptr);
  void RetryLater(const PlacementGroupId& id, int64_t attempt);
  void Answer(Group& g);  // saves; wakes GetPlacementGroup(wait_ready) callers
  void Save(const Group& g, std::function<void()> then = nullptr);
  void SendBundle(const std::string& raylet, const std::string& method,
                  const PlacementGroupId& id, int index,
                  const rpc::Resources& resources,
                  std::function<void(bool)> done);

  EventLoop* loop_;
  NodeTable* nodes_;
  ActorManager* actors_;
  ClientPool* clients_;
  std::string head_epoch_;
  CallsInFlight calls_;
  StoreClient* store_;
  absl::flat_hash_map<PlacementGroupId, std::unique_ptr<Group>> groups_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_PLACEMENT_GROUPS_H_

#include "src/gcs/placement_groups.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "proto/raylet.grpc.pb.h"
#include "scheduler/resource_set.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"

namespace loom::gcs {
namespace {

constexpr absl::Duration kRetry = absl::Milliseconds(100);
constexpr absl::Duration kRetryInfeasible = absl::Seconds(1);

}  // namespace

struct PlacementGroupManager::Group {
  PlacementGroupId id;
  rpc::PlacementGroupInfo info;
  std::vector<ResourceSet> bundles;
  int64_t attempt = 0;  // each placement; stale replies check it
  // The attempt in flight: each bundle's node, and the replies awaited.
  std::vector<rpc::NodeInfo> nodes;
  int outstanding = 0;
  bool failed = false;
  std::vector<std::pair<rpc::GetPlacementGroupReply*, Done>> waiters;
};

PlacementGroupManager::PlacementGroupManager(EventLoop* loop, NodeTable* nodes,
                                             ActorManager* actors,
                                             ClientPool* clients,
                                             StoreClient* store)
    : loop_(loop),
      nodes_(nodes),
      actors_(actors),
      clients_(clients),
      store_(store) {}

std::map<std::string, int64_t> PlacementGroupManager::CountByState() const {
  std::map<std::string, int64_t> out;
  for (const auto& [id, g] : groups_) {
    out[rpc::PlacementGroupInfo::State_Name(g->info.state())]++;
  }
  return out;
}

PlacementGroupManager::DemandGroup PlacementGroupManager::GroupOf(
    const rpc::Resources& demand, std::string* why) const {
  for (const auto& [name, quantity] : demand.quantities()) {
    std::string hex = BundleGroupHex(name);
    auto id = PlacementGroupId::FromBinary(absl::HexStringToBytes(hex));
    if (!id.ok() || id->Hex() != hex) continue;  // no group's id
    auto it = groups_.find(*id);
    if (it == groups_.end()) continue;
    const rpc::PlacementGroupInfo& info = it->second->info;
    if (info.state() == rpc::PlacementGroupInfo::REMOVED) {
      *why = absl::StrCat("its placement group ", hex, " was removed");
    } else if (info.state() == rpc::PlacementGroupInfo::INFEASIBLE) {
      *why = absl::StrCat("its placement group ", hex,
                          " cannot be placed: ", info.message());
    } else {
      return DemandGroup::kLive;
    }
    return DemandGroup::kGone;
  }
  return DemandGroup::kNone;
}

bool PlacementGroupManager::HoldsBundle(const std::string& pg_id, int index,
                                        const std::string& node_id) {
  auto g = Find(pg_id);
  if (!g.ok() || (*g)->info.state() == rpc::PlacementGroupInfo::REMOVED) {
    return false;
  }
  const auto& nodes = (*g)->nodes;
  return index >= 0 && index < static_cast<int>(nodes.size()) &&
         nodes[index].node_id() == node_id;
}

void PlacementGroupManager::Save(const Group& g, std::function<void()> then) {
  store_->Put("placement_groups", g.info.pg_id(), g.info.SerializeAsString(),
              true, MustSave("a placement group", std::move(then)));
}

absl::Status PlacementGroupManager::Load(const StoreClient::Table& rows) {
  std::vector<PlacementGroupId> place;
  for (const auto& [key, value] : rows) {
    auto g = std::make_unique<Group>();
    auto id = PlacementGroupId::FromBinary(key);
    if (!id.ok() || !g->info.ParseFromString(value)) {
      return absl::DataLossError(
          "a row of the placement_groups table does not parse");
    }
    g->id = *id;
    for (const auto& b : g->info.bundles()) {
      auto r = ResourcesFromProto(b);
      if (!r.ok()) return r.status();
      g->bundles.push_back(*r);
    }
    using S = rpc::PlacementGroupInfo;
    if (g->info.state() == S::CREATED) {
      for (const auto& n : g->info.bundle_nodes()) {
        const rpc::NodeInfo* node = nodes_->Find(n);
        if (!node) break;  // a dead node past the history: placed again
        g->nodes.push_back(*node);
      }
      if (g->nodes.size() != g->bundles.size()) {
        spdlog::warn(
            "placement group {} held a bundle on a node erased "
            "from the head's history; placing it again",
            id->Hex());
        g->nodes.clear();
        g->info.set_state(S::PENDING);
        g->info.clear_bundle_nodes();
        place.push_back(*id);
      }
    } else if (g->info.state() != S::REMOVED) {
      place.push_back(*id);
    }
    groups_[*id] = std::move(g);
  }
  for (const auto& id : place) Schedule(id);
  return absl::OkStatus();
}

PlacementGroupManager::~PlacementGroupManager() = default;

void PlacementGroupManager::HandleCreate(
    const rpc::CreatePlacementGroupRequest& req,
    rpc::CreatePlacementGroupReply* reply, Done done) {
  const rpc::PlacementGroupInfo& in = req.group();
  if (in.bundles_size() == 0 || in.bundles_size() > 1000) {
    return done(absl::InvalidArgumentError(
        "a placement group needs 1 to 1000 bundles"));
  }
  if (!rpc::PlacementGroupInfo::Strategy_IsValid(in.strategy())) {
    return done(absl::InvalidArgumentError("unknown placement strategy"));
  }
  auto g = std::make_unique<Group>();
  for (const auto& b : in.bundles()) {
    auto r = ResourcesFromProto(b);
    if (!r.ok()) return done(r.status());
    if (r->IsEmpty()) {
      return done(absl::InvalidArgumentError("a bundle names no resources"));
    }
    g->bundles.push_back(*r);
  }
  PlacementGroupId id = PlacementGroupId::FromRandom();
  g->id = id;
  g->info = in;
  g->info.set_pg_id(id.Binary());
  g->info.set_state(rpc::PlacementGroupInfo::PENDING);
  g->info.clear_bundle_nodes();
  spdlog::info("placement group {} ({} bundles, {}) registered", id.Hex(),
               in.bundles_size(),
               rpc::PlacementGroupInfo::Strategy_Name(in.strategy()));
  Group& saved = *g;
  groups_[id] = std::move(g);
  // Answered once saved: a head that restarts still knows it.
  Save(saved, [reply, done, id] {
    reply->set_pg_id(id.Binary());
    done(absl::OkStatus());
  });
  Schedule(id);
}

std::optional<std::vector<rpc::NodeInfo>> PlacementGroupManager::Assign(
    const Group& g, std::string* infeasible) {
  using S = rpc::PlacementGroupInfo;
  std::vector<const NodeState*> alive;
  for (const NodeState& n : nodes_->alive()) alive.push_back(&n);
  std::sort(alive.begin(), alive.end(), [](const auto* a, const auto* b) {
    return a->node_id < b->node_id;
  });
  std::vector<rpc::NodeInfo> nodes;
  std::vector<ResourceSet> total, free;
  for (const NodeState* n : alive) {
    nodes.push_back(*nodes_->Find(n->node_id));
    total.push_back(n->total);
    free.push_back(n->available);
  }
  // Could any nodes ever hold it?
  ResourceSet sum;
  for (const auto& b : g.bundles) sum.Add(b);
  auto fits_some = [&](const ResourceSet& r) {
    return std::any_of(total.begin(), total.end(),
                       [&](const ResourceSet& t) { return t.Contains(r); });
  };
  S::Strategy strategy = g.info.strategy();
  for (const auto& b : g.bundles) {
    if (!fits_some(b)) {
      *infeasible = absl::StrCat("no node can hold the bundle ", b.ToString());
      return std::nullopt;
    }
  }
  if (strategy == S::STRICT_PACK && !fits_some(sum)) {
    *infeasible =
        absl::StrCat("STRICT_PACK: no node can hold all of ", sum.ToString());
    return std::nullopt;
  }
  if (strategy == S::STRICT_SPREAD && nodes.size() < g.bundles.size()) {
    *infeasible = absl::StrCat("STRICT_SPREAD needs ", g.bundles.size(),
                               " nodes and the cluster has ", nodes.size());
    return std::nullopt;
  }
  // Which node each bundle takes, from the free resources now.
  std::vector<int> pick(g.bundles.size(), -1);
  std::vector<int> used(nodes.size(), 0);
  auto most_free = [&](const ResourceSet& b, bool unused_only) {
    int best = -1;
    for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
      if (!free[i].Contains(b) || (unused_only && used[i] > 0)) continue;
      if (best < 0 || free[i].Get(kCpu) > free[best].Get(kCpu)) best = i;
    }
    return best;
  };
  if (strategy == S::STRICT_PACK || strategy == S::PACK) {
    for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
      if (free[i].Contains(sum)) {  // all on one node, if one can
        return std::vector<rpc::NodeInfo>(g.bundles.size(), nodes[i]);
      }
    }
    if (strategy == S::STRICT_PACK) return std::nullopt;
  }
  for (size_t b = 0; b < g.bundles.size(); ++b) {
    int n = -1;
    if (strategy == S::PACK) {
      // The node already holding the most of this group's bundles.
      for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
        if (used[i] > 0 && free[i].Contains(g.bundles[b]) &&
            (n < 0 || used[i] > used[n])) {
          n = i;
        }
      }
      if (n < 0) n = most_free(g.bundles[b], false);
    } else {
      n = most_free(g.bundles[b], true);
      if (n < 0 && strategy == S::SPREAD) n = most_free(g.bundles[b], false);
    }
    if (n < 0) return std::nullopt;
    pick[b] = n;
    used[n]++;
    free[n].Subtract(g.bundles[b]);
  }
  std::vector<rpc::NodeInfo> out;
  for (int n : pick) out.push_back(nodes[n]);
  return out;
}

void PlacementGroupManager::Schedule(const PlacementGroupId& id) {
  auto it = groups_.find(id);
  if (it == groups_.end()) return;
  Group& g = *it->second;
  if (g.info.state() != rpc::PlacementGroupInfo::PENDING &&
      g.info.state() != rpc::PlacementGroupInfo::INFEASIBLE) {
    return;
  }
  int64_t attempt = ++g.attempt;
  std::string infeasible;
  auto nodes = Assign(g, &infeasible);
  if (!nodes) {
    if (!infeasible.empty() &&
        g.info.state() != rpc::PlacementGroupInfo::INFEASIBLE) {
      spdlog::warn("placement group {} is infeasible: {}", id.Hex(),
                   infeasible);
      g.info.set_state(rpc::PlacementGroupInfo::INFEASIBLE);
      g.info.set_message(infeasible);
      Answer(g);
    }
    loop_->PostAfter(infeasible.empty() ? kRetry : kRetryInfeasible,
                     [this, id, attempt] { RetryLater(id, attempt); });
    return;
  }
  // Phase one: every node reserves its bundles.
  g.nodes = std::move(*nodes);
  g.failed = false;
  Phase(g, attempt, "prepare", &PlacementGroupManager::Prepared);
}

void PlacementGroupManager::Phase(Group& g, int64_t attempt,
                                  const std::string& method, Next next) {
  PlacementGroupId id = *PlacementGroupId::FromBinary(g.info.pg_id());
  g.outstanding = static_cast<int>(g.nodes.size());
  for (size_t b = 0; b < g.nodes.size(); ++b) {
    SendBundle(RayletAddress(g.nodes[b]), method, id, static_cast<int>(b),
               method == "prepare" ? g.info.bundles(b) : rpc::Resources(),
               [this, id, attempt, next](bool ok) {
                 auto it = groups_.find(id);
                 if (it == groups_.end()) return;
                 Group& g = *it->second;
                 if (g.attempt != attempt) return;
                 g.failed |= !ok;
                 if (--g.outstanding == 0) (this->*next)(id, attempt);
               });
  }
}

void PlacementGroupManager::Prepared(const PlacementGroupId& id,
                                     int64_t attempt) {
  Group& g = *groups_[id];
  if (Abandon(g, attempt)) return;
  // Phase two: all reserved; each node offers its bundles.
  Phase(g, attempt, "commit", &PlacementGroupManager::Committed);
}

void PlacementGroupManager::Committed(const PlacementGroupId& id,
                                      int64_t attempt) {
  Group& g = *groups_[id];
  if (Abandon(g, attempt)) return;
  g.info.set_state(rpc::PlacementGroupInfo::CREATED);
  g.info.clear_message();
  g.info.clear_bundle_nodes();
  for (const auto& n : g.nodes) g.info.add_bundle_nodes(n.node_id());
  spdlog::info("placement group {} created", id.Hex());
  Answer(g);
}

bool PlacementGroupManager::Abandon(Group& g, int64_t attempt) {
  if (g.info.state() == rpc::PlacementGroupInfo::REMOVED) {
    ReleaseAll(g);
    return true;
  }
  if (!g.failed) return false;
  // A node refused (or went away between the phases): none keeps its
  // bundles, and the group tries again.
  ReleaseAll(g);
  PlacementGroupId id = *PlacementGroupId::FromBinary(g.info.pg_id());
  loop_->PostAfter(kRetry, [this, id, attempt] { RetryLater(id, attempt); });
  return true;
}

void PlacementGroupManager::ReleaseAll(Group& g, std::function<void()> done) {
  PlacementGroupId id = *PlacementGroupId::FromBinary(g.info.pg_id());
  auto left = std::make_shared<size_t>(g.nodes.size());
  auto shared = std::make_shared<std::function<void()>>(std::move(done));
  if (g.nodes.empty() && *shared) (*shared)();
  for (size_t b = 0; b < g.nodes.size(); ++b) {
    SendBundle(RayletAddress(g.nodes[b]), "release", id, static_cast<int>(b),
               {}, [left, shared](bool) {
                 if (--*left == 0 && *shared) (*shared)();
               });
  }
  g.nodes.clear();
}

void PlacementGroupManager::RetryLater(const PlacementGroupId& id,
                                       int64_t attempt) {
  auto it = groups_.find(id);
  if (it == groups_.end() || it->second->attempt != attempt) return;
  Schedule(id);
}

void PlacementGroupManager::SendBundle(const std::string& raylet,
                                       const std::string& method,
                                       const PlacementGroupId& id, int index,
                                       const rpc::Resources& resources,
                                       std::function<void(bool)> done) {
  struct Call {
    rpc::Context ctx;
    rpc::BundleRequest req;
    rpc::BundleReply reply;
  };
  auto* call = new Call;
  call->req.set_pg_id(id.Binary());
  call->req.set_index(index);
  *call->req.mutable_resources() = resources;
  call->req.set_head_epoch(head_epoch_);
  rpc::SetTimeout(&call->ctx, 5000);
  if (!calls_.Start(&call->ctx)) return delete call;  // shutting down
  auto cb = [this, loop = loop_, call, done = std::move(done)](grpc::Status s) {
    calls_.Finish(&call->ctx);
    loop->Post([call, done, s] {
      done(s.ok());
      delete call;
    });
  };
  using Stub = rpc::Raylet::Stub;
  auto prepare = method == "prepare"  ? &Stub::PrepareAsyncPrepareBundle
                 : method == "commit" ? &Stub::PrepareAsyncCommitBundle
                                      : &Stub::PrepareAsyncReleaseBundle;
  rpc::AsyncCall(*clients_->Stub<rpc::Raylet>(raylet), prepare, &call->ctx,
                 call->req, &call->reply, std::move(cb));
}

void PlacementGroupManager::Answer(Group& g) {
  Save(g);
  for (auto& [reply, done] : g.waiters) {
    *reply->mutable_group() = g.info;
    done(absl::OkStatus());
  }
  g.waiters.clear();
}

absl::StatusOr<PlacementGroupManager::Group*> PlacementGroupManager::Find(
    const std::string& pg_id) {
  auto id = ParseId<PlacementGroupId>(pg_id, "pg_id");
  if (!id.ok()) return id.status();
  auto it = groups_.find(*id);
  if (it == groups_.end()) {
    return absl::NotFoundError("no such placement group");
  }
  return it->second.get();
}

void PlacementGroupManager::HandleGet(const rpc::GetPlacementGroupRequest& req,
                                      rpc::GetPlacementGroupReply* reply,
                                      Done done) {
  auto found = Find(req.pg_id());
  if (!found.ok()) return done(found.status());
  Group& g = **found;
  if (req.wait_ready() && g.info.state() == rpc::PlacementGroupInfo::PENDING) {
    g.waiters.emplace_back(reply, std::move(done));
    return;
  }
  *reply->mutable_group() = g.info;
  done(absl::OkStatus());
}

void PlacementGroupManager::HandleRemove(
    const rpc::RemovePlacementGroupRequest& req,
    rpc::RemovePlacementGroupReply* reply, Done done) {
  auto found = Find(req.pg_id());
  if (!found.ok()) return done(found.status());
  Group& g = **found;
  PlacementGroupId id = g.id;
  if (g.info.state() == rpc::PlacementGroupInfo::REMOVED) {
    return done(absl::OkStatus());
  }
  bool placed = g.info.state() == rpc::PlacementGroupInfo::CREATED;
  g.info.set_state(rpc::PlacementGroupInfo::REMOVED);
  spdlog::info("placement group {} removed", id.Hex());
  Answer(g);
  // Answered once what ran inside has stopped: its actors (for good), then
  // its bundles, whose release stops the tasks' workers and frees the
  // resources. An attempt in flight releases what it reserved when its
  // replies are in (Prepared and Committed see REMOVED).
  actors_->KillActorsInGroup(
      id.Hex(), [this, id, placed, done = std::move(done)]() mutable {
        auto it = groups_.find(id);
        if (!placed || it == groups_.end()) return done(absl::OkStatus());
        ReleaseAll(*it->second,
                   [done = std::move(done)] { done(absl::OkStatus()); });
      });
}

std::string PlacementGroupManager::JobOf(const PlacementGroupId& id) const {
  auto it = groups_.find(id);
  return it == groups_.end() ? "" : it->second->info.job_id();
}

void PlacementGroupManager::HandleList(
    const rpc::ListPlacementGroupsRequest& req,
    rpc::ListPlacementGroupsReply* reply, Done done) {
  for (const auto& [id, g] : groups_) *reply->add_groups() = g->info;
  done(absl::OkStatus());
}

void PlacementGroupManager::OnNodeDead(const std::string& node_id) {
  for (auto& [id, g] : groups_) {
    if (g->info.state() != rpc::PlacementGroupInfo::CREATED) continue;
    bool hit = false;
    for (const auto& n : g->info.bundle_nodes()) hit |= n == node_id;
    if (!hit) continue;
    spdlog::warn(
        "placement group {} lost a bundle with its node; placing "
        "it again",
        id.Hex());
    // Release on the nodes still there, by index: the dead node's go with it.
    std::vector<rpc::NodeInfo> all = std::move(g->nodes);
    for (size_t b = 0; b < all.size(); ++b) {
      if (all[b].node_id() == node_id) continue;
      SendBundle(RayletAddress(all[b]), "release", id, static_cast<int>(b), {},
                 [](bool) {});
    }
    g->info.set_state(rpc::PlacementGroupInfo::PENDING);
    g->info.clear_bundle_nodes();
    Save(*g);
    PlacementGroupId pid = id;
    loop_->Post([this, pid] { Schedule(pid); });
  }
}

void PlacementGroupManager::OnJobFinished(const std::string& job_id) {
  std::vector<std::string> ids;
  for (const auto& [id, g] : groups_) {
    if (g->info.job_id() == job_id &&
        g->info.state() != rpc::PlacementGroupInfo::REMOVED) {
      ids.push_back(id.Binary());
    }
  }
  for (const auto& id : ids) {
    rpc::RemovePlacementGroupRequest req;
    req.set_pg_id(id);
    rpc::RemovePlacementGroupReply reply;
    HandleRemove(req, &reply, [](absl::Status) {});
  }
}

}  // namespace loom::gcs

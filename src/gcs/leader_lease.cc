#include "src/gcs/leader_lease.h"

#include <unistd.h>

#include <algorithm>
#include <future>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/common/logging.h"

namespace loom::gcs {
namespace {

constexpr char kLeaderKey[] = "loom:leader";
// A standby asks at least this often (a released lease is taken at once).
constexpr absl::Duration kMaxPoll = absl::Milliseconds(250);

// Renews the lease when it is ours (answers 1), takes it when it expired
// (1), else answers who holds it. One script: GET and PEXPIRE in one step.
constexpr char kRenewScript[] = R"(
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return v)";

constexpr char kReleaseScript[] = R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0)";

std::string Millis(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LeaderLease>> LeaderLease::Connect(
    Options options) {
  auto url = ParseRedisUrl(options.storage);
  if (!url.ok()) return url.status();
  absl::BitGen gen;
  std::string id = absl::StrFormat("%s pid %d #%08x", options.holder, getpid(),
                                   absl::Uniform<uint32_t>(gen));
  std::unique_ptr<LeaderLease> lease(new LeaderLease(std::move(options), id));
  lease->loop_.Start();
  auto redis = RedisStoreClient::Connect({*std::move(url), &lease->loop_});
  if (!redis.ok()) return redis.status();
  lease->redis_ = *std::move(redis);
  return lease;
}

LeaderLease::LeaderLease(Options options, std::string id)
    : options_(std::move(options)), id_(std::move(id)) {}

LeaderLease::~LeaderLease() {
  loop_.Stop();
  redis_.reset();
}

absl::StatusOr<RedisStoreClient::Reply> LeaderLease::Run(
    std::vector<std::string> argv) {
  std::promise<absl::StatusOr<RedisStoreClient::Reply>> done;
  auto reply = done.get_future();
  redis_->Command(std::move(argv),
                  [&done](absl::StatusOr<RedisStoreClient::Reply> r) {
                    done.set_value(std::move(r));
                  });
  return reply.get();
}

absl::Status LeaderLease::Take(bool wait, const HolderCallback& waiting) {
  std::string ttl = Millis(options_.ttl);
  if (!wait) {
    auto r = Run({"SET", kLeaderKey, id_, "PX", ttl});
    return r.ok() ? absl::OkStatus() : r.status();
  }
  std::string last_holder;
  while (true) {
    auto r = Run({"SET", kLeaderKey, id_, "NX", "PX", ttl});
    if (r.ok() && r->has_value()) return absl::OkStatus();  // "OK"
    if (!r.ok() && !absl::IsUnavailable(r.status())) return r.status();
    if (!r.ok()) {
      spdlog::warn("standby: {}; trying again", r.status().ToString());
    } else if (auto holder = Run({"GET", kLeaderKey});
               holder.ok() && holder->has_value() && **holder != last_holder) {
      last_holder = **holder;
      waiting(last_holder);
    }
    absl::SleepFor(std::min(options_.ttl / 4, kMaxPoll));
  }
}

void LeaderLease::KeepRenewing(HolderCallback lost) {
  loop_.Post([this, lost = std::move(lost)]() mutable {
    lost_ = std::move(lost);
    loop_.PostAfter(options_.ttl / 4, [this] { Renew(); });
  });
}

void LeaderLease::Renew() {
  redis_->Command(
      {"EVAL", kRenewScript, "1", kLeaderKey, id_, Millis(options_.ttl)},
      [this](absl::StatusOr<RedisStoreClient::Reply> r) {
        if (r.ok() && r->has_value() && **r != "1") {
          lost_(**r);
          return;
        }
        if (!r.ok()) {
          spdlog::warn("cannot renew the leader lease: {}",
                       r.status().ToString());
        }
        loop_.PostAfter(options_.ttl / 4, [this] { Renew(); });
      });
}

void LeaderLease::Release(absl::Duration timeout) {
  auto done = std::make_shared<std::promise<void>>();
  auto released = done->get_future();
  redis_->Command(
      {"EVAL", kReleaseScript, "1", kLeaderKey, id_},
      [done](absl::StatusOr<RedisStoreClient::Reply>) { done->set_value(); });
  released.wait_for(absl::ToChronoMilliseconds(timeout));
}

}  // namespace loom::gcs

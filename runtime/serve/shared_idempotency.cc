#include "runtime/serve/shared_idempotency.h"

#include <utility>
#include <vector>

#include "loom/serialization.h"
#include "runtime/internal_kv.h"
#include "runtime/serve/idempotency.h"

namespace loom::serve {
namespace {

// A record: [state, expires (Unix ms), status, content type, headers,
// body]; state "R" (running, no answer yet) or "D" (done).
struct Record {
  std::string state;
  int64_t expires_ms = 0;
  HttpResponse response;
};

std::string Pack(const Record& r) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_array(6);
  p.pack(r.state);
  p.pack(r.expires_ms);
  p.pack(r.response.status);
  p.pack(r.response.content_type);
  p.pack(r.response.headers);
  p.pack_bin(r.response.body.size());
  p.pack_bin_body(r.response.body.data(), r.response.body.size());
  return std::string(b.data(), b.size());
}

std::optional<Record> Unpack(const std::string& bytes) {
  try {
    msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = h.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 6) {
      return std::nullopt;
    }
    const msgpack::object* a = o.via.array.ptr;
    Record r;
    r.state = a[0].as<std::string>();
    r.expires_ms = a[1].as<int64_t>();
    r.response.status = a[2].as<int>();
    r.response.content_type = a[3].as<std::string>();
    r.response.headers =
        a[4].as<std::vector<std::pair<std::string, std::string>>>();
    r.response.body = a[5].as<std::string>();  // bin or str
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

SharedIdempotency::Claim SharedIdempotency::Begin(const std::string& key) {
  Record running{"R", 0, {}};
  absl::Time give_up = absl::Now() + options_.lease + options_.poll;
  while (absl::Now() < give_up) {
    running.expires_ms = NowMs() + absl::ToInt64Milliseconds(options_.lease);
    absl::StatusOr<bool> added =
        internal_kv::PutIfAbsent(kIdempotencyNamespace, key, Pack(running));
    if (!added.ok() || *added) return {};  // ours to run
    absl::StatusOr<std::optional<std::string>> got =
        internal_kv::Get(kIdempotencyNamespace, key);
    if (!got.ok()) return {};
    if (!got->has_value()) continue;  // deleted meanwhile: claim it
    std::optional<Record> r = Unpack(**got);
    if (!r || r->expires_ms <= NowMs()) {  // lapsed or unreadable
      (void)internal_kv::Del(kIdempotencyNamespace, key);
      continue;
    }
    if (r->state == "D") return {Replayed(std::move(r->response))};
    absl::SleepFor(options_.poll);  // another ingress runs it
  }
  return {};
}

void SharedIdempotency::Finish(const std::string& key,
                               const HttpResponse& response) {
  if (!Keepable(response) || response.body.size() > options_.max_kept_bytes) {
    (void)internal_kv::Del(kIdempotencyNamespace, key);
    return;
  }
  Record done{"D", NowMs() + absl::ToInt64Milliseconds(options_.ttl), response};
  done.response.stream = nullptr;
  (void)internal_kv::Put(kIdempotencyNamespace, key, Pack(done));
}

int SharedIdempotency::Sweep() {
  absl::StatusOr<std::vector<std::string>> keys =
      internal_kv::Keys(kIdempotencyNamespace, "");
  if (!keys.ok()) return 0;
  int deleted = 0;
  for (const std::string& key : *keys) {
    absl::StatusOr<std::optional<std::string>> got =
        internal_kv::Get(kIdempotencyNamespace, key);
    if (!got.ok() || !got->has_value()) continue;
    std::optional<Record> r = Unpack(**got);
    if ((!r || r->expires_ms <= NowMs()) &&
        internal_kv::Del(kIdempotencyNamespace, key).value_or(false)) {
      ++deleted;
    }
  }
  return deleted;
}

}  // namespace loom::serve

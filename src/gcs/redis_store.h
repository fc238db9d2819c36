// src/gcs/redis_store.h
//
// RedisStoreClient: the head's tables in Redis, so that a head restarted on
// the same storage finds them again. Each table is one Redis hash,
// `loom:<table>`; keys and values are arbitrary bytes. MakeStoreClient picks
// the backend from the head's --storage value.
//
//   EventLoop loop("gcs");
//   auto store = MakeStoreClient("redis://:secret@10.0.0.5:6379/2", &loop);
//   if (!store.ok()) return store.status();  // unreachable, bad password...
//   (*store)->Put("kv", key, value, /*overwrite=*/true,
//                 [](absl::StatusOr<bool> added) {...});  // on `loop`
//
// Calls run in the order they were made, on one connection: a Get after a
// Put sees the Put. Their callbacks are posted to the event loop, in the same
// order. Calls waiting together are pipelined (sent at once, replies read
// after), so a burst of writes costs about one round trip.
//
// Failures. A call that meets a broken connection (the server died,
// restarted, is still loading its data after a restart, or was silent for
// io_timeout) is retried, in order with the calls after it, after
// reconnecting with backoff (doubling from 10 ms, capped at 500 ms) for
// RedisRetryPolicy::retry_timeout (10 s); then it and the calls sent with it
// fail UNAVAILABLE, naming HOST:PORT. A later call starts a new retry window.
// An error reply from the server (e.g. WRONGTYPE: a key `loom:<table>` that
// is not a hash) fails that call alone, at once, with the reply's message.
// The head treats any failed write as fatal: it exits rather than run on
// state it could not save.
//
// A connection given up on while its server lives on (silence) is ended
// with CLIENT KILL on the new one before anything is sent again, so that
// calls still in the server's buffer cannot run after newer ones.
//
// A retried write that had reached the server before the connection broke is
// applied again: HSET and HDEL are idempotent, but the second attempt's
// `added` (Put with overwrite=false) or "deleted" answer reflects the first.
// The head is the only writer, so this shows only after a server failure.
#ifndef LOOM_GCS_REDIS_STORE_H_
#define LOOM_GCS_REDIS_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/event_loop.h"
#include "src/gcs/storage.h"

namespace loom::gcs {

// redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]; HOST may be [IPv6]. USER and
// PASSWORD may be percent-encoded.
struct RedisUrl {
  std::string host;
  int port = 6379;
  std::string username;  // empty: AUTH PASSWORD (the default user)
  std::string password;  // empty: no AUTH
  int db = 0;

  // "HOST:PORT" (never the password): what errors and logs name.
  std::string HostPort() const;
};

// Errors (INVALID_ARGUMENT) say what is wrong with `url`, without repeating
// a password it holds.
absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view url);

struct RedisRetryPolicy {
  // How long the first connection may take (it is retried with backoff
  // meanwhile, e.g. while the server starts or loads its data).
  absl::Duration connect_timeout = absl::Seconds(5);
  // How long a call is retried across a broken connection before it fails.
  absl::Duration retry_timeout = absl::Seconds(10);
  absl::Duration max_backoff = absl::Milliseconds(500);
  // A reply that stays silent this long counts as a broken connection.
  absl::Duration io_timeout = absl::Seconds(2);
};

struct RedisStoreOptions {
  RedisUrl url;
  EventLoop* loop = nullptr;  // where callbacks run; must outlive the client
  RedisRetryPolicy retry;
};

// Thread-safe: calls may come from any thread; their callbacks run on the
// event loop. The destructor sends the calls already made while the
// connection is up (without retrying), drops the rest, and joins its thread;
// callbacks it has not posted by then never run. Never block the loop's
// thread waiting for a callback (e.g. in the load phase): it is posted there.
class RedisStoreClient : public StoreClient {
 public:
  // Connects (AUTH, SELECT, and waits until the server has loaded its data);
  // fails UNAVAILABLE when it cannot within connect_timeout, or at once when
  // the server refuses the password or the database number.
  static absl::StatusOr<std::unique_ptr<RedisStoreClient>> Connect(
      RedisStoreOptions options);
  ~RedisStoreClient() override;

  void Put(const std::string& table, const std::string& key, std::string value,
           bool overwrite,
           std::function<void(absl::StatusOr<bool>)> done) override;
  void Get(const std::string& table, const std::string& key,
           GetCallback done) override;
  void Delete(const std::string& table, const std::string& key,
              std::function<void(absl::StatusOr<bool>)> done) override;
  // Sorted, as the in-memory store's.
  void Keys(const std::string& table, const std::string& prefix,
            KeysCallback done) override;
  void GetAll(const std::string& table, AllCallback done) override;
  bool durable() const override { return true; }

  // Any other command (e.g. the leader lease's SET and EVAL), in order with
  // the rest and retried the same way. Its reply: nil (nullopt), a string,
  // or an integer as decimal text; an error reply fails the call.
  using Reply = std::optional<std::string>;
  void Command(std::vector<std::string> argv,
               std::function<void(absl::StatusOr<Reply>)> done);

  class Impl;  // hiredis stays in redis_store.cc

 private:
  explicit RedisStoreClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The head's --storage value: "" or "memory" gives an InMemoryStoreClient,
// "redis://..." a RedisStoreClient connected at once (see Connect for its
// errors); anything else is INVALID_ARGUMENT.
absl::StatusOr<std::unique_ptr<StoreClient>> MakeStoreClient(
    std::string_view url_or_empty, EventLoop* loop,
    RedisRetryPolicy retry = {});

}  // namespace loom::gcs

#endif  // LOOM_GCS_REDIS_STORE_H_

#include "src/gcs/redis_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "src/common/logging.h"

namespace loom::gcs {
namespace {

constexpr absl::string_view kScheme = "redis://";
constexpr absl::string_view kUrlForm =
    "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]";
constexpr char kTablePrefix[] = "loom:";
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(10);
// One connection attempt; a host that does not answer is tried again.
constexpr absl::Duration kConnectAttempt = absl::Seconds(1);
// Calls sent in one pipeline: enough for a burst, bounded in memory.
constexpr size_t kMaxBatchCalls = 1024;
constexpr size_t kMaxBatchBytes = 16 << 20;

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;
struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

absl::string_view ReplyText(const redisReply* r) {
  return r->str == nullptr ? absl::string_view()
                           : absl::string_view(r->str, r->len);
}

bool AllDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

absl::Status BadUrl(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad Redis URL: ", why, " (expected ", kUrlForm, ")"));
}

absl::StatusOr<std::string> PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    auto hex = [](char c) {
      return absl::ascii_isdigit(static_cast<unsigned char>(c))
                 ? c - '0'
                 : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' +
                       10;
    };
    if (i + 2 >= s.size() ||
        !absl::ascii_isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !absl::ascii_isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      return BadUrl(
          "a '%' in the user or password is not followed by two "
          "hex digits");
    }
    int value = hex(s[i + 1]) * 16 + hex(s[i + 2]);
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

// Runs on the worker thread: a write to a socket the server closed raises
// SIGPIPE, which would end a process that does not ignore it (a test).
void BlockSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Takes a SIGPIPE left pending on this thread by a failed write.
void DrainSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  timespec zero{0, 0};
  while (sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
  }
}

ReplyPtr RunCommand(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(redisCommandArgv(
      c, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
}

}  // namespace

std::string RedisUrl::HostPort() const {
  bool v6 = host.find(':') != std::string::npos;
  return v6 ? absl::StrCat("[", host, "]:", port)
            : absl::StrCat(host, ":", port);
}

absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view std_url) {
  // This Abseil's string_view is its own type, not std's.
  absl::string_view url(std_url.data(), std_url.size());
  if (absl::StartsWithIgnoreCase(url, "rediss://")) {
    return BadUrl("TLS (rediss://) is not supported");
  }
  if (!absl::StartsWithIgnoreCase(url, kScheme)) {
    return BadUrl(
        url.find('@') == absl::string_view::npos
            ? absl::StrCat("\"", url, "\" does not start with redis://")
            : std::string("it does not start with redis://"));
  }
  absl::string_view rest = url.substr(kScheme.size());
  RedisUrl out;
  // USER:PASSWORD@ ends at the last '@' (a password may hold '/' or '@').
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    absl::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == absl::string_view::npos) {
      return BadUrl("the part before '@' must be :PASSWORD or USER:PASSWORD");
    }
    auto user = PercentDecode(userinfo.substr(0, colon));
    if (!user.ok()) return user.status();
    auto password = PercentDecode(userinfo.substr(colon + 1));
    if (!password.ok()) return password.status();
    if (password->empty()) return BadUrl("the password after ':' is empty");
    out.username = *std::move(user);
    out.password = *std::move(password);
  }
  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return BadUrl("query strings and fragments ('?', '#') are not supported");
  }
  absl::string_view hostport = rest;
  absl::string_view db_text;
  bool has_db = false;
  if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    hostport = rest.substr(0, slash);
    db_text = rest.substr(slash + 1);
    has_db = !db_text.empty();
  }
  absl::string_view port_text;
  bool has_port = false;
  if (absl::StartsWith(hostport, "[")) {
    size_t close = hostport.find(']');
    if (close == absl::string_view::npos) return BadUrl("'[' without ']'");
    out.host = std::string(hostport.substr(1, close - 1));
    absl::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return BadUrl("text after the ']' of the host");
      port_text = after.substr(1);
      has_port = true;
    }
  } else if (size_t colon = hostport.find(':');
             colon != absl::string_view::npos) {
    if (hostport.find(':', colon + 1) != absl::string_view::npos) {
      return BadUrl("an IPv6 host must be written in brackets: [::1]");
    }
    out.host = std::string(hostport.substr(0, colon));
    port_text = hostport.substr(colon + 1);
    has_port = true;
  } else {
    out.host = std::string(hostport);
  }
  if (out.host.empty()) return BadUrl("no host");
  if (has_port && (!AllDigits(port_text) || port_text.size() > 5 ||
                   !absl::SimpleAtoi(port_text, &out.port) || out.port < 1 ||
                   out.port > 65535)) {
    return BadUrl(absl::StrCat("port \"", port_text,
                               "\" is not a number from 1 to 65535"));
  }
  if (has_db && (!AllDigits(db_text) || db_text.size() > 9 ||
                 !absl::SimpleAtoi(db_text, &out.db))) {
    return BadUrl(
        absl::StrCat("database \"", db_text, "\" is not a number (0, 1, ...)"));
  }
  return out;
}

// One connection, owned by one thread that sends the calls in order and
// posts their callbacks to the event loop.
class RedisStoreClient::Impl {
 public:
  // Runs on the worker thread with the call's reply (an error reply too) or
  // the status that ended its retries; posts the caller's callback.
  using Finish = std::function<void(absl::StatusOr<const redisReply*>)>;

  explicit Impl(RedisStoreOptions options)
      : options_(std::move(options)), where_(options_.url.HostPort()) {}

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Start() {
    absl::Notification connected;
    absl::Status first;
    thread_ = std::thread([this, &connected, &first] {
      BlockSigpipe();
      first = Reconnect(absl::Now() + options_.retry.connect_timeout);
      if (absl::IsUnavailable(first)) {
        first = absl::UnavailableError(
            absl::StrCat("cannot reach Redis at ", where_, " within ",
                         absl::FormatDuration(options_.retry.connect_timeout),
                         ": ", first.message()));
      }
      bool ok = first.ok();
      connected.Notify();  // `first` and `connected` are gone after this
      if (ok) Run();
    });
    connected.WaitForNotification();
    return first;
  }

  void Submit(std::vector<std::string> argv, Finish finish) {
    size_t bytes = 0;
    for (const auto& a : argv) bytes += a.size();
    absl::MutexLock lock(&mu_);
    queue_.push_back(Call{std::move(argv), std::move(finish), bytes});
  }

  EventLoop* loop() const { return options_.loop; }
  const std::string& where() const { return where_; }

 private:
  struct Call {
    std::vector<std::string> argv;
    Finish finish;
    size_t bytes;
  };

  void Run() {
    std::vector<Call> batch;
    while (TakeBatch(&batch)) {
      bool stopping = Stopping();
      size_t done = 0;
      absl::Time give_up = absl::InfiniteFuture();
      while (done < batch.size()) {
        if (ctx_ == nullptr) {
          if (stopping) break;  // the destructor sends, but does not retry
          if (give_up == absl::InfiniteFuture()) {
            give_up = absl::Now() + options_.retry.retry_timeout;
          }
          absl::Status s = Reconnect(give_up);
          if (absl::IsCancelled(s)) break;
          if (!s.ok()) {
            if (absl::IsUnavailable(s)) {
              s = absl::UnavailableError(absl::StrCat(
                  "Redis at ", where_, " unreachable for ",
                  absl::FormatDuration(options_.retry.retry_timeout), ": ",
                  s.message()));
            }
            for (size_t i = done; i < batch.size(); ++i) batch[i].finish(s);
            break;
          }
        }
        if (!Send(batch, &done) && give_up == absl::InfiniteFuture()) {
          give_up = absl::Now() + options_.retry.retry_timeout;
        }
      }
      batch.clear();
    }
  }

  // Waits for calls; false once stopping with none left.
  bool TakeBatch(std::vector<Call>* batch) {
    mu_.LockWhen(absl::Condition(
        +[](Impl* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
          return self->stopping_ || !self->queue_.empty();
        },
        this));
    size_t bytes = 0;
    while (!queue_.empty() && batch->size() < kMaxBatchCalls &&
           (batch->empty() || bytes + queue_.front().bytes <= kMaxBatchBytes)) {
      bytes += queue_.front().bytes;
      batch->push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    mu_.Unlock();
    return !batch->empty();
  }

  bool Stopping() {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }

  // Sleeps `d`; true (at once) when the client is stopping.
  bool SleepUnlessStopping(absl::Duration d) {
    bool stopping = mu_.LockWhenWithTimeout(absl::Condition(&stopping_), d);
    mu_.Unlock();
    return stopping;
  }

  // Pipelines batch[*done...]: appends every call, then reads the replies
  // in order, finishing each. False when the connection broke (it is
  // dropped; *done counts the calls answered before).
  bool Send(std::vector<Call>& batch, size_t* done) {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (size_t i = *done; i < batch.size(); ++i) {
      ptrs.clear();
      lens.clear();
      for (const auto& a : batch[i].argv) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
      }
      if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(ptrs.size()),
                                 ptrs.data(), lens.data()) != REDIS_OK) {
        return Broken(Why(ctx_.get()));
      }
    }
    for (; *done < batch.size(); ++*done) {
      void* raw = nullptr;
      if (redisGetReply(ctx_.get(), &raw) != REDIS_OK) {
        return Broken(Why(ctx_.get()));
      }
      ReplyPtr reply(static_cast<redisReply*>(raw));
      if (reply->type == REDIS_REPLY_ERROR &&
          absl::StartsWith(ReplyText(reply.get()), "LOADING")) {
        return Broken("the server is loading its data");
      }
      batch[*done].finish(reply.get());
    }
    return true;
  }

  // What went wrong on `c`, in words: a read that timed out says so.
  std::string Why(const redisContext* c) const {
    if (c->err == REDIS_ERR_IO &&
        absl::string_view(c->errstr) == std::strerror(EAGAIN)) {
      return absl::StrCat("no answer within ",
                          absl::FormatDuration(options_.retry.io_timeout));
    }
    return c->errstr;
  }

  bool Broken(absl::string_view why) {
    spdlog::warn("lost the connection to Redis at {} ({}); reconnecting",
                 where_, std::string(why));
    ctx_.reset();
    DrainSigpipe();
    return false;
  }

  // Connects until it works, `deadline` passes (the last UNAVAILABLE
  // error), the server refuses us (another error) or the client stops
  // (CANCELLED).
  absl::Status Reconnect(absl::Time deadline) {
    absl::Duration backoff = kFirstBackoff;
    while (true) {
      absl::Duration left = deadline - absl::Now();
      absl::Status s = ConnectOnce(
          std::clamp(left, absl::Milliseconds(10), kConnectAttempt));
      if (s.ok() || !absl::IsUnavailable(s)) return s;
      left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return s;
      if (SleepUnlessStopping(std::min(backoff, left))) {
        return absl::CancelledError("stopping");
      }
      backoff = std::min(backoff * 2, options_.retry.max_backoff);
    }
  }

  // UNAVAILABLE (with a bare reason) when worth retrying.
  absl::Status ConnectOnce(absl::Duration timeout) {
    const RedisUrl& url = options_.url;
    ContextPtr c(redisConnectWithTimeout(url.host.c_str(), url.port,
                                         absl::ToTimeval(timeout)));
    if (c == nullptr) return absl::UnavailableError("out of memory");
    if (c->err) {
      DrainSigpipe();
      return absl::UnavailableError(Why(c.get()));
    }
    redisSetTimeout(c.get(), absl::ToTimeval(options_.retry.io_timeout));
    redisEnableKeepAlive(c.get());
    auto run =
        [&](const std::vector<std::string>& argv) -> absl::StatusOr<ReplyPtr> {
      ReplyPtr r = RunCommand(c.get(), argv);
      if (r == nullptr) {
        DrainSigpipe();
        return absl::UnavailableError(Why(c.get()));
      }
      if (r->type == REDIS_REPLY_ERROR &&
          absl::StartsWith(ReplyText(r.get()), "LOADING")) {
        return absl::UnavailableError("the server is loading its data");
      }
      return r;
    };
    if (!url.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!url.username.empty()) auth.push_back(url.username);
      auth.push_back(url.password);
      auto r = run(auth);
      if (!r.ok()) return r.status();
      if ((*r)->type == REDIS_REPLY_ERROR) {
        return absl::PermissionDeniedError(
            absl::StrCat("Redis at ", where_,
                         " refused the password: ", ReplyText(r->get())));
      }
    }
    if (url.db != 0) {
      auto r = run({"SELECT", absl::StrCat(url.db)});
      if (!r.ok()) return r.status();
      if ((*r)->type == REDIS_REPLY_ERROR) {
        return absl::InvalidArgumentError(
            absl::StrCat("Redis at ", where_, " refused database ", url.db,
                         ": ", ReplyText(r->get())));
      }
    }
    // Answers LOADING until a restarted server has read its data back.
    auto r = run({"PING"});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) {
      absl::string_view text = ReplyText(r->get());
      if (absl::StartsWith(text, "NOAUTH")) {
        return absl::PermissionDeniedError(absl::StrCat(
            "Redis at ", where_,
            " wants a password (redis://:PASSWORD@HOST:PORT): ", text));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("Redis at ", where_, " refused PING: ", text));
    }
    Identity previous = identity_;
    identity_ = Identify(c.get());
    EndConnection(c.get(), previous);
    ctx_ = std::move(c);
    return absl::OkStatus();
  }

  // Which server process (INFO's run_id) and which of its clients (CLIENT
  // ID) a connection is; empty/0 where the server will not say (old Redis,
  // an ACL).
  struct Identity {
    std::string run_id;
    long long client_id = 0;
  };

  static Identity Identify(redisContext* c) {
    Identity id;
    ReplyPtr client = RunCommand(c, {"CLIENT", "ID"});
    if (client && client->type == REDIS_REPLY_INTEGER) {
      id.client_id = client->integer;
    }
    ReplyPtr info = RunCommand(c, {"INFO", "server"});
    if (info && info->type == REDIS_REPLY_STRING) {
      absl::string_view text = ReplyText(info.get());
      size_t at = text.find("run_id:");
      if (at != absl::string_view::npos) {
        text = text.substr(at + 7);
        id.run_id = std::string(text.substr(0, text.find_first_of("\r\n")));
      }
    }
    return id;
  }

  // A connection given up on for silence may still be alive in the same
  // server, its unread calls waiting in the server's buffer: ended here
  // before any call is sent again, so that none of them can run after a
  // newer one.
  void EndConnection(redisContext* c, const Identity& old) {
    if (old.client_id == 0 || old.run_id.empty() ||
        old.run_id != identity_.run_id ||
        old.client_id == identity_.client_id) {
      return;  // a new server process, or nothing known
    }
    ReplyPtr r =
        RunCommand(c, {"CLIENT", "KILL", "ID", absl::StrCat(old.client_id)});
    if (r && r->type == REDIS_REPLY_ERROR &&
        !absl::StrContains(ReplyText(r.get()), "No such client")) {
      spdlog::warn("Redis at {} would not end the old connection: {}", where_,
                   std::string(ReplyText(r.get())));
    }
  }

  const RedisStoreOptions options_;
  const std::string where_;
  // The worker thread's alone.
  ContextPtr ctx_;
  Identity identity_;  // of the last connection made

  absl::Mutex mu_;
  std::deque<Call> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

namespace {

// A call's reply as T, or the error it carries.
template <typename T>
using Convert = std::function<absl::StatusOr<T>(const redisReply*)>;

template <typename T>
RedisStoreClient::Impl::Finish PostTo(
    RedisStoreClient::Impl* impl, Convert<T> convert,
    std::function<void(absl::StatusOr<T>)> done) {
  EventLoop* loop = impl->loop();
  std::string where = impl->where();
  return [loop, where, convert = std::move(convert),
          done = std::move(done)](absl::StatusOr<const redisReply*> reply) {
    absl::StatusOr<T> result;
    if (!reply.ok()) {
      result = reply.status();
    } else if ((*reply)->type == REDIS_REPLY_ERROR) {
      result = absl::InternalError(
          absl::StrCat("Redis at ", where, ": ", ReplyText(*reply)));
    } else {
      result = convert(*reply);
    }
    loop->Post([done, result = std::move(result)]() mutable {
      done(std::move(result));
    });
  };
}

absl::Status Unexpected(const redisReply* r) {
  return absl::InternalError(
      absl::StrCat("unexpected Redis reply of type ", r->type));
}

absl::StatusOr<bool> AsBool(const redisReply* r) {
  if (r->type != REDIS_REPLY_INTEGER) return Unexpected(r);
  return r->integer > 0;
}

std::string TableKey(const std::string& table) {
  return absl::StrCat(kTablePrefix, table);
}

}  // namespace

RedisStoreClient::RedisStoreClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

RedisStoreClient::~RedisStoreClient() = default;

absl::StatusOr<std::unique_ptr<RedisStoreClient>> RedisStoreClient::Connect(
    RedisStoreOptions options) {
  if (options.loop == nullptr) {
    return absl::InvalidArgumentError("RedisStoreClient needs an event loop");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<RedisStoreClient>(
      new RedisStoreClient(std::move(impl)));
}

void RedisStoreClient::Put(const std::string& table, const std::string& key,
                           std::string value, bool overwrite,
                           std::function<void(absl::StatusOr<bool>)> done) {
  impl_->Submit(
      {overwrite ? "HSET" : "HSETNX", TableKey(table), key, std::move(value)},
      PostTo<bool>(impl_.get(), AsBool, std::move(done)));
}

void RedisStoreClient::Get(const std::string& table, const std::string& key,
                           GetCallback done) {
  using Value = std::optional<std::string>;
  Convert<Value> convert = [](const redisReply* r) -> absl::StatusOr<Value> {
    if (r->type == REDIS_REPLY_NIL) return Value();
    if (r->type != REDIS_REPLY_STRING) return Unexpected(r);
    return Value(std::string(ReplyText(r)));
  };
  impl_->Submit({"HGET", TableKey(table), key},
                PostTo<Value>(impl_.get(), convert, std::move(done)));
}

void RedisStoreClient::Delete(const std::string& table, const std::string& key,
                              std::function<void(absl::StatusOr<bool>)> done) {
  impl_->Submit({"HDEL", TableKey(table), key},
                PostTo<bool>(impl_.get(), AsBool, std::move(done)));
}

void RedisStoreClient::Keys(const std::string& table, const std::string& prefix,
                            KeysCallback done) {
  using List = std::vector<std::string>;
  Convert<List> convert =
      [prefix](const redisReply* r) -> absl::StatusOr<List> {
    if (r->type != REDIS_REPLY_ARRAY) return Unexpected(r);
    List keys;
    for (size_t i = 0; i < r->elements; ++i) {
      absl::string_view key = ReplyText(r->element[i]);
      if (absl::StartsWith(key, prefix)) keys.emplace_back(key);
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  };
  impl_->Submit({"HKEYS", TableKey(table)},
                PostTo<List>(impl_.get(), convert, std::move(done)));
}

void RedisStoreClient::GetAll(const std::string& table, AllCallback done) {
  Convert<Table> convert = [](const redisReply* r) -> absl::StatusOr<Table> {
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
      return Unexpected(r);
    }
    Table all;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      all.emplace(ReplyText(r->element[i]), ReplyText(r->element[i + 1]));
    }
    return all;
  };
  impl_->Submit({"HGETALL", TableKey(table)},
                PostTo<Table>(impl_.get(), convert, std::move(done)));
}

void RedisStoreClient::Command(
    std::vector<std::string> argv,
    std::function<void(absl::StatusOr<Reply>)> done) {
  Convert<Reply> convert = [](const redisReply* r) -> absl::StatusOr<Reply> {
    switch (r->type) {
      case REDIS_REPLY_NIL:
        return Reply();
      case REDIS_REPLY_INTEGER:
        return Reply(absl::StrCat(r->integer));
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS:
        return Reply(std::string(ReplyText(r)));
      default:
        return Unexpected(r);
    }
  };
  impl_->Submit(std::move(argv),
                PostTo<Reply>(impl_.get(), convert, std::move(done)));
}

absl::StatusOr<std::unique_ptr<StoreClient>> MakeStoreClient(
    std::string_view std_url, EventLoop* loop, RedisRetryPolicy retry) {
  absl::string_view url_or_empty(std_url.data(), std_url.size());
  if (url_or_empty.empty() || url_or_empty == "memory") {
    return std::make_unique<InMemoryStoreClient>();
  }
  if (!absl::StartsWithIgnoreCase(url_or_empty, "redis")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "storage must be empty, \"memory\" or ", kUrlForm, ", not \"",
        url_or_empty.find('@') == absl::string_view::npos ? url_or_empty
                                                          : "(elided)",
        "\""));
  }
  auto url = ParseRedisUrl(std_url);
  if (!url.ok()) return url.status();
  auto client = RedisStoreClient::Connect({*std::move(url), loop, retry});
  if (!client.ok()) return client.status();
  return std::unique_ptr<StoreClient>(*std::move(client));
}

}  // namespace loom::gcs

// The storage contract, run against the in-memory store and against
// RedisStoreClient on a real redis-server; then what only Redis does: URLs,
// passwords, a server that dies and comes back, one that stays down.
#include "src/gcs/redis_store.h"

#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/event_loop.h"
#include "tests/common/redis_server.h"

namespace loom::gcs {
namespace {

using test::RedisServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kWait = absl::Seconds(20);

// Makes calls on the loop, as the head does, and waits for their callbacks.
class Caller {
 public:
  Caller(EventLoop* loop, StoreClient* store) : loop_(loop), store_(store) {}

  // Whether every callback so far ran on the loop's thread.
  bool all_on_loop() const { return all_on_loop_; }

  absl::StatusOr<bool> Put(const std::string& table, const std::string& key,
                           const std::string& value, bool overwrite = true) {
    return Call<bool>([=](StoreClient* s, auto done) {
      s->Put(table, key, value, overwrite, done);
    });
  }
  absl::StatusOr<std::optional<std::string>> Get(const std::string& table,
                                                 const std::string& key) {
    return Call<std::optional<std::string>>(
        [=](StoreClient* s, auto done) { s->Get(table, key, done); });
  }
  absl::StatusOr<bool> Delete(const std::string& table,
                              const std::string& key) {
    return Call<bool>(
        [=](StoreClient* s, auto done) { s->Delete(table, key, done); });
  }
  absl::StatusOr<std::vector<std::string>> Keys(const std::string& table,
                                                const std::string& prefix) {
    return Call<std::vector<std::string>>(
        [=](StoreClient* s, auto done) { s->Keys(table, prefix, done); });
  }
  absl::StatusOr<StoreClient::Table> GetAll(const std::string& table) {
    return Call<StoreClient::Table>(
        [=](StoreClient* s, auto done) { s->GetAll(table, done); });
  }

 private:
  template <typename T>
  absl::StatusOr<T> Call(
      std::function<void(StoreClient*, std::function<void(absl::StatusOr<T>)>)>
          call) {
    struct State {
      absl::Notification done;
      absl::StatusOr<T> result;
    };
    auto state = std::make_shared<State>();
    loop_->Post([this, state, call] {
      call(store_, [this, state](absl::StatusOr<T> r) {
        if (!loop_->IsLoopThread()) all_on_loop_ = false;
        state->result = std::move(r);
        state->done.Notify();
      });
    });
    if (!state->done.WaitForNotificationWithTimeout(kWait)) {
      return absl::DeadlineExceededError("no callback");
    }
    return state->result;
  }

  EventLoop* loop_;
  StoreClient* store_;
  std::atomic<bool> all_on_loop_{true};
};

// --- The contract, for both stores -------------------------------------------

class StoreContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    loop_.Start();
    std::string url = "memory";
    if (GetParam() == "redis") {
      auto server = RedisServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      redis_ = *std::move(server);
      url = redis_->url();
    }
    auto store = MakeStoreClient(url, &loop_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    caller_ = std::make_unique<Caller>(&loop_, store_.get());
  }
  void TearDown() override {
    if (caller_) {
      EXPECT_TRUE(caller_->all_on_loop());
    }
    store_.reset();
    loop_.Stop();
  }

  EventLoop loop_{"gcs-test"};
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<StoreClient> store_;
  std::unique_ptr<Caller> caller_;
};

INSTANTIATE_TEST_SUITE_P(Stores, StoreContractTest,
                         ::testing::Values("memory", "redis"),
                         [](const auto& info) { return info.param; });

TEST_P(StoreContractTest, APutIsReadBack) {
  EXPECT_EQ(caller_->Get("t", "k").value(), std::nullopt);
  EXPECT_EQ(caller_->Put("t", "k", "v1").value(), true);
  EXPECT_EQ(caller_->Get("t", "k").value(), "v1");
  EXPECT_EQ(caller_->Get("other", "k").value(), std::nullopt);
}

TEST_P(StoreContractTest, OverwriteFalseKeepsTheValueThere) {
  EXPECT_EQ(caller_->Put("t", "k", "v1", /*overwrite=*/false).value(), true);
  EXPECT_EQ(caller_->Put("t", "k", "v2", /*overwrite=*/false).value(), false);
  EXPECT_EQ(caller_->Get("t", "k").value(), "v1");
  EXPECT_EQ(caller_->Put("t", "k", "v3", /*overwrite=*/true).value(), false);
  EXPECT_EQ(caller_->Get("t", "k").value(), "v3");
}

TEST_P(StoreContractTest, DeleteSaysWhetherTheKeyWasThere) {
  ASSERT_TRUE(caller_->Put("t", "k", "v").ok());
  EXPECT_EQ(caller_->Delete("t", "k").value(), true);
  EXPECT_EQ(caller_->Delete("t", "k").value(), false);
  EXPECT_EQ(caller_->Delete("never", "k").value(), false);
  EXPECT_EQ(caller_->Get("t", "k").value(), std::nullopt);
}

TEST_P(StoreContractTest, KeysWithAPrefixAreSorted) {
  for (const char* k : {"job:2", "job:1", "actor:1", "jo"}) {
    ASSERT_TRUE(caller_->Put("t", k, "v").ok());
  }
  ASSERT_TRUE(caller_->Put("t2", "job:3", "v").ok());
  EXPECT_THAT(caller_->Keys("t", "job:").value(),
              ElementsAre("job:1", "job:2"));
  EXPECT_THAT(caller_->Keys("t", "").value(),
              ElementsAre("actor:1", "jo", "job:1", "job:2"));
  EXPECT_THAT(caller_->Keys("t", "none").value(), ElementsAre());
  EXPECT_THAT(caller_->Keys("empty", "").value(), ElementsAre());
}

TEST_P(StoreContractTest, GetAllReturnsTheWholeTable) {
  EXPECT_TRUE(caller_->GetAll("t").value().empty());
  ASSERT_TRUE(caller_->Put("t", "a", "1").ok());
  ASSERT_TRUE(caller_->Put("t", "b", "2").ok());
  ASSERT_TRUE(caller_->Put("other", "c", "3").ok());
  EXPECT_EQ(caller_->GetAll("t").value(),
            (StoreClient::Table{{"a", "1"}, {"b", "2"}}));
}

TEST_P(StoreContractTest, BinaryKeysAndValuesRoundTrip) {
  std::string key("k\0\xff\r\n", 5);
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  std::string table("t\0b", 3);
  ASSERT_TRUE(caller_->Put(table, key, value).ok());
  EXPECT_EQ(caller_->Get(table, key).value(), value);
  EXPECT_EQ(caller_->Get(table, "k").value(), std::nullopt);
  EXPECT_THAT(caller_->Keys(table, std::string("k\0", 2)).value(),
              ElementsAre(key));
  EXPECT_EQ(caller_->GetAll(table).value(), (StoreClient::Table{{key, value}}));
  EXPECT_EQ(caller_->Delete(table, key).value(), true);
}

// The head writes without waiting and reads later: every callback runs on
// the loop, in call order, and a read sees every write made before it.
TEST_P(StoreContractTest, CallsCompleteInOrderOnTheLoop) {
  constexpr int kPuts = 3000;  // more than one pipeline's worth
  std::vector<int> order;
  absl::Notification done;
  std::optional<std::string> last;
  StoreClient::Table all;
  std::atomic<bool> off_loop{false};
  loop_.Post([&] {
    for (int i = 0; i < kPuts; ++i) {
      store_->Put("t", "last", absl::StrCat(i), true, [&, i](auto r) {
        if (!loop_.IsLoopThread() || !r.ok()) off_loop = true;
        order.push_back(i);
      });
      store_->Put("all", absl::StrCat(i), absl::StrCat(i), true, [](auto) {});
    }
    store_->Get("t", "last", [&](auto r) {
      last = r.value();
      store_->GetAll("all", [&](auto r) {
        all = r.value();
        done.Notify();
      });
    });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(off_loop);
  ASSERT_EQ(order.size(), kPuts);
  for (int i = 0; i < kPuts; ++i) ASSERT_EQ(order[i], i);
  EXPECT_EQ(last, absl::StrCat(kPuts - 1));
  EXPECT_EQ(all.size(), kPuts);
}

// --- URLs and the factory
// ------------------------------------------------------

TEST(RedisUrlTest, GoodUrlsParse) {
  auto plain = ParseRedisUrl("redis://head.example");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->host, "head.example");
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->db, 0);
  EXPECT_EQ(plain->password, "");

  auto full = ParseRedisUrl("redis://:p%40ss/w@10.0.0.5:6380/3");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->password, "p@ss/w");
  EXPECT_EQ(full->username, "");
  EXPECT_EQ(full->HostPort(), "10.0.0.5:6380");
  EXPECT_EQ(full->db, 3);

  auto v6 = ParseRedisUrl("redis://loom:pw@[::1]:7000/");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->username, "loom");
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->HostPort(), "[::1]:7000");
}

TEST(RedisUrlTest, BadUrlsSayWhatIsWrong) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {"http://h:6379", "does not start with redis://"},
           {"rediss://h", "TLS"},
           {"redis://", "no host"},
           {"redis://:6379", "no host"},
           {"redis://h:", "port \"\""},
           {"redis://h:0", "port \"0\""},
           {"redis://h:70000", "port \"70000\""},
           {"redis://h:+1", "port \"+1\""},
           {"redis://h:6379/x", "database \"x\""},
           {"redis://h/-1", "database \"-1\""},
           {"redis://pw@h", "before '@'"},
           {"redis://:@h", "password after ':' is empty"},
           {"redis://:%zz@h", "hex digits"},
           {"redis://h?db=1", "query"},
           {"redis://::1:6379", "brackets"},
           {"redis://[::1", "without ']'"},
       }) {
    auto url = ParseRedisUrl(c.url);
    ASSERT_FALSE(url.ok()) << c.url;
    EXPECT_TRUE(absl::IsInvalidArgument(url.status())) << c.url;
    EXPECT_THAT(url.status().message(), HasSubstr(c.says)) << c.url;
    EXPECT_THAT(url.status().message(), HasSubstr("redis://[[USER]:PASSWORD@]"))
        << c.url;
  }
  auto secret = ParseRedisUrl("redis://:hunter2@h:bad");
  ASSERT_FALSE(secret.ok());
  EXPECT_THAT(secret.status().message(), Not(HasSubstr("hunter2")));
}

TEST(MakeStoreClientTest, PicksTheBackend) {
  EventLoop loop("gcs-test");
  for (const char* memory : {"", "memory"}) {
    auto store = MakeStoreClient(memory, &loop);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_NE(dynamic_cast<InMemoryStoreClient*>(store->get()), nullptr);
  }
  auto other = MakeStoreClient("etcd://h:2379", &loop);
  ASSERT_FALSE(other.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(other.status()));
  EXPECT_THAT(other.status().message(), HasSubstr("\"memory\""));
  auto bad = MakeStoreClient("redis://h:x", &loop);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
}

// --- Redis: connecting
// --------------------------------------------------------

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { loop_.Start(); }
  void TearDown() override { loop_.Stop(); }
  EventLoop loop_{"gcs-test"};
};

TEST_F(RedisStoreTest, AnUnreachableServerFailsWithinTheConnectTimeout) {
  // A port nothing listens on: a server started and stopped.
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  std::string url = (*server)->url();
  std::string where = (*server)->host_port();
  server->reset();

  RedisRetryPolicy retry;
  retry.connect_timeout = absl::Milliseconds(500);
  absl::Time start = absl::Now();
  auto store = MakeStoreClient(url, &loop_, retry);
  absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsUnavailable(store.status())) << store.status();
  EXPECT_THAT(store.status().message(),
              HasSubstr(absl::StrCat("cannot reach Redis at ", where,
                                     " within 500ms")));
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(RedisStoreTest, AWrongOrMissingPasswordIsRefusedAtOnce) {
  auto server = RedisServer::Start({.password = "right-one"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::string where = (*server)->host_port();

  auto wrong =
      MakeStoreClient(absl::StrCat("redis://:guessed-one@", where), &loop_);
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(wrong.status())) << wrong.status();
  EXPECT_THAT(
      wrong.status().message(),
      HasSubstr(absl::StrCat("Redis at ", where, " refused the password")));
  EXPECT_THAT(wrong.status().message(), Not(HasSubstr("guessed-one")));

  auto none = MakeStoreClient(absl::StrCat("redis://", where), &loop_);
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(none.status())) << none.status();
  EXPECT_THAT(none.status().message(), HasSubstr("wants a password"));

  auto right = MakeStoreClient((*server)->url(), &loop_);
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_TRUE(Caller(&loop_, right->get()).Put("t", "k", "v").ok());
}

TEST_F(RedisStoreTest, TheDatabaseNumberSelectsADatabase) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  std::string url = (*server)->url();
  auto db0 = MakeStoreClient(url, &loop_);
  auto db1 = MakeStoreClient(url + "/1", &loop_);
  ASSERT_TRUE(db0.ok() && db1.ok());
  ASSERT_TRUE(Caller(&loop_, db1->get()).Put("t", "k", "one").ok());
  EXPECT_EQ(Caller(&loop_, db0->get()).Get("t", "k").value(), std::nullopt);
  EXPECT_EQ(Caller(&loop_, db1->get()).Get("t", "k").value(), "one");

  auto too_far = MakeStoreClient(url + "/999", &loop_);
  ASSERT_FALSE(too_far.ok());
  EXPECT_THAT(too_far.status().message(), HasSubstr("refused database 999"));
}

TEST_F(RedisStoreTest, AnErrorReplyFailsThatCallAlone) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  // Something else wrote a plain string where a table's hash belongs.
  ASSERT_EQ((*server)->Command({"SET", "loom:jobs", "x"}).value(), "+OK");
  auto store = MakeStoreClient((*server)->url(), &loop_);
  ASSERT_TRUE(store.ok()) << store.status();
  Caller caller(&loop_, store->get());
  auto put = caller.Put("jobs", "k", "v");
  ASSERT_FALSE(put.ok());
  EXPECT_THAT(put.status().message(), HasSubstr("WRONGTYPE"));
  EXPECT_EQ(caller.Put("actors", "k", "v").value(), true);
}

// --- Redis: a server that fails
// -------------------------------------------------

// The head writes a stream; the server is killed (SIGKILL) and restarted on
// its port with its append-only file. The client reconnects, and every write
// lands, in order.
TEST_F(RedisStoreTest, AKilledAndRestartedServerLosesNoWrite) {
  auto server = RedisServer::Start({.persistent = true});
  ASSERT_TRUE(server.ok()) << server.status();
  RedisServer& redis = **server;
  auto made = MakeStoreClient(redis.url(), &loop_);
  ASSERT_TRUE(made.ok()) << made.status();
  StoreClient* store = made->get();

  constexpr int kPuts = 3000;
  constexpr int kWindow = 64;  // calls in flight at most
  absl::Mutex mu;
  int answered = 0;   // callbacks run
  int completed = 0;  // i whose two puts are answered
  int issued = 0;
  std::vector<std::string> errors;
  bool in_order = true;
  std::thread feeder([&] {
    for (int i = 0; i < kPuts; ++i) {
      auto room = [&] { return completed > i - kWindow; };
      mu.LockWhen(absl::Condition(&room));
      issued = i + 1;
      mu.Unlock();
      loop_.Post([&, i] {
        // Every callback comes, once, in call order: `answered` counts them.
        auto check = [&, i](int seq) {
          return [&, i, seq](absl::StatusOr<bool> r) {
            absl::MutexLock lock(&mu);
            if (!r.ok()) errors.push_back(r.status().ToString());
            if (answered != seq) in_order = false;
            ++answered;
            if (seq % 2 == 1) completed = i + 1;
          };
        };
        store->Put("t", "last", absl::StrCat(i), true, check(2 * i));
        store->Put("t", absl::StrCat("k", i), absl::StrCat(i), true,
                   check(2 * i + 1));
      });
    }
  });
  {
    absl::MutexLock lock(&mu);
    auto a_third = [&] { return completed >= kPuts / 3; };
    mu.Await(absl::Condition(&a_third));
    redis.Kill();
    // The feeder fills its window: calls wait on the server.
    auto window_full = [&] { return issued >= completed + kWindow; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&window_full), kWait));
  }
  ASSERT_TRUE(redis.Restart().ok());
  feeder.join();
  {
    absl::MutexLock lock(&mu);
    auto all_done = [&] { return completed == kPuts; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_done), kWait));
    EXPECT_THAT(errors, ElementsAre());
    EXPECT_TRUE(in_order);
    EXPECT_EQ(answered, 2 * kPuts);
  }
  Caller caller(&loop_, store);
  EXPECT_EQ(caller.Get("t", "last").value(), absl::StrCat(kPuts - 1));
  auto all = caller.GetAll("t");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), kPuts + 1);
  for (int i = 0; i < kPuts; ++i) {
    ASSERT_EQ((*all)[absl::StrCat("k", i)], absl::StrCat(i)) << i;
  }
}

// A server that is alive but silent (SIGSTOP) counts as down: the head
// gets UNAVAILABLE instead of waiting for good.
TEST_F(RedisStoreTest, AFrozenServerCountsAsDown) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisRetryPolicy retry;
  retry.io_timeout = absl::Milliseconds(200);
  retry.retry_timeout = absl::Milliseconds(500);
  auto store = MakeStoreClient((*server)->url(), &loop_, retry);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ(kill((*server)->pid(), SIGSTOP), 0);
  auto put = Caller(&loop_, store->get()).Put("t", "k", "v");
  ASSERT_EQ(kill((*server)->pid(), SIGCONT), 0);
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(absl::IsUnavailable(put.status())) << put.status();
  EXPECT_THAT(put.status().message(),
              HasSubstr(absl::StrCat("Redis at ", (*server)->host_port(),
                                     " unreachable for 500ms: no answer "
                                     "within 200ms")));
}

// A server that stops answering (SIGSTOP) with calls half sent: the client
// gives up on the silent connection, and once the server runs again every
// call lands once more in order; the old connection's unread calls, still in
// the server's buffer, must not run after newer ones.
TEST_F(RedisStoreTest, AFrozenServerThatThawsKeepsTheOrder) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisRetryPolicy retry;
  retry.io_timeout = absl::Milliseconds(200);
  auto store = MakeStoreClient((*server)->url(), &loop_, retry);
  ASSERT_TRUE(store.ok()) << store.status();

  ASSERT_EQ(kill((*server)->pid(), SIGSTOP), 0);
  constexpr int kPuts = 300;  // ~2.4 MB: more than the socket buffers hold
  const std::string pad(8 << 10, 'x');
  absl::Mutex mu;
  int answered = 0;
  bool in_order = true;
  std::vector<std::string> errors;
  loop_.Post([&] {
    for (int i = 0; i <= kPuts; ++i) {
      std::string value = i < kPuts ? absl::StrCat(i, pad) : "final";
      (*store)->Put("t", "last", value, true, [&, i](absl::StatusOr<bool> r) {
        absl::MutexLock lock(&mu);
        if (!r.ok()) errors.push_back(r.status().ToString());
        if (answered != i) in_order = false;
        ++answered;
      });
    }
  });
  // Frozen for several I/O timeouts: the client drops the connection and
  // tries new ones, which the frozen server accepts but never answers.
  absl::SleepFor(retry.io_timeout * 4);
  ASSERT_EQ(kill((*server)->pid(), SIGCONT), 0);
  {
    absl::MutexLock lock(&mu);
    auto all = [&] { return answered == kPuts + 1; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), kWait));
    EXPECT_THAT(errors, ElementsAre());
    EXPECT_TRUE(in_order);
  }
  Caller caller(&loop_, store->get());
  // Read later again: an old call that ran late would show here.
  EXPECT_EQ(caller.Get("t", "last").value(), "final");
  EXPECT_EQ((*server)->Command({"HGET", "loom:t", "last"}).value(), "$5");
}

TEST_F(RedisStoreTest, AServerThatStaysDownFailsCallsUnavailable) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisRetryPolicy retry;
  retry.retry_timeout = absl::Seconds(1);
  auto store = MakeStoreClient((*server)->url(), &loop_, retry);
  ASSERT_TRUE(store.ok()) << store.status();
  Caller caller(&loop_, store->get());
  ASSERT_TRUE(caller.Put("t", "k", "v").ok());

  (*server)->Kill();
  absl::Time start = absl::Now();
  auto put = caller.Put("t", "k", "v2");
  absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(absl::IsUnavailable(put.status())) << put.status();
  EXPECT_THAT(put.status().message(),
              HasSubstr(absl::StrCat("Redis at ", (*server)->host_port(),
                                     " unreachable for 1s")));
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LT(took, absl::Seconds(5));

  // A call after the server is back starts afresh.
  ASSERT_TRUE((*server)->Restart().ok());
  EXPECT_EQ(caller.Put("t", "k", "v3").value(), true);  // not persistent
}

TEST_F(RedisStoreTest, TheDestructorStopsWhileRetrying) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto store = MakeStoreClient((*server)->url(), &loop_);  // retries 10 s
  ASSERT_TRUE(store.ok()) << store.status();
  (*server)->Kill();
  (*store)->Put("t", "k", "v", true, [](auto) {});
  absl::Time start = absl::Now();
  store->reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

}  // namespace
}  // namespace loom::gcs

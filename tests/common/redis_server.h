// tests/common/redis_server.h
//
// RedisServer: a real redis-server of a test's own, on a free loopback port
// below the ephemeral range (so that Restart can take the same port again)
// and in a temp directory of its own. It is killed and reaped, and its
// directory removed, when the object goes away; the kernel kills it if the
// test process dies first (PR_SET_PDEATHSIG: create it on the test's main
// thread, not on a thread that ends before it should).
//
//   auto redis = RedisServer::Start({.persistent = true});
//   ASSERT_TRUE(redis.ok()) << redis.status();
//   auto store = MakeStoreClient((*redis)->url(), &loop);
//   (*redis)->Kill();                        // a crash: SIGKILL
//   ASSERT_TRUE((*redis)->Restart().ok());   // same port; same data
#ifndef LOOM_TESTS_COMMON_REDIS_SERVER_H_
#define LOOM_TESTS_COMMON_REDIS_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace loom::test {

struct RedisServerOptions {
  // An append-only file fsynced at every write, so that a server killed
  // with SIGKILL and restarted keeps every write it acknowledged. Without
  // it the server keeps nothing on disk.
  bool persistent = false;
  std::string password;  // requirepass; empty: none
};

// Not thread-safe.
class RedisServer {
 public:
  // Fails (with its log) when redis-server ($LOOM_REDIS_SERVER, else on
  // PATH) is missing or does not answer PING within 10 s.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string host_port() const;
  // redis://[:PASSWORD@]127.0.0.1:PORT
  std::string url() const;
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }  // 0 while stopped

  // Sends one command (with AUTH first when there is a password) on a
  // connection of its own; returns the first line of the reply, e.g.
  // "+OK" or "-WRONGTYPE ...". For a test to set things up behind a client.
  absl::StatusOr<std::string> Command(const std::vector<std::string>& argv);

  // SIGKILL, as a crash; returns once the process is reaped.
  void Kill();
  // SIGTERM (a clean shutdown), SIGKILL after 10 s; reaped.
  void Stop();
  // Starts it again (after Kill or Stop) on the same port and directory;
  // returns once it answers PING (its data loaded).
  absl::Status Restart();

 private:
  RedisServer(RedisServerOptions options, std::string dir, int port);
  absl::Status Launch();

  const RedisServerOptions options_;
  const std::string dir_;
  const int port_;
  pid_t pid_ = 0;
};

}  // namespace loom::test

#endif  // LOOM_TESTS_COMMON_REDIS_SERVER_H_

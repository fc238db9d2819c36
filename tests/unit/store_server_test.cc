// Unit tests for the object store's server and client over a real unix
// socket, in one process.
#include "object_store/store_server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "object_store/framing.h"
#include "object_store/store_client.h"
#include "proto/object_store.pb.h"
#include "src/common/process.h"

namespace loom {
namespace {

ObjectId NewId() { return ObjectId::ForPut(TaskId::FromRandom(), 1); }

class StoreServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ls_XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/store";
    auto server = ObjectStoreServer::Start({path_, 256 << 20});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void TearDown() override {
    server_.reset();
    rmdir(dir_.c_str());
  }
  std::unique_ptr<ObjectStoreClient> Client() {
    auto c = ObjectStoreClient::Connect(path_);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  bool WaitPinned(uint64_t n) {
    for (int i = 0; i < 200; ++i) {
      if (server_->stats().pinned == n) return true;
      usleep(10000);
    }
    return false;
  }

  std::string dir_, path_;
  std::unique_ptr<ObjectStoreServer> server_;
};

TEST_F(StoreServerTest, GetReturnsAViewIntoTheArenaWithoutCopying) {
  auto writer = Client();
  auto reader = Client();
  const uint64_t size = 64 << 20;
  ObjectId id = NewId();
  auto dst = writer->Create(id, size, 8);
  ASSERT_TRUE(dst.ok()) << dst.status();
  for (uint64_t i = 0; i < size; i += 4096)
    (*dst)[i] = static_cast<uint8_t>(i >> 12);
  std::memcpy(*dst + size, "metadata", 8);
  ASSERT_TRUE(writer->Seal(id).ok());

  int64_t before = RssAnonKb();
  auto views = reader->Get({id}, 1000);
  ASSERT_TRUE(views.ok()) << views.status();
  ASSERT_TRUE((*views)[0].has_value());
  const ObjectView& v = *(*views)[0];
  EXPECT_TRUE(reader->arena().Contains(v.data, v.data_size));
  EXPECT_EQ(v.data_size, size);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(v.metadata), 8),
            "metadata");
  uint64_t sum = 0;
  for (uint64_t i = 0; i < size; ++i) sum += v.data[i];  // touch every byte
  EXPECT_GT(sum, 0u);
  int64_t grown_kb = RssAnonKb() - before;
  EXPECT_LT(grown_kb, static_cast<int64_t>(size / 1024 / 4))
      << "anonymous memory grew by " << grown_kb
      << " KiB reading a shared object";
  EXPECT_EQ(server_->stats().pinned, 1u);
  ASSERT_TRUE(reader->Release(id).ok());
  EXPECT_TRUE(WaitPinned(0));
  ASSERT_TRUE(writer->Delete(id).ok());
  auto usage = reader->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->used, 0u);
}

TEST_F(StoreServerTest, GetWaitsForTheSealAndTimesOut) {
  auto writer = Client();
  auto reader = Client();
  ObjectId id = NewId();
  auto missing = reader->Get({NewId()}, 50);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE((*missing)[0].has_value());
  std::thread t([&] {
    usleep(100000);
    ASSERT_TRUE(writer->Create(id, 10, 0).ok());
    ASSERT_TRUE(writer->Seal(id).ok());
  });
  auto got = reader->Get({id}, 5000);
  t.join();
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE((*got)[0].has_value());
}

TEST_F(StoreServerTest, AClientThatGoesAwayReleasesItsPins) {
  auto writer = Client();
  ObjectId id = NewId();
  ASSERT_TRUE(writer->Create(id, 1000, 0).ok());
  ASSERT_TRUE(writer->Seal(id).ok());
  {
    auto reader = Client();
    ASSERT_TRUE(reader->Get({id}, 1000).ok());
    EXPECT_TRUE(WaitPinned(1));
  }  // closed without Release, as a killed process would
  EXPECT_TRUE(WaitPinned(0));
  EXPECT_EQ(writer->Create(NewId(), 1ull << 40, 0).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(StoreServerTest, MalformedBytesGetAnErrorAndTheStoreKeepsServing) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  char buf[4096];
  int arena_fd = -1;
  ASSERT_GT(RecvWithFd(fd, buf, sizeof(buf), &arena_fd), 0);  // hello
  close(arena_fd);
  // One reply frame (a 4-byte little-endian length, then the message).
  auto read_reply = [&](rpc::StoreReply* reply) {
    ssize_t n = read(fd, buf, sizeof(buf));
    return n > 4 && reply->ParseFromArray(buf + 4, static_cast<int>(n - 4));
  };
  // A frame of random bytes: an error reply, connection still usable.
  std::string junk = std::string("\x0a\x00\x00\x00", 4) +
                     "\xff\xfe\xfd\x01\x02\x03\x04\x05\x06\x07";
  ASSERT_EQ(write(fd, junk.data(), junk.size()),
            static_cast<ssize_t>(junk.size()));
  rpc::StoreReply reply;
  ASSERT_TRUE(read_reply(&reply));
  EXPECT_EQ(reply.code(), static_cast<int>(absl::StatusCode::kInvalidArgument))
      << reply.message();
  rpc::StoreRequest stats;
  stats.set_seq(7);
  stats.mutable_stats();
  std::string frame = stats.SerializeAsString();
  uint32_t len = static_cast<uint32_t>(frame.size());
  frame.insert(0, reinterpret_cast<const char*>(&len), 4);
  ASSERT_EQ(write(fd, frame.data(), frame.size()),
            static_cast<ssize_t>(frame.size()));
  ASSERT_TRUE(read_reply(&reply));
  EXPECT_EQ(reply.code(), 0) << reply.message();
  EXPECT_EQ(reply.seq(), 7u);
  EXPECT_EQ(reply.capacity(), uint64_t{256} << 20);
  // A frame claiming 2 GiB: an error reply, then the store hangs up.
  std::string huge("\x00\x00\x00\x80", 4);
  ASSERT_EQ(write(fd, huge.data(), 4), 4);
  ASSERT_TRUE(read_reply(&reply));
  EXPECT_EQ(reply.code(), static_cast<int>(absl::StatusCode::kInvalidArgument))
      << reply.message();
  EXPECT_NE(reply.message().find("exceeds"), std::string::npos);
  EXPECT_EQ(read(fd, buf, sizeof(buf)), 0);
  close(fd);
  // Bad ids through the real client are refused too.
  auto client = Client();
  EXPECT_EQ(client->Seal(NewId()).code(), absl::StatusCode::kNotFound);
  auto ok = client->Create(NewId(), 100, 0);
  EXPECT_TRUE(ok.ok()) << ok.status();
}

}  // namespace
}  // namespace loom

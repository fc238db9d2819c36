// Unit tests for object_store/: the allocator and the arena.
#include <sys/stat.h>

#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "object_store/allocator.h"
#include "object_store/arena.h"
#include "object_store/layout.h"
#include "object_store/local_store.h"

namespace loom {
namespace {

TEST(Layout, RoundTripsWithSixtyFourByteAlignedBuffers) {
  std::string a(100, 'a'), b(3, 'b');
  std::string bytes = EncodeLayout(Format::kPickle5, "pickle", {a, "", b});
  EXPECT_EQ(bytes.size(), LayoutSize(6, {100, 0, 3}));
  auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  auto v = ParseLayout(base, bytes.size());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->format, Format::kPickle5);
  EXPECT_EQ(v->metadata, "pickle");
  ASSERT_EQ(v->buffers.size(), 3u);
  EXPECT_EQ(v->buffers[0], a);
  EXPECT_EQ(v->buffers[1], "");
  EXPECT_EQ(v->buffers[2], b);
  for (auto buf : v->buffers) {
    EXPECT_EQ((reinterpret_cast<const uint8_t*>(buf.data()) - base) % 64, 0);
  }
  EXPECT_EQ(
      ParseSingleBuffer(base, bytes.size(), Format::kMsgpack).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(Layout, RejectsBytesThatAreNotAnObject) {
  std::string good = EncodeLayout(Format::kMsgpack, "", {"xyz"});
  auto parse = [](const std::string& s) {
    return ParseLayout(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  EXPECT_TRUE(parse(good).ok());
  auto code = [&](const std::string& s) { return parse(s).status().code(); };
  const absl::StatusCode kCorrupt = absl::StatusCode::kDataLoss;
  EXPECT_EQ(code(""), kCorrupt);
  EXPECT_EQ(code(std::string(good.size(), 'x')), kCorrupt);    // no tag
  EXPECT_EQ(code(good.substr(0, good.size() - 1)), kCorrupt);  // truncated
  std::string huge_count = good;
  huge_count[12] = huge_count[13] = huge_count[14] = '\xff';
  EXPECT_EQ(code(huge_count), kCorrupt);
  std::string bad_offset = good;
  bad_offset[16] = 1;  // buffer 0 no longer 64-byte aligned
  EXPECT_EQ(code(bad_offset), kCorrupt);
  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {  // random bytes never crash the parser
    std::string noise = good;
    for (int k = 0; k < 4; ++k) noise[rng() % noise.size()] = rng();
    (void)parse(noise);
  }
}

TEST(Allocator, AlignsAndReusesFreedBlocks) {
  Allocator alloc(1 << 20);
  auto a = alloc.Allocate(100);
  auto b = alloc.Allocate(1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a % kAlignment, 0u);
  EXPECT_EQ(*b % kAlignment, 0u);
  EXPECT_EQ(alloc.SizeOf(*a), 128u);
  EXPECT_TRUE(alloc.Free(*a));
  EXPECT_FALSE(alloc.Free(*a));     // not live any more
  EXPECT_FALSE(alloc.Free(12345));  // never allocated
  auto c = alloc.Allocate(128);
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, *a);  // the freed block, warm, comes back first
}

TEST(Allocator, CoalescesNeighboursIntoOneRun) {
  Allocator alloc(64 * 10);
  std::vector<uint64_t> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(*alloc.Allocate(64));
  EXPECT_FALSE(alloc.Allocate(64).has_value());
  for (int i : {1, 3, 2, 0, 5, 4, 9, 7, 8, 6})
    ASSERT_TRUE(alloc.Free(blocks[i]));
  auto s = alloc.stats();
  EXPECT_EQ(s.used, 0u);
  EXPECT_EQ(s.largest_free, 640u);
  EXPECT_EQ(s.fragmentation(), 0.0);
  EXPECT_TRUE(alloc.Allocate(640).has_value());
}

TEST(Allocator, MixedWorkloadKeepsAccountsExact) {
  Allocator alloc(64 << 20);
  std::mt19937 rng(7);
  std::vector<uint64_t> live;
  for (int i = 0; i < 20000; ++i) {
    if (!live.empty() && (rng() % 2 == 0 || live.size() > 500)) {
      size_t k = rng() % live.size();
      ASSERT_TRUE(alloc.Free(live[k]));
      live[k] = live.back();
      live.pop_back();
    } else if (auto off = alloc.Allocate(1 + rng() % (256 << 10))) {
      live.push_back(*off);
    }
  }
  uint64_t sum = 0;
  for (uint64_t off : live) sum += alloc.SizeOf(off);
  auto s = alloc.stats();
  EXPECT_EQ(s.used, sum);
  EXPECT_EQ(s.used + s.free, s.capacity);
  for (uint64_t off : live) alloc.Free(off);
  EXPECT_EQ(alloc.stats().largest_free, alloc.stats().capacity);
}

TEST(Arena, TwoMappingsSeeTheSameBytes) {
  auto arena = Arena::Create(1 << 20);
  ASSERT_TRUE(arena.ok()) << arena.status();
  auto other = Arena::Map(dup((*arena)->fd()), (*arena)->size());
  ASSERT_TRUE(other.ok());
  std::memcpy((*arena)->base() + 4096, "hello", 5);
  EXPECT_EQ(std::memcmp((*other)->base() + 4096, "hello", 5), 0);
  EXPECT_TRUE((*other)->Contains((*other)->base() + 10, 10));
  EXPECT_FALSE((*other)->Contains((*other)->base() + (1 << 20) - 4, 10));
}

}  // namespace
}  // namespace loom

namespace loom {
namespace {

ObjectId NewId() { return ObjectId::ForPut(TaskId::FromRandom(), 1); }

// Create's answer when it comes at once; Unavailable while it waits.
absl::StatusOr<ObjectInfo> CreateNow(LocalStore& store, const ObjectId& id,
                                     uint64_t data_size, uint64_t metadata_size,
                                     ClientId creator, bool primary,
                                     std::string owner = "") {
  absl::StatusOr<ObjectInfo> got = absl::UnavailableError("waiting");
  store.Create(id, data_size, metadata_size, creator, primary, std::move(owner),
               [&](absl::StatusOr<ObjectInfo> info) { got = std::move(info); });
  return got;
}

TEST(LocalStore, CreateSealGetReleaseDelete) {
  LocalStore store({.capacity = 1 << 20});
  ObjectId id = NewId();
  auto info = CreateNow(store, id, 1000, 24, /*creator=*/1, /*primary=*/true);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->offset % kAlignment, 0u);
  EXPECT_EQ(CreateNow(store, id, 10, 0, 1, true).status().code(),
            absl::StatusCode::kAlreadyExists);
  std::vector<std::optional<ObjectInfo>> got;
  bool answered = false;
  store.Get({id}, 2, absl::InfiniteFuture(), [&](auto r) {
    got = r;
    answered = true;
  });
  EXPECT_FALSE(answered);                         // waits for the seal
  EXPECT_EQ(store.Seal(id, /*client=*/2).code(),  // not the creator
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(store.Seal(id, 1).ok());
  ASSERT_TRUE(answered);
  ASSERT_TRUE(got[0].has_value());
  EXPECT_EQ(got[0]->data_size, 1000u);
  EXPECT_EQ(store.stats().pinned, 1u);
  // Delete while pinned waits for the release.
  ASSERT_TRUE(store.Delete(id).ok());
  EXPECT_EQ(store.stats().objects, 1u);
  ASSERT_TRUE(store.Release(id, 2).ok());
  EXPECT_EQ(store.stats().objects, 0u);
  EXPECT_EQ(store.stats().used, 0u);
}

TEST(LocalStore, DeleteOwnedByTakesOnlyThatOwnersObjectsOfThatJob) {
  LocalStore store({.capacity = 1 << 20});
  TaskId driver = TaskId::ForDriver(JobId::FromInt(3));
  TaskId other_job = TaskId::ForDriver(JobId::FromInt(4));
  ObjectId put = ObjectId::ForPut(driver, 1);
  ObjectId ret = ObjectId::ForReturn(TaskId::ForChild(driver, 1), 1);
  ObjectId pinned = ObjectId::ForPut(driver, 2);
  ObjectId unsealed = ObjectId::ForPut(driver, 3);
  ObjectId someone_else = ObjectId::ForPut(driver, 4);
  ObjectId reused_address = ObjectId::ForPut(other_job, 1);
  const std::string owner = "10.0.0.3:4000";
  for (const auto& id : {put, ret, pinned, unsealed, reused_address})
    ASSERT_TRUE(CreateNow(store, id, 100, 0, 1, true, owner).ok());
  ASSERT_TRUE(
      CreateNow(store, someone_else, 100, 0, 1, true, "10.0.0.3:4001").ok());
  for (const auto& id : {put, ret, pinned, someone_else, reused_address})
    ASSERT_TRUE(store.Seal(id, 1).ok());
  store.Get({pinned}, 2, absl::InfiniteFuture(), [](auto) {});

  auto deleted = store.DeleteOwnedBy(owner, JobId::FromInt(3));
  EXPECT_THAT(deleted, testing::UnorderedElementsAre(put, ret, pinned));
  EXPECT_FALSE(store.Contains(put));
  EXPECT_FALSE(store.Contains(ret));
  // A reader's pin keeps the bytes until it is released.
  EXPECT_TRUE(store.Contains(pinned));
  ASSERT_TRUE(store.Release(pinned, 2).ok());
  EXPECT_FALSE(store.Contains(pinned));
  EXPECT_TRUE(store.Contains(someone_else));
  EXPECT_TRUE(store.Contains(reused_address));
  EXPECT_EQ(store.stats().objects, 3u);  // with the unsealed one
  EXPECT_TRUE(store.DeleteOwnedBy("", JobId::FromInt(4)).empty());
}

TEST(LocalStore, AJobsPrimaryCopiesStopAtItsLimit) {
  LocalStore store({.capacity = 1 << 20});
  TaskId greedy = TaskId::ForDriver(JobId::FromInt(5));
  TaskId other = TaskId::ForDriver(JobId::FromInt(6));
  store.SetJobLimits({{JobId::FromInt(5), 1000}});
  ASSERT_TRUE(
      CreateNow(store, ObjectId::ForPut(greedy, 1), 600, 0, 1, true).ok());
  auto refused = CreateNow(store, ObjectId::ForPut(greedy, 2), 500, 0, 1, true);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()),
              testing::HasSubstr("--max-object-store-bytes"));
  // Secondary copies (pulled, evictable) and other jobs do not count.
  EXPECT_TRUE(
      CreateNow(store, ObjectId::ForPut(greedy, 3), 500, 0, 1, false).ok());
  EXPECT_TRUE(
      CreateNow(store, ObjectId::ForPut(other, 1), 5000, 0, 1, true).ok());
  EXPECT_EQ(store.job_bytes().at(JobId::FromInt(5)), 600u);
  // Freeing gives the room back.
  ASSERT_TRUE(store.Abort(ObjectId::ForPut(greedy, 1), 1).ok());
  EXPECT_FALSE(store.job_bytes().contains(JobId::FromInt(5)));
  EXPECT_TRUE(
      CreateNow(store, ObjectId::ForPut(greedy, 2), 900, 0, 1, true).ok());
}

TEST(LocalStore, GetTimesOutWithWhatIsSealed) {
  LocalStore store({.capacity = 1 << 20});
  ObjectId a = NewId(), b = NewId();
  ASSERT_TRUE(CreateNow(store, a, 10, 0, 1, true).ok());
  ASSERT_TRUE(store.Seal(a, 1).ok());
  std::vector<std::optional<ObjectInfo>> got;
  absl::Time deadline = absl::UnixEpoch() + absl::Seconds(5);
  store.Get({a, b}, 2, deadline, [&](auto r) { got = r; });
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(*store.NextDeadline(), deadline);
  store.ExpireWaiters(deadline);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].has_value());
  EXPECT_FALSE(got[1].has_value());
}

TEST(LocalStore, EvictsUnpinnedSecondaryCopiesLeastRecentlyUsedFirst) {
  std::vector<ObjectId> evicted;  // the raylet reports these as removed
  LocalStore store({.capacity = 64 * 1024, .on_evict = [&](const ObjectId& id) {
                      evicted.push_back(id);
                    }});
  ObjectId old_copy = NewId(), new_copy = NewId(), primary = NewId();
  for (const ObjectId& id : {old_copy, new_copy}) {
    ASSERT_TRUE(CreateNow(store, id, 20 * 1024, 0, 1, /*primary=*/false).ok());
    ASSERT_TRUE(store.Seal(id, 1).ok());
  }
  ASSERT_TRUE(CreateNow(store, primary, 20 * 1024, 0, 1, true).ok());
  ASSERT_TRUE(store.Seal(primary, 1).ok());
  // Room for one more 20 KiB object only after evicting the oldest copy.
  ASSERT_TRUE(CreateNow(store, NewId(), 20 * 1024, 0, 1, true).ok());
  EXPECT_FALSE(store.Contains(old_copy));
  EXPECT_EQ(evicted, std::vector<ObjectId>{old_copy});
  EXPECT_TRUE(store.Contains(new_copy));
  EXPECT_TRUE(store.Contains(primary));
  // Primaries are never evicted: a second one fails clearly.
  auto full = CreateNow(store, NewId(), 40 * 1024, 0, 1, true);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("40960 bytes requested"),
            std::string::npos);
}

TEST(LocalStore, ADisconnectedClientReleasesPinsAndAbandonsCreations) {
  LocalStore store({.capacity = 1 << 20});
  ObjectId sealed = NewId(), unsealed = NewId();
  ASSERT_TRUE(CreateNow(store, sealed, 100, 0, 1, true).ok());
  ASSERT_TRUE(store.Seal(sealed, 1).ok());
  ASSERT_TRUE(CreateNow(store, unsealed, 100, 0, 7, true).ok());
  store.Get({sealed}, 7, absl::InfiniteFuture(), [](auto) {});
  store.Get({sealed}, 8, absl::InfiniteFuture(), [](auto) {});
  EXPECT_EQ(store.stats().pinned, 1u);  // objects pinned, not pins
  store.Disconnect(7);
  EXPECT_EQ(store.stats().pinned, 1u);  // 8 still holds it
  ASSERT_TRUE(store.Release(sealed, 8).ok());
  EXPECT_EQ(store.stats().pinned, 0u);
  EXPECT_EQ(store.stats().objects, 1u);
  EXPECT_EQ(store.Release(sealed, 7).code(),  // its pin went with it
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace loom

namespace loom {
namespace {

TEST(LocalStore, FreedPagesPastTheWarmReserveGoBackToTheKernel) {
  constexpr uint64_t kMiB = 1 << 20;
  auto arena = Arena::Create(64 * kMiB);
  ASSERT_TRUE(arena.ok());
  LocalStore store({.capacity = 64 * kMiB,
                    .base = (*arena)->base(),
                    .warm_reserve = 8 * kMiB});
  auto resident = [&] {  // the memfd's pages in memory
    struct stat st {};
    fstat((*arena)->fd(), &st);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  };
  std::vector<ObjectId> ids;
  for (int i = 0; i < 6; ++i) {
    ObjectId id = NewId();
    auto info = CreateNow(store, id, 8 * kMiB, 0, 1, /*primary=*/true);
    ASSERT_TRUE(info.ok()) << info.status();
    std::memset((*arena)->base() + info->offset, 'x', 8 * kMiB);
    ASSERT_TRUE(store.Seal(id, 1).ok());
    ids.push_back(id);
  }
  EXPECT_GE(resident(), 48 * kMiB);
  for (const ObjectId& id : ids) ASSERT_TRUE(store.Delete(id).ok());
  EXPECT_EQ(store.stats().used, 0u);
  // 48 MiB freed: what is past the 8 MiB reserve went back.
  EXPECT_LE(resident(), 8 * kMiB + 64 * 1024);
  EXPECT_GE(resident(), 8 * kMiB - 64 * 1024) << "the reserve stays warm";
  // And the store still works where pages were given back.
  ObjectId again = NewId();
  auto info = CreateNow(store, again, 40 * kMiB, 0, 1, true);
  ASSERT_TRUE(info.ok()) << info.status();
  std::memset((*arena)->base() + info->offset, 'y', 40 * kMiB);
  EXPECT_EQ((*arena)->base()[info->offset + 40 * kMiB - 1], 'y');
}

TEST(LocalStoreSpilling, PrimariesSpillToFilesAndComeBackOnGet) {
  char tmpl[] = "/tmp/lsp_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto arena = Arena::Create(1 << 20);
  ASSERT_TRUE(arena.ok());
  LocalStore store(
      {.capacity = 1 << 20, .base = (*arena)->base(), .spill_dir = dir});
  std::vector<ObjectId> ids;
  for (int i = 0; i < 6; ++i) {  // 6 x 300 KiB into 1 MiB
    ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 1);
    auto info = CreateNow(store, id, 300 << 10, 0, 1, /*primary=*/true);
    ASSERT_TRUE(info.ok()) << i << ": " << info.status();
    std::memset((*arena)->base() + info->offset, 'a' + i, 300 << 10);
    ASSERT_TRUE(store.Seal(id, 1).ok());
    ids.push_back(id);
  }
  auto stats = store.stats();
  EXPECT_GE(stats.spilled_objects, 3u);
  EXPECT_LE(stats.used, (1u << 20) * 8 / 10 + (300u << 10));
  // Every object reads back with its own bytes.
  for (int i = 0; i < 6; ++i) {
    std::optional<ObjectInfo> got;
    store.Get({ids[i]}, 2, absl::InfiniteFuture(), [&](auto r) { got = r[0]; });
    ASSERT_TRUE(got.has_value()) << i;
    const uint8_t* p = (*arena)->base() + got->offset;
    EXPECT_EQ(p[0], 'a' + i);
    EXPECT_EQ(p[(300 << 10) - 1], 'a' + i);
    ASSERT_TRUE(store.Release(ids[i], 2).ok());
  }
  for (const auto& id : ids) ASSERT_TRUE(store.Delete(id).ok());
  EXPECT_EQ(store.stats().spilled_objects, 0u);
  EXPECT_EQ(rmdir(dir.c_str()), 0) << "spill files left behind";
}

// With run_io, spills past the watermark and restores for a get happen in
// the background: the store answers other gets meanwhile, a get of a
// spilled object waits for its restore (past its deadline too), and a
// delete during the IO takes effect when the IO is done.
// A 1 MiB store spilling to `spill_dir`, its file IO queued and run by
// hand (RunIo), as the store server runs it off its thread and brings the
// results back.
struct ManualIo {
  ManualIo(const std::string& spill_dir, double watermark)
      : arena(Arena::Create(1 << 20).value()),
        store({.capacity = 1 << 20,
               .base = arena->base(),
               .spill_dir = spill_dir,
               .spill_watermark = watermark,
               .run_io = [this](auto job) { io.push_back(std::move(job)); }}) {}
  void RunIo() {
    auto jobs = std::move(io);
    io.clear();
    for (auto& job : jobs) store.Complete(job());
  }
  std::unique_ptr<Arena> arena;
  std::vector<std::function<std::function<void()>()>> io;
  LocalStore store;
};

TEST(LocalStoreSpilling, FileIoRunsInTheBackground) {
  char tmpl[] = "/tmp/lsp_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ManualIo m(dir, 0.8);
  auto& io = m.io;
  LocalStore& store = m.store;
  auto run_io = [&] { m.RunIo(); };
  constexpr uint64_t kSize = 300 << 10;
  std::vector<ObjectId> ids;
  for (int i = 0; i < 3; ++i) {  // 900 KiB of 1 MiB: past the watermark
    ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 1);
    auto info = CreateNow(store, id, kSize, 0, 1, /*primary=*/true);
    ASSERT_TRUE(info.ok()) << info.status();
    std::memset(m.arena->base() + info->offset, 'a' + i, kSize);
    ASSERT_TRUE(store.Seal(id, 1).ok());
    ids.push_back(id);
  }
  ASSERT_EQ(io.size(), 1u);  // the oldest is being written out
  EXPECT_EQ(store.stats().spilled_objects, 0u);
  run_io();
  EXPECT_EQ(store.stats().spilled_objects, 1u);
  EXPECT_EQ(store.stats().used, 2 * kSize);
  // A get of the spilled one waits for its restore, past its deadline too;
  // a get of another is answered meanwhile.
  std::optional<std::vector<std::optional<ObjectInfo>>> spilled, other;
  store.Get({ids[0]}, 2, absl::Now(), [&](auto r) { spilled = r; });
  store.Get({ids[1]}, 3, absl::InfiniteFuture(), [&](auto r) { other = r; });
  ASSERT_TRUE(other.has_value() && (*other)[0].has_value());
  store.ExpireWaiters(absl::Now() + absl::Seconds(1));
  EXPECT_FALSE(spilled.has_value());
  EXPECT_FALSE(store.NextDeadline().has_value());  // nothing to wake for
  ASSERT_EQ(io.size(), 1u);
  run_io();
  ASSERT_TRUE(spilled.has_value() && (*spilled)[0].has_value());
  const uint8_t* p = m.arena->base() + (*spilled)[0]->offset;
  EXPECT_EQ(p[0], 'a');
  EXPECT_EQ(p[kSize - 1], 'a');
  EXPECT_EQ(store.stats().spilled_objects, 0u);
  // Back in: past the watermark again, so the least recently used unpinned
  // one (ids[2]) goes out; deleted meanwhile, it is gone once written.
  ASSERT_TRUE(store.Release(ids[0], 2).ok());
  ASSERT_TRUE(store.Release(ids[1], 3).ok());
  ObjectId last = ObjectId::ForPut(TaskId::FromRandom(), 1);
  ASSERT_TRUE(CreateNow(store, last, 1, 0, 1, true).ok());
  ASSERT_TRUE(store.Seal(last, 1).ok());
  ASSERT_EQ(io.size(), 1u);
  ASSERT_TRUE(store.Delete(ids[2]).ok());
  EXPECT_TRUE(store.Contains(ids[2]));  // its block is being written out
  run_io();
  EXPECT_FALSE(store.Contains(ids[2]));
  EXPECT_EQ(store.stats().spilled_objects, 0u);
  for (const ObjectId& id : {ids[0], ids[1], last}) {
    ASSERT_TRUE(store.Delete(id).ok());
  }
  run_io();
  EXPECT_EQ(store.stats().used, 0u);
  EXPECT_EQ(rmdir(dir.c_str()), 0) << "spill files left behind";
}

// With run_io, a create that needs room from spilling waits for the spill
// (the store serves other clients meanwhile), creates behind it wait their
// turn, a waiting create of a client that goes away is dropped, and a
// spill that fails fails the create with why.
TEST(LocalStoreSpilling, ACreateWaitsForItsSpills) {
  char tmpl[] = "/tmp/lsp_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  for (const std::string& spill_dir : {dir, dir + "/gone"}) {
    ManualIo m(spill_dir, 1.0);  // only creates spill
    auto& io = m.io;
    LocalStore& store = m.store;
    auto run_io = [&] { m.RunIo(); };
    constexpr uint64_t kSize = 300 << 10;
    std::vector<ObjectId> ids;
    for (int i = 0; i < 3; ++i) {
      ids.push_back(NewId());
      ASSERT_TRUE(CreateNow(store, ids.back(), kSize, 0, 1, true).ok());
      ASSERT_TRUE(store.Seal(ids.back(), 1).ok());
    }
    EXPECT_TRUE(io.empty());
    std::vector<absl::StatusOr<ObjectInfo>> answers;
    auto answer = [&](absl::StatusOr<ObjectInfo> info) {
      answers.push_back(std::move(info));
    };
    store.Create(NewId(), kSize, 0, 1, true, "", answer);  // needs a spill
    store.Create(NewId(), 10, 0, 2, true, "", answer);     // would fit
    store.Create(NewId(), 10, 0, 3, true, "", answer);     // goes away
    EXPECT_TRUE(answers.empty());
    ASSERT_EQ(io.size(), 1u);  // one object out makes room
    std::optional<ObjectInfo> other;
    store.Get({ids[2]}, 4, absl::InfiniteFuture(),
              [&](auto r) { other = r[0]; });
    EXPECT_TRUE(other.has_value());
    store.Disconnect(3);
    run_io();
    if (spill_dir == dir) {
      ASSERT_EQ(answers.size(), 2u);
      EXPECT_TRUE(answers[0].ok()) << answers[0].status();
      EXPECT_TRUE(answers[1].ok()) << answers[1].status();
      EXPECT_EQ(store.stats().spilled_objects, 1u);
    } else {
      // The first fails naming the spill directory; the next, small, fits.
      ASSERT_EQ(answers.size(), 2u);
      EXPECT_EQ(answers[0].status().code(),
                absl::StatusCode::kResourceExhausted);
      EXPECT_NE(answers[0].status().message().find("cannot spill"),
                std::string::npos)
          << answers[0].status();
      EXPECT_TRUE(answers[1].ok()) << answers[1].status();
      EXPECT_EQ(store.stats().spilled_objects, 0u);
    }
    EXPECT_TRUE(io.empty());
    for (const ObjectId& id : ids) ASSERT_TRUE(store.Delete(id).ok());
  }
  EXPECT_EQ(rmdir(dir.c_str()), 0) << "spill files left behind";
}

// With run_io, a get whose restore needs room waits while spills make it
// off the loop (nothing is written inline), then the object is read back;
// one deleted while it waits is freed when the spill is done.
TEST(LocalStoreSpilling, ARestoreWaitsForItsSpills) {
  char tmpl[] = "/tmp/lsp_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ManualIo m(dir, 1.0);  // only creates and restores spill
  auto& io = m.io;
  LocalStore& store = m.store;
  auto run_io = [&] { m.RunIo(); };
  constexpr uint64_t kSize = 300 << 10;
  std::vector<ObjectId> ids;
  for (int i = 0; i < 4; ++i) {  // the fourth spills the first
    ids.push_back(NewId());
    absl::StatusOr<ObjectInfo> info = absl::UnavailableError("waiting");
    store.Create(ids.back(), kSize, 0, 1, true, "",
                 [&](absl::StatusOr<ObjectInfo> r) { info = std::move(r); });
    run_io();
    ASSERT_TRUE(info.ok()) << info.status();
    std::memset(m.arena->base() + info->offset, 'a' + i, kSize);
    ASSERT_TRUE(store.Seal(ids.back(), 1).ok());
  }
  ASSERT_EQ(store.stats().spilled_objects, 1u);
  std::optional<std::vector<std::optional<ObjectInfo>>> first;
  store.Get({ids[0]}, 2, absl::InfiniteFuture(), [&](auto r) { first = r; });
  ASSERT_EQ(io.size(), 1u);  // ids[1] is being written out for it
  EXPECT_EQ(store.stats().spilled_objects, 1u);
  EXPECT_FALSE(first.has_value());
  run_io();  // the spill is done: the read starts
  EXPECT_EQ(store.stats().spilled_objects, 2u);
  ASSERT_EQ(io.size(), 1u);
  EXPECT_FALSE(first.has_value());
  run_io();
  ASSERT_TRUE(first.has_value() && (*first)[0].has_value());
  const uint8_t* p = m.arena->base() + (*first)[0]->offset;
  EXPECT_EQ(p[0], 'a');
  EXPECT_EQ(p[kSize - 1], 'a');
  EXPECT_EQ(store.stats().spilled_objects, 1u);

  std::optional<std::vector<std::optional<ObjectInfo>>> second;
  store.Get({ids[1]}, 3, absl::Now() + absl::Seconds(30),
            [&](auto r) { second = r; });
  ASSERT_EQ(io.size(), 1u);  // ids[2] goes out for it (ids[0] is pinned)
  ASSERT_TRUE(store.Delete(ids[1]).ok());
  run_io();
  EXPECT_TRUE(io.empty());  // no read of a deleted object
  EXPECT_FALSE(store.Contains(ids[1]));
  store.ExpireWaiters(absl::Now() + absl::Minutes(1));  // as for any get
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE((*second)[0].has_value());
  EXPECT_FALSE(store.Contains(ids[1]));

  ASSERT_TRUE(store.Release(ids[0], 2).ok());
  for (const ObjectId& id : {ids[0], ids[2], ids[3]}) {
    ASSERT_TRUE(store.Delete(id).ok());
  }
  run_io();
  EXPECT_EQ(store.stats().used, 0u);
  EXPECT_EQ(rmdir(dir.c_str()), 0) << "spill files left behind";
}

}  // namespace
}  // namespace loom

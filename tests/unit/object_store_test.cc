// Unit tests for object_store/: the allocator and the arena.
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "object_store/allocator.h"
#include "object_store/arena.h"

namespace loom {
namespace {

TEST(Allocator, AlignsAndReusesFreedBlocks) {
  Allocator alloc(1 << 20);
  auto a = alloc.Allocate(100);
  auto b = alloc.Allocate(1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a % kAlignment, 0u);
  EXPECT_EQ(*b % kAlignment, 0u);
  EXPECT_EQ(alloc.SizeOf(*a), 128u);
  EXPECT_TRUE(alloc.Free(*a));
  EXPECT_FALSE(alloc.Free(*a));      // not live any more
  EXPECT_FALSE(alloc.Free(12345));   // never allocated
  auto c = alloc.Allocate(128);
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, *a);  // the freed block, warm, comes back first
}

TEST(Allocator, CoalescesNeighboursIntoOneRun) {
  Allocator alloc(64 * 10);
  std::vector<uint64_t> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(*alloc.Allocate(64));
  EXPECT_FALSE(alloc.Allocate(64).has_value());
  for (int i : {1, 3, 2, 0, 5, 4, 9, 7, 8, 6}) ASSERT_TRUE(alloc.Free(blocks[i]));
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

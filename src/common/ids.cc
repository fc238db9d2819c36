#include "src/common/ids.h"

#include <sys/random.h>

#include "absl/random/random.h"

namespace loom {
namespace {

void PutBigEndian32(uint8_t* out, uint32_t v) {
  out[0] = v >> 24;
  out[1] = v >> 16;
  out[2] = v >> 8;
  out[3] = v;
}

uint32_t GetBigEndian32(const uint8_t* in) {
  return (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) |
         (uint32_t{in[2]} << 8) | uint32_t{in[3]};
}

// FNV-1a, 64 bits: stable across processes and builds.
uint64_t Fnv1a(const uint8_t* data, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string HexEncode(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

void FillRandom(uint8_t* out, size_t n) {
  thread_local absl::BitGen gen;
  for (size_t i = 0; i < n; ++i) out[i] = absl::Uniform<uint8_t>(gen);
}

std::string NewControlKey() {
  // From the kernel's CSPRNG: the key guards what a worker runs.
  std::string key(kControlKeySize, '\0');
  auto* out = reinterpret_cast<uint8_t*>(key.data());
  size_t got = 0;
  while (got < key.size()) {
    ssize_t n = getrandom(out + got, key.size() - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < key.size()) FillRandom(out + got, key.size() - got);
  return key;
}

JobId JobId::FromInt(uint32_t value) {
  JobId id;
  PutBigEndian32(id.bytes_.data(), value);
  return id;
}

uint32_t JobId::ToInt() const { return GetBigEndian32(bytes_.data()); }

TaskId TaskId::ForDriver(const JobId& job) {
  TaskId id;
  std::memcpy(id.bytes_.data(), job.data(), JobId::kSize);
  return id;  // digest all zero: the root of the job's task tree
}

TaskId TaskId::ForChild(const TaskId& parent, uint32_t index) {
  TaskId id;
  std::memcpy(id.bytes_.data(), parent.data(), JobId::kSize);
  uint8_t idx[4];
  PutBigEndian32(idx, index);
  uint64_t h1 = Fnv1a(parent.data(), kSize, 14695981039346656037ull);
  h1 = Fnv1a(idx, 4, h1);
  uint64_t h2 = Fnv1a(idx, 4, h1 ^ 0x9e3779b97f4a7c15ull);
  std::memcpy(id.bytes_.data() + 4, &h1, 8);
  std::memcpy(id.bytes_.data() + 12, &h2, 4);
  return id;
}

JobId TaskId::Job() const {
  return *JobId::FromBinary(std::string_view(
      reinterpret_cast<const char*>(bytes_.data()), JobId::kSize));
}

ObjectId ObjectId::ForReturn(const TaskId& task, uint32_t index) {
  ObjectId id;
  std::memcpy(id.bytes_.data(), task.data(), TaskId::kSize);
  PutBigEndian32(id.bytes_.data() + TaskId::kSize, index & 0x7fffffffu);
  return id;
}

ObjectId ObjectId::ForPut(const TaskId& task, uint32_t index) {
  ObjectId id = ForReturn(task, index);
  id.bytes_[TaskId::kSize] |= 0x80;
  return id;
}

TaskId ObjectId::Task() const {
  return *TaskId::FromBinary(std::string_view(
      reinterpret_cast<const char*>(bytes_.data()), TaskId::kSize));
}

uint32_t ObjectId::Index() const {
  return GetBigEndian32(bytes_.data() + TaskId::kSize) & 0x7fffffffu;
}

bool ObjectId::IsPut() const { return bytes_[TaskId::kSize] & 0x80; }

}  // namespace loom

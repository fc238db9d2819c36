// src/common/ids.h
//
// Fixed-size binary IDs. A TaskId derives from its job and parent task and
// an ObjectId from the task that returns it plus an index, so lineage needs
// no lookup.
//
//   JobId job = JobId::FromInt(7);
//   TaskId root = TaskId::ForDriver(job);
//   TaskId child = TaskId::ForChild(root, 1);
//   ObjectId ret = ObjectId::ForReturn(child, 1);
//   auto parsed = ObjectId::FromBinary(ret.Binary());  // StatusOr
#ifndef LOOM_COMMON_IDS_H_
#define LOOM_COMMON_IDS_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace loom {

std::string HexEncode(std::string_view bytes);
void FillRandom(uint8_t* out, size_t n);

template <size_t N, typename Tag>
class FixedId {
 public:
  static constexpr size_t kSize = N;

  FixedId() { bytes_.fill(0); }

  static FixedId FromRandom() {
    FixedId id;
    FillRandom(id.bytes_.data(), N);
    return id;
  }
  // Fails unless `binary` is exactly kSize bytes.
  static absl::StatusOr<FixedId> FromBinary(std::string_view binary) {
    if (binary.size() != N) {
      return absl::InvalidArgumentError(absl::StrCat(
          Tag::kName, " must be ", N, " bytes, got ", binary.size()));
    }
    FixedId id;
    std::memcpy(id.bytes_.data(), binary.data(), N);
    return id;
  }

  std::string Binary() const {
    return std::string(reinterpret_cast<const char*>(bytes_.data()), N);
  }
  std::string Hex() const { return HexEncode(Binary()); }
  bool IsNil() const {
    for (uint8_t b : bytes_)
      if (b != 0) return false;
    return true;
  }
  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* mutable_data() { return bytes_.data(); }

  friend bool operator==(const FixedId& a, const FixedId& b) {
    return a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const FixedId& a, const FixedId& b) {
    return !(a == b);
  }
  friend bool operator<(const FixedId& a, const FixedId& b) {
    return a.bytes_ < b.bytes_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const FixedId& id) {
    return H::combine_contiguous(std::move(h), id.bytes_.data(), N);
  }

 protected:
  std::array<uint8_t, N> bytes_;
};

struct JobTag {
  static constexpr const char* kName = "JobId";
};
struct NodeTag {
  static constexpr const char* kName = "NodeId";
};
struct WorkerTag {
  static constexpr const char* kName = "WorkerId";
};
struct LeaseTag {
  static constexpr const char* kName = "LeaseId";
};
struct TaskTag {
  static constexpr const char* kName = "TaskId";
};
struct ObjectTag {
  static constexpr const char* kName = "ObjectId";
};
struct ActorTag {
  static constexpr const char* kName = "ActorId";
};
struct PlacementGroupTag {
  static constexpr const char* kName = "PlacementGroupId";
};

class JobId : public FixedId<4, JobTag> {
 public:
  JobId() = default;
  JobId(const FixedId<4, JobTag>& id) : FixedId(id) {}
  static JobId FromInt(uint32_t value);
  uint32_t ToInt() const;
};

// The key a worker gives its raylet when it registers: the raylet's control
// calls to that worker (AssignJob, EndLease, Exit) carry it. Random.
inline constexpr size_t kControlKeySize = 16;
std::string NewControlKey();

using NodeId = FixedId<16, NodeTag>;
using WorkerId = FixedId<16, WorkerTag>;
using LeaseId = FixedId<16, LeaseTag>;
using ActorId = FixedId<16, ActorTag>;
using PlacementGroupId = FixedId<16, PlacementGroupTag>;

// [job: 4 bytes][digest of parent and index: 12 bytes]
class TaskId : public FixedId<16, TaskTag> {
 public:
  TaskId() = default;
  TaskId(const FixedId<16, TaskTag>& id) : FixedId(id) {}
  static TaskId ForDriver(const JobId& job);
  static TaskId ForChild(const TaskId& parent, uint32_t index);
  JobId Job() const;
};

// [task: 16 bytes][index: 4 bytes, big-endian; high bit set for puts]
class ObjectId : public FixedId<20, ObjectTag> {
 public:
  ObjectId() = default;
  ObjectId(const FixedId<20, ObjectTag>& id) : FixedId(id) {}
  static ObjectId ForReturn(const TaskId& task, uint32_t index);
  static ObjectId ForPut(const TaskId& task, uint32_t index);
  TaskId Task() const;
  uint32_t Index() const;  // without the put bit
  bool IsPut() const;
};

}  // namespace loom

#endif  // LOOM_COMMON_IDS_H_

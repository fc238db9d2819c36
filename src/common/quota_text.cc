#include "src/common/quota_text.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace loom {

std::string DescribeQuota(const rpc::JobQuota& q) {
  std::vector<std::string> parts;
  auto add = [&](const char* flag, auto limit) {
    if (limit > 0) parts.push_back(absl::StrCat(flag, " ", limit));
  };
  add("max-cpus", q.max_cpus());
  add("max-gpus", q.max_gpus());
  add("max-object-store-bytes", q.max_object_store_bytes());
  add("max-actors", q.max_actors());
  add("max-pending-tasks", q.max_pending_tasks());
  return absl::StrJoin(parts, ", ");
}

}  // namespace loom

#include "src/common/memory_trim.h"

#include <malloc.h>

namespace loom {

bool MemoryTrim::Maybe(absl::Time now) {
  if (now - last_ < options_.period) return false;
  last_ = now;
  if (mallinfo2().fordblks <= options_.free_bytes) return false;
  malloc_trim(0);  // every arena's free pages, not only the tops
  return true;
}

}  // namespace loom

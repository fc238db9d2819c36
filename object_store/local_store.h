// object_store/local_store.h
//
// LocalStore: the objects in one node's arena. An object is created
// (space reserved), written by its creator, then sealed and immutable. Get
// waits until objects are sealed or a deadline passes and pins what it
// returns for that client until released; a client that goes away releases
// its pins and abandons what it had not sealed. Unpinned secondary copies
// are evicted least recently used when space runs short; primary copies
// never are: with a spill directory they are written to files when space
// runs short (or use passes the high watermark) and read back on get.
// Spilling (past the watermark, or for a create) and restoring for a get
// do their file IO off the store's thread (Options::run_io): meanwhile the
// store serves on, and the create or get waits.
//
//   LocalStore store({.capacity = 1 << 30});
//   store.Create(id, size, 0, client, /*primary=*/true, owner,
//                [](absl::StatusOr<ObjectInfo> info) {
//                  ... write at info->offset ... });
//   store.Seal(id, client);
//   store.Get({id}, reader, deadline, [](std::vector<std::optional<ObjectInfo>>
//   r) {...}); store.Release(id, reader);
#ifndef LOOM_OBJECT_STORE_LOCAL_STORE_H_
#define LOOM_OBJECT_STORE_LOCAL_STORE_H_

#include <deque>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "object_store/allocator.h"
#include "src/common/ids.h"

namespace loom {

using ClientId = uint64_t;

struct ObjectInfo {
  uint64_t offset = 0;
  uint64_t data_size = 0;
  uint64_t metadata_size = 0;
};

// Not thread-safe: owned by the store server's thread.
class LocalStore {
 public:
  struct Options {
    uint64_t capacity = 0;
    // The arena's bytes and a directory to spill primary copies to; without
    // both, nothing spills.
    uint8_t* base = nullptr;
    std::string spill_dir;
    double spill_watermark = 0.8;  // spill after a seal leaves more in use
    // Told of each secondary copy evicted (on the store's thread).
    std::function<void(const ObjectId&)> on_evict;
    // Freed bytes kept resident for the next puts (writes to warm pages are
    // several times faster than faulting new ones); past this the pages of
    // freed blocks go back to the kernel. Default (0): a quarter of the
    // capacity, at most 512 MiB. Needs `base`.
    uint64_t warm_reserve = 0;
    // Runs blocking file IO (a spill's write, a restore's read) off the
    // store's thread; what the job returns is given back to Complete on
    // the store's thread. Without it the IO runs inline.
    std::function<void(std::function<std::function<void()>()>)> run_io;
  };
  struct Stats {
    uint64_t capacity = 0, used = 0, objects = 0, pinned = 0, evicted = 0;
    uint64_t spilled_bytes = 0, spilled_objects = 0;
    double fragmentation = 0;
  };
  using GetCallback =
      std::function<void(std::vector<std::optional<ObjectInfo>>)>;

  explicit LocalStore(Options options);

  using CreateCallback = std::function<void(absl::StatusOr<ObjectInfo>)>;
  // Reserves data_size + metadata_size bytes and calls `done` with where.
  // AlreadyExists for a known id; ResourceExhausted (naming the sizes) when
  // neither eviction nor spilling can make room. When room must come from
  // spilling and run_io is set, creates wait, in order, for the spills'
  // file IO off the store's thread; otherwise `done` runs before this
  // returns.
  void Create(const ObjectId& id, uint64_t data_size, uint64_t metadata_size,
              ClientId creator, bool primary, std::string owner,
              CreateCallback done);
  absl::Status Seal(const ObjectId& id, ClientId client);
  // The creator gives up an object it has not sealed.
  absl::Status Abort(const ObjectId& id, ClientId client);
  // Calls `done` once every id is sealed, or at `deadline` with what is;
  // each object returned is pinned for `client` until Release.
  void Get(const std::vector<ObjectId>& ids, ClientId client,
           absl::Time deadline, GetCallback done);
  absl::Status Release(const ObjectId& id, ClientId client);
  // Frees the object now, or when its last pin is released.
  absl::Status Delete(const ObjectId& id);
  // Deletes (as Delete) every sealed object of `job` whose owner is
  // `owner`; returns their ids. An empty owner matches nothing.
  std::vector<ObjectId> DeleteOwnedBy(const std::string& owner,
                                      const JobId& job);
  bool Contains(const ObjectId& id) const;
  void Disconnect(ClientId client);

  // Per-job quotas: the bytes of primary copies (spilled ones included)
  // each job's objects (by the job in their id) may hold here. A create
  // past its job's limit fails with ResourceExhausted naming the quota.
  void SetJobLimits(absl::flat_hash_map<JobId, uint64_t> limits) {
    job_limits_ = std::move(limits);
  }
  // What each job's primary copies hold here, in bytes, and a number that
  // changes whenever that does (so a copy is made only then).
  const absl::flat_hash_map<JobId, uint64_t>& job_bytes() const {
    return job_bytes_;
  }
  uint64_t job_bytes_version() const { return job_bytes_version_; }

  // Answers the waiters whose deadline has passed.
  void ExpireWaiters(absl::Time now);
  // On the store's thread: the result of a job given to run_io. Answers the
  // gets and creates it was holding.
  void Complete(const std::function<void()>& done);
  std::optional<absl::Time> NextDeadline() const;
  Stats stats() const;

  struct Summary {
    ObjectId id;
    uint64_t size = 0;
    std::string owner;
    bool primary = false;
    bool pinned = false;
  };
  // The `n` largest sealed objects, largest first.
  std::vector<Summary> Largest(size_t n) const;

 private:
  struct Entry {
    ObjectInfo info;
    bool sealed = false;
    bool primary = false;
    bool delete_pending = false;
    ClientId creator = 0;
    std::string owner;
    absl::flat_hash_map<ClientId, int> pins;
    std::list<ObjectId>::iterator lru;  // valid while in lru_
    bool in_lru = false;
    uint64_t last_used = 0;
    bool spilled = false;  // bytes in spill_dir/<id>, not in the arena
    // File IO in flight: its arena block is being written out or read into
    // (Free waits for it: delete_pending).
    bool spilling = false;
    bool restoring = false;
  };
  struct Waiter {
    uint64_t id;
    std::vector<ObjectId> ids;
    ClientId client;
    absl::Time deadline;
    GetCallback done;
    bool expired = false;   // answered once its restores are done
    bool restored = false;  // restores started: a failed one is not retried
  };

  struct PendingCreate {
    ObjectId id;
    uint64_t data_size = 0, metadata_size = 0;
    ClientId creator = 0;
    bool primary = false;
    std::string owner;
    CreateCallback done;
  };
  // Answers `c`, or starts spills for it and answers false (it waits) when
  // `may_wait`.
  bool TryCreate(PendingCreate& c, bool may_wait);
  // Answers the waiting creates that can be answered now, in order; with
  // `spill_failed`, the first that still needs room fails.
  void RetryCreates(bool spill_failed);
  // Starts spills until what is free and on its way out covers `bytes`
  // (one at least); false when none is in flight.
  bool StartSpillsFor(uint64_t bytes);
  bool EvictFor(uint64_t bytes);
  // Spills unpinned primary copies, least recently used first, until a run
  // of `bytes` is free; false when nothing could be spilled.
  bool SpillFor(uint64_t bytes);
  void SpillAboveWatermark();
  // The least recently used primary copy that could be spilled now.
  const ObjectId* SpillVictim() const;
  bool Spill(const ObjectId& id, Entry& e);
  // Spills in the background (run_io); FinishSpill takes the result.
  void StartSpill(const ObjectId& id, Entry& e);
  void FinishSpill(const ObjectId& id, const absl::Status& written);
  // Brings a spilled object back into the arena in the background
  // (FinishRestore). Without room, with IO threads, spills for it start
  // there and it waits (restores_, RetryRestores); without room to be
  // made, nothing. With the arena full and the spill disk full too, the
  // object's own file is the disk space the objects it displaces need
  // (SwapIn, inline).
  void StartRestore(const ObjectId& id, Entry& e);
  // Reads the object's file into the arena at `offset`, off the loop.
  void ReadInBackground(const ObjectId& id, Entry& e, uint64_t offset);
  // Starts the waiting restores that have room now, in order; with
  // `spill_failed` (or no spill left to start), the first that still needs
  // room stops waiting (its get answers it as missing).
  void RetryRestores(bool spill_failed);
  void FinishRestore(const ObjectId& id, uint64_t offset, bool read);
  void RunIo(std::function<std::function<void()>()> job);
  bool SwapIn(const ObjectId& id, Entry& e);
  bool ReadBack(const ObjectId& id, Entry& e, uint64_t offset);
  // Why the last allocation could not spill, for its error ("" if it did
  // not try or did not fail): the directory and its free bytes.
  std::string SpillFailure() const;
  // Evicts, then spills inline when `spill`, for room.
  std::optional<uint64_t> Allocate(uint64_t bytes, bool spill = true);
  std::string SpillPath(const ObjectId& id) const;
  void Free(const ObjectId& id);
  void Touch(const ObjectId& id, Entry& e);
  // Answers the waiter if it is due (its objects sealed, or `expired`) and
  // none of them is being restored; starts the restores it needs.
  void TryAnswer(std::list<Waiter>::iterator it, bool expired);
  void AnswerDue();
  void Answer(Waiter& w);

  Options options_;
  // Frees the block at `offset` of `size` bytes, giving its pages back to
  // the kernel once more than the warm reserve is free and resident.
  void FreeBlock(uint64_t offset, uint64_t size);
  Allocator allocator_;
  uint64_t warm_reserve_ = 0;
  uint64_t resident_free_ = 0;  // freed bytes still resident (an estimate)
  absl::flat_hash_map<ObjectId, Entry> objects_;
  absl::flat_hash_map<JobId, uint64_t> job_bytes_;
  uint64_t job_bytes_version_ = 0;
  absl::flat_hash_map<JobId, uint64_t> job_limits_;
  // A create that would take its job past its limit: the error, or OK.
  absl::Status CheckJobLimit(const PendingCreate& c, uint64_t bytes) const;
  std::list<ObjectId> lru_;  // unpinned sealed secondary copies, oldest first
  std::list<Waiter> waiters_;
  std::deque<PendingCreate> creates_;  // waiting for spills, in order
  std::deque<ObjectId> restores_;      // likewise (restoring, no IO yet)
  uint64_t next_waiter_ = 0;
  uint64_t evicted_ = 0;
  uint64_t pinned_ = 0;  // objects with at least one pin (stats, per request)
  uint64_t use_clock_ = 0;
  uint64_t spilled_bytes_ = 0;
  uint64_t spilled_objects_ = 0;
  uint64_t spilling_bytes_ = 0;  // being written out in the background
  absl::Status spill_error_;     // of the last allocation's spilling
  bool spill_failed_ = false;    // by the IO job being completed
  std::vector<ObjectId>* displaced_ = nullptr;  // SwapIn's spills, in order
};

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_LOCAL_STORE_H_

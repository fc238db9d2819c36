// src/gcs/storage.h
//
// StoreClient: the asynchronous storage every GCS table writes through, so
// that a Redis-backed store lets the head survive restarts. The in-memory
// store answers at once, on the caller's thread; a remote one answers on
// the head's event loop, in the order the calls were made. At start the
// head reads every table back with GetAll (its load phase).
//
//   store->Put("nodes", id.Binary(), info.SerializeAsString(), [](absl::Status)
//   {}); store->Get("kv", key, [](absl::StatusOr<std::optional<std::string>> v)
//   {...});
#ifndef LOOM_GCS_STORAGE_H_
#define LOOM_GCS_STORAGE_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace loom::gcs {

class StoreClient {
 public:
  using StatusCallback = std::function<void(absl::Status)>;
  using GetCallback =
      std::function<void(absl::StatusOr<std::optional<std::string>>)>;
  using KeysCallback =
      std::function<void(absl::StatusOr<std::vector<std::string>>)>;
  using Table = std::map<std::string, std::string>;
  using AllCallback = std::function<void(absl::StatusOr<Table>)>;

  virtual ~StoreClient() = default;
  // Whether what is written outlives this head process (Redis: yes).
  virtual bool durable() const { return false; }
  // `added` tells whether the key was new; with overwrite=false an existing
  // value is kept.
  virtual void Put(const std::string& table, const std::string& key,
                   std::string value, bool overwrite,
                   std::function<void(absl::StatusOr<bool> added)> done) = 0;
  virtual void Get(const std::string& table, const std::string& key,
                   GetCallback done) = 0;
  virtual void Delete(const std::string& table, const std::string& key,
                      std::function<void(absl::StatusOr<bool>)> done) = 0;
  virtual void Keys(const std::string& table, const std::string& prefix,
                    KeysCallback done) = 0;
  // Every key and value of the table (empty when it has none).
  virtual void GetAll(const std::string& table, AllCallback done) = 0;
};

// The callback for a write the head cannot go on without: the head never
// continues with state it could not save, so a failed write (after the
// store's own retries) ends the process loudly, naming `what`.
std::function<void(absl::StatusOr<bool>)> MustSave(std::string what);
// The same after which `then` runs (on success only).
std::function<void(absl::StatusOr<bool>)> MustSave(std::string what,
                                                   std::function<void()> then);

// Not thread-safe: used from the GCS event loop.
class InMemoryStoreClient : public StoreClient {
 public:
  void Put(const std::string& table, const std::string& key, std::string value,
           bool overwrite,
           std::function<void(absl::StatusOr<bool>)> done) override;
  void Get(const std::string& table, const std::string& key,
           GetCallback done) override;
  void Delete(const std::string& table, const std::string& key,
              std::function<void(absl::StatusOr<bool>)> done) override;
  void Keys(const std::string& table, const std::string& prefix,
            KeysCallback done) override;
  void GetAll(const std::string& table, AllCallback done) override;

 private:
  absl::flat_hash_map<std::string, Table> tables_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_STORAGE_H_

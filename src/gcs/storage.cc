#include "src/gcs/storage.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/match.h"

namespace loom::gcs {

std::function<void(absl::StatusOr<bool>)> MustSave(std::string what,
                                                   std::function<void()> then) {
  return
      [what = std::move(what), then = std::move(then)](absl::StatusOr<bool> r) {
        if (r.ok()) {
          if (then) then();
          return;
        }
        std::string text = "the head cannot save " + what + ": " +
                           r.status().ToString() + "; exiting";
        spdlog::critical("{}", text);
        spdlog::shutdown();
        std::fprintf(stderr, "loom-gcs: %s\n", text.c_str());
        _exit(70);
      };
}

std::function<void(absl::StatusOr<bool>)> MustSave(std::string what) {
  return MustSave(std::move(what), nullptr);
}

void InMemoryStoreClient::Put(const std::string& table, const std::string& key,
                              std::string value, bool overwrite,
                              std::function<void(absl::StatusOr<bool>)> done) {
  auto& t = tables_[table];
  auto it = t.find(key);
  bool added = it == t.end();
  if (added) {
    t.emplace(key, std::move(value));
  } else if (overwrite) {
    it->second = std::move(value);
  }
  done(added);
}

void InMemoryStoreClient::Get(const std::string& table, const std::string& key,
                              GetCallback done) {
  auto t = tables_.find(table);
  if (t == tables_.end()) return done(std::optional<std::string>());
  auto it = t->second.find(key);
  if (it == t->second.end()) return done(std::optional<std::string>());
  done(std::optional<std::string>(it->second));
}

void InMemoryStoreClient::Delete(
    const std::string& table, const std::string& key,
    std::function<void(absl::StatusOr<bool>)> done) {
  auto t = tables_.find(table);
  done(t != tables_.end() && t->second.erase(key) > 0);
}

void InMemoryStoreClient::Keys(const std::string& table,
                               const std::string& prefix, KeysCallback done) {
  std::vector<std::string> keys;
  auto t = tables_.find(table);
  if (t != tables_.end()) {
    for (auto it = t->second.lower_bound(prefix);
         it != t->second.end() && absl::StartsWith(it->first, prefix); ++it) {
      keys.push_back(it->first);
    }
  }
  done(std::move(keys));
}

void InMemoryStoreClient::GetAll(const std::string& table, AllCallback done) {
  auto t = tables_.find(table);
  done(t == tables_.end() ? Table() : t->second);
}

}  // namespace loom::gcs

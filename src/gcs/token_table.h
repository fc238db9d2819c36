// src/gcs/token_table.h
//
// TokenTable: the people's tokens the head knows (roles.h), each a name, a
// role and the token's hash; the tokens themselves are shown once, when
// made, and never kept. Saved in the head's storage (table "tokens", by
// name), so a head on Redis keeps them across restarts. Every change is
// handed to `publish` (the head makes it what its servers check).
//
//   TokenTable tokens({.store = store, .publish = rpc::SetPeopleTokens});
//   tokens.Create("alice", Role::kViewer, "cluster", [](auto made) {...});
#ifndef LOOM_GCS_TOKEN_TABLE_H_
#define LOOM_GCS_TOKEN_TABLE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/gcs.pb.h"
#include "src/common/clock.h"
#include "src/common/roles.h"
#include "src/gcs/storage.h"

namespace loom::gcs {

// Not thread-safe: used on the head's loop.
class TokenTable {
 public:
  static constexpr char kTable[] = "tokens";
  struct Options {
    StoreClient* store;
    std::function<void(std::shared_ptr<const PeopleTokens>)> publish;
    Clock* clock = Clock::Real();
  };
  explicit TokenTable(Options options) : options_(std::move(options)) {}

  // The stored rows (the head's load phase); DataLoss for one that does
  // not parse.
  absl::Status Load(const StoreClient::Table& rows);

  struct Made {
    std::string token;  // the secret: shown once
    rpc::TokenInfo info;
  };
  // A new token named `name` ("": "<role>-<6 hex digits>") with `role`,
  // made by `by`; saved before `done` runs. AlreadyExists when the name is
  // taken, InvalidArgument for a bad name.
  void Create(std::string name, Role role, const std::string& by,
              std::function<void(absl::StatusOr<Made>)> done);
  // Every token, by name, without their hashes.
  void List(rpc::ListTokensReply* reply) const;
  // Forgets the token (its credentials stop working at the head at once);
  // NotFound when there is none of that name.
  void Revoke(const std::string& name, std::function<void(absl::Status)> done);

 private:
  void Publish();

  Options options_;
  std::map<std::string, rpc::TokenInfo> tokens_;  // by name
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_TOKEN_TABLE_H_

#include "src/gcs/token_table.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "src/common/auth.h"

namespace loom::gcs {

absl::Status TokenTable::Load(const StoreClient::Table& rows) {
  for (const auto& [name, value] : rows) {
    rpc::TokenInfo info;
    if (!info.ParseFromString(value) || !ParseRole(info.role()).ok()) {
      return absl::DataLossError("a row of the tokens table does not parse");
    }
    tokens_[name] = std::move(info);
  }
  Publish();
  return absl::OkStatus();
}

void TokenTable::Create(std::string name, Role role, const std::string& by,
                        std::function<void(absl::StatusOr<Made>)> done) {
  std::string secret = NewClusterToken();
  std::string token = kPersonTokenPrefix + secret;
  if (name.empty())
    name = absl::StrCat(RoleName(role), "-", secret.substr(0, 6));
  if (auto s = CheckTokenName(name); !s.ok()) return done(s);
  if (tokens_.count(name) > 0) {
    return done(absl::AlreadyExistsError(
        absl::StrCat("a token named \"", name,
                     "\" exists (revoke it first, or pick "
                     "another --name)")));
  }
  rpc::TokenInfo info;
  info.set_name(name);
  info.set_role(RoleName(role));
  info.set_hash(HashToken(token));
  info.set_token_id(TokenId(token));
  info.set_created_ms(absl::ToUnixMillis(options_.clock->Now()));
  info.set_created_by(by);
  tokens_[name] = info;
  options_.store->Put(
      kTable, name, info.SerializeAsString(), true,
      [this, token, info, done = std::move(done)](absl::StatusOr<bool> saved) {
        if (!saved.ok()) {
          tokens_.erase(info.name());
          return done(saved.status());
        }
        Publish();
        rpc::TokenInfo shown = info;
        shown.clear_hash();
        spdlog::info("token \"{}\" ({}) made by {}", info.name(), info.role(),
                     info.created_by());
        done(Made{token, std::move(shown)});
      });
}

void TokenTable::List(rpc::ListTokensReply* reply) const {
  for (const auto& [name, info] : tokens_) {
    rpc::TokenInfo* row = reply->add_tokens();
    *row = info;
    row->clear_hash();
  }
}

void TokenTable::Revoke(const std::string& name,
                        std::function<void(absl::Status)> done) {
  if (tokens_.count(name) == 0) {
    return done(absl::NotFoundError(
        absl::StrCat("no token named \"", name, "\" (see `loom token list`)")));
  }
  tokens_.erase(name);
  Publish();  // refused from now on, whatever storage says
  options_.store->Delete(kTable, name,
                         [done = std::move(done)](absl::StatusOr<bool> gone) {
                           done(gone.status());
                         });
}

void TokenTable::Publish() {
  auto people = std::make_shared<PeopleTokens>();
  for (const auto& [name, info] : tokens_) {
    Role role = ParseRole(info.role()).value_or(Role::kViewer);
    (*people)[info.token_id()] =
        Person{Identity{name, role, info.token_id()}, info.hash()};
  }
  if (options_.publish) options_.publish(std::move(people));
}

}  // namespace loom::gcs

// `loom job submit|status|logs|stop|list|delete`: job submission through
// the head's HTTP API (src/gcs/job_api.h, docs/jobs.md).
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/local_cluster.h"
#include "src/cli/commands.h"
#include "src/cli/job_package.h"
#include "src/common/auth.h"
#include "src/common/http_client.h"
#include "src/common/session.h"

namespace loom::cli {
namespace {

using google::protobuf::Struct;

constexpr int64_t kMaxPackageBytes = 64 << 20;  // the head's limit

struct Api {
  std::string host;
  int port = 0;
  std::string token;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "loom job: %s\n", message.c_str());
  return 1;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// --address, $LOOM_DASHBOARD_ADDRESS, $RAY_ADDRESS (http://), then the
// latest local session's job API; the token from the environment or that
// session.
absl::StatusOr<Api> FindApi(const JobArgs& args) {
  std::string root =
      args.session_root.empty() ? DefaultSessionRoot() : args.session_root;
  std::string session = LatestSessionDir(root);
  std::string address = args.address;
  if (address.empty()) address = Env("LOOM_DASHBOARD_ADDRESS");
  if (address.empty() && Env("RAY_ADDRESS").rfind("http", 0) == 0) {
    address = Env("RAY_ADDRESS");
  }
  if (address.empty()) {
    auto local = ReadFileToString(session + "/dashboard_address");
    if (!local.ok()) {
      return absl::NotFoundError(absl::StrCat(
          "no job API address: pass --address http://HEAD:8265, set "
          "LOOM_DASHBOARD_ADDRESS, or run where a head runs (",
          root, ")"));
    }
    address = *local;
  }
  Api api;
  if (auto s = ParseHttpAddress(address, &api.host, &api.port); !s.ok()) {
    return s;
  }
  if (auto t = TokenFromEnv(); t.ok()) {
    api.token = *t;
  } else if (!Env("RAY_AUTH_TOKEN").empty()) {
    api.token = Env("RAY_AUTH_TOKEN");
  } else if (auto f = ReadTokenFile(absl::StrCat(session, "/", kAuthTokenFile));
             f.ok()) {
    api.token = *f;
  }
  return api;
}

// The response's JSON when it is 200; otherwise an error with its message.
absl::StatusOr<std::string> Call(const Api& api, const std::string& method,
                                 const std::string& path,
                                 const std::string& body = "",
                                 const std::string& type = "application/json") {
  auto r = HttpCall({.host = api.host,
                     .port = api.port,
                     .method = method,
                     .path = path,
                     .body = body,
                     .content_type = type,
                     .token = api.token});
  if (!r.ok()) return r.status();
  if (r->status == 200) return r->body;
  Struct err;
  std::string message = r->body;
  if (google::protobuf::util::JsonStringToMessage(r->body, &err).ok() &&
      err.fields().count("error")) {
    message = err.fields().at("error").string_value();
  }
  return absl::Status(r->status == 404 ? absl::StatusCode::kNotFound
                                       : absl::StatusCode::kFailedPrecondition,
                      absl::StrCat("HTTP ", r->status, ": ", message));
}

absl::StatusOr<Struct> Json(const std::string& text) {
  Struct s;
  auto parsed = google::protobuf::util::JsonStringToMessage(text, &s);
  if (!parsed.ok()) {
    return absl::DataLossError("the job API answered with something not JSON");
  }
  return s;
}

std::string Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end()) return "";
  if (it->second.has_string_value()) return it->second.string_value();
  if (it->second.has_number_value()) {
    return absl::StrCat(static_cast<int64_t>(it->second.number_value()));
  }
  return "";
}

absl::StatusOr<Struct> Info(const Api& api, const std::string& id) {
  auto body = Call(api, "GET", "/api/jobs/" + id);
  if (!body.ok()) return body.status();
  return Json(*body);
}

bool Terminal(const std::string& status) {
  return status == "SUCCEEDED" || status == "FAILED" || status == "STOPPED";
}

// Prints the job's output from `offset` on until it ended; returns its
// last status.
absl::StatusOr<std::string> Follow(const Api& api, const std::string& id) {
  int64_t offset = 0;
  while (true) {
    auto info = Info(api, id);
    if (!info.ok()) return info.status();
    std::string status = Field(*info, "status");
    auto body = Call(api, "GET",
                     absl::StrCat("/api/jobs/", id, "/logs?offset=", offset));
    if (!body.ok()) return body.status();
    auto logs = Json(*body);
    if (!logs.ok()) return logs.status();
    std::string text = Field(*logs, "logs");
    offset = std::stoll(Field(*logs, "offset"));
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (text.empty() && Terminal(status)) return status;
    if (text.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// The entrypoint words as one shell command: one word is taken as it is,
// several are joined, each quoted when the shell would split it.
std::string ShellJoin(const std::vector<std::string>& words) {
  if (words.size() == 1) return words[0];
  std::vector<std::string> out;
  for (const std::string& w : words) {
    bool plain = !w.empty() && w.find_first_of(" \t\n'\"\\$`;&|<>()*?[]#~") ==
                                   std::string::npos;
    if (plain) {
      out.push_back(w);
      continue;
    }
    std::string q = "'";
    for (char c : w) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out.push_back(q + "'");
  }
  return absl::StrJoin(out, " ");
}

int Submit(const Api& api, const JobArgs& args) {
  if (args.entrypoint.empty()) {
    return Fail("no entrypoint: loom job submit [options] -- COMMAND...");
  }
  Struct env;
  if (!args.runtime_env_json.empty() &&
      !google::protobuf::util::JsonStringToMessage(args.runtime_env_json, &env)
           .ok()) {
    return Fail("--runtime-env-json is not a JSON object");
  }
  if (!args.working_dir.empty()) {
    auto package = PackageDirectory(args.working_dir, kMaxPackageBytes);
    if (!package.ok()) return Fail(std::string(package.status().message()));
    std::string path = "/api/packages/gcs/" + package->name;
    auto have = Call(api, "GET", path);
    if (!have.ok() && !absl::IsNotFound(have.status())) {
      return Fail(std::string(have.status().message()));
    }
    if (!have.ok()) {
      auto put = Call(api, "PUT", path, package->zip, "application/zip");
      if (!put.ok()) return Fail(std::string(put.status().message()));
    }
    (*env.mutable_fields())["working_dir"].set_string_value("gcs://" +
                                                            package->name);
  }
  Struct req;
  auto& f = *req.mutable_fields();
  f["entrypoint"].set_string_value(ShellJoin(args.entrypoint));
  if (!args.submission_id.empty()) {
    f["submission_id"].set_string_value(args.submission_id);
  }
  if (!env.fields().empty()) *f["runtime_env"].mutable_struct_value() = env;
  if (args.num_cpus > 0)
    f["entrypoint_num_cpus"].set_number_value(args.num_cpus);
  if (args.num_gpus > 0)
    f["entrypoint_num_gpus"].set_number_value(args.num_gpus);
  Struct quota;
  for (auto [key, v] :
       {std::pair{"max_cpus", args.max_cpus},
        std::pair{"max_gpus", args.max_gpus},
        std::pair{"max_object_store_bytes",
                  static_cast<double>(args.max_object_store_bytes)},
        std::pair{"max_actors", static_cast<double>(args.max_actors)},
        std::pair{"max_pending_tasks",
                  static_cast<double>(args.max_pending_tasks)}}) {
    if (v > 0) (*quota.mutable_fields())[key].set_number_value(v);
  }
  if (!quota.fields().empty()) *f["quota"].mutable_struct_value() = quota;
  if (!args.resources_json.empty()) {
    Struct resources;
    if (!google::protobuf::util::JsonStringToMessage(args.resources_json,
                                                     &resources)
             .ok()) {
      return Fail("--entrypoint-resources is not a JSON object");
    }
    *f["entrypoint_resources"].mutable_struct_value() = resources;
  }
  if (!args.metadata_json.empty()) {
    Struct metadata;
    if (!google::protobuf::util::JsonStringToMessage(args.metadata_json,
                                                     &metadata)
             .ok()) {
      return Fail("--metadata-json is not a JSON object");
    }
    *f["metadata"].mutable_struct_value() = metadata;
  }
  std::string body;
  (void)google::protobuf::util::MessageToJsonString(req, &body);
  auto reply = Call(api, "POST", "/api/jobs/", body);
  if (!reply.ok()) return Fail(std::string(reply.status().message()));
  auto json = Json(*reply);
  if (!json.ok()) return Fail(std::string(json.status().message()));
  std::string id = Field(*json, "submission_id");
  std::printf("Job '%s' submitted.\n", id.c_str());
  if (args.no_wait) {
    std::printf("Follow it with: loom job logs --follow %s\n", id.c_str());
    return 0;
  }
  auto status = Follow(api, id);
  if (!status.ok()) return Fail(std::string(status.status().message()));
  auto info = Info(api, id);
  std::printf("Job '%s' %s: %s\n", id.c_str(), status->c_str(),
              info.ok() ? Field(*info, "message").c_str() : "");
  return *status == "SUCCEEDED" ? 0 : 1;
}

int StatusOf(const Api& api, const std::string& id) {
  auto info = Info(api, id);
  if (!info.ok()) return Fail(std::string(info.status().message()));
  std::printf("Status for job '%s': %s\nStatus message: %s\n", id.c_str(),
              Field(*info, "status").c_str(), Field(*info, "message").c_str());
  return 0;
}

int ListJobs(const Api& api) {
  auto body = Call(api, "GET", "/api/jobs/");
  if (!body.ok()) return Fail(std::string(body.status().message()));
  google::protobuf::ListValue jobs;
  if (!google::protobuf::util::JsonStringToMessage(*body, &jobs).ok()) {
    return Fail("the job API answered with something not a JSON list");
  }
  std::printf("%-28s %-10s %-15s %s\n", "SUBMISSION_ID", "STATUS",
              "START_TIME_MS", "ENTRYPOINT");
  for (const auto& v : jobs.values()) {
    const Struct& j = v.struct_value();
    std::printf("%-28s %-10s %-15s %s\n", Field(j, "submission_id").c_str(),
                Field(j, "status").c_str(), Field(j, "start_time").c_str(),
                Field(j, "entrypoint").c_str());
  }
  return 0;
}

int Stop(const Api& api, const std::string& id) {
  auto reply = Call(api, "POST", "/api/jobs/" + id + "/stop");
  if (!reply.ok()) return Fail(std::string(reply.status().message()));
  auto json = Json(*reply);
  if (json.ok() && json->fields().at("stopped").bool_value() == false) {
    std::printf("Job '%s' had already ended.\n", id.c_str());
    return 0;
  }
  for (int i = 0; i < 300; ++i) {  // its process group gets 3 s to go
    auto info = Info(api, id);
    if (info.ok() && Terminal(Field(*info, "status"))) {
      std::printf("Job '%s' %s.\n", id.c_str(), Field(*info, "status").c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Fail("asked to stop job " + id + ", but it has not ended yet");
}

}  // namespace

int Job(const JobArgs& args) {
  auto api = FindApi(args);
  if (!api.ok()) return Fail(std::string(api.status().message()));
  if (args.command == "submit") return Submit(*api, args);
  if (args.command == "list") return ListJobs(*api);
  if (args.id.empty()) return Fail("which job? give its submission id");
  if (args.command == "status") return StatusOf(*api, args.id);
  if (args.command == "stop") return Stop(*api, args.id);
  if (args.command == "logs") {
    if (args.follow) {
      auto status = Follow(*api, args.id);
      return status.ok() ? 0 : Fail(std::string(status.status().message()));
    }
    auto body = Call(*api, "GET", "/api/jobs/" + args.id + "/logs");
    if (!body.ok()) return Fail(std::string(body.status().message()));
    auto json = Json(*body);
    if (!json.ok()) return Fail(std::string(json.status().message()));
    std::string text = Field(*json, "logs");
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (args.command == "delete") {
    auto body = Call(*api, "DELETE", "/api/jobs/" + args.id);
    if (!body.ok()) return Fail(std::string(body.status().message()));
    std::printf("Job '%s' deleted.\n", args.id.c_str());
    return 0;
  }
  return 2;
}

}  // namespace loom::cli

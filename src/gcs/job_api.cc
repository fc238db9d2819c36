#include "src/gcs/job_api.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <future>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "scheduler/resource_set.h"
#include "src/common/ids.h"
#include "src/common/version.h"
#include "src/common/wire.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/http_edge.h"

namespace loom::gcs {

int HttpStatusFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 413;
    default:
      return 503;
  }
}

namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr int64_t kMaxBodyBytes = 1 << 20;
// Ray's job API version that its clients check for.
constexpr char kApiVersion[] = "4";
constexpr int64_t kMaxLogBytes = 64 << 20;
// The Ray version this API answers as: its clients check it (>= 2.8 for
// every field Loom takes).
constexpr char kRayCompatibleVersion[] = "2.40.0";

std::string OrNull(const std::string& s) {
  return s.empty() ? "null" : JsonString(s);
}

// "quota": {"max_cpus": 2, ...}: each key a JobQuota field, a number >= 0.
absl::Status ParseQuota(const google::protobuf::Value& v, rpc::JobQuota* q) {
  if (!v.has_struct_value()) {
    return absl::InvalidArgumentError("quota must be an object");
  }
  for (const auto& [k, n] : v.struct_value().fields()) {
    double x = n.number_value();
    if (!n.has_number_value() || x < 0 || x > 1e18) {
      return absl::InvalidArgumentError(
          absl::StrCat("quota.", k, " must be a number >= 0 (0: no limit)"));
    }
    if (k == "max_cpus") {
      q->set_max_cpus(x);
    } else if (k == "max_gpus") {
      q->set_max_gpus(x);
    } else if (k == "max_object_store_bytes") {
      q->set_max_object_store_bytes(static_cast<int64_t>(x));
    } else if (k == "max_actors") {
      q->set_max_actors(static_cast<int64_t>(x));
    } else if (k == "max_pending_tasks") {
      q->set_max_pending_tasks(static_cast<int64_t>(x));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "quota has no limit \"", k,
          "\": max_cpus, max_gpus, max_object_store_bytes, max_actors and "
          "max_pending_tasks"));
    }
  }
  return ValidateQuota(*q);
}

std::string QuotaJson(const rpc::JobQuota& q) {
  return absl::StrCat(
      R"({"max_cpus": )", JsonNumber(q.max_cpus()), R"(, "max_gpus": )",
      JsonNumber(q.max_gpus()), R"(, "max_object_store_bytes": )",
      q.max_object_store_bytes(), R"(, "max_actors": )", q.max_actors(),
      R"(, "max_pending_tasks": )", q.max_pending_tasks(), "}");
}

// A job as Ray's JobDetails.
std::string JobJson(const rpc::JobSubmission& job) {
  bool ended = JobManager::Ended(job.status());
  std::string metadata = "{";
  for (const auto& [k, v] : job.metadata()) {
    absl::StrAppend(&metadata, metadata.size() > 1 ? ", " : "", JsonString(k),
                    ": ", JsonString(v));
  }
  metadata += "}";
  auto resources = ResourcesFromProto(job.entrypoint_resources());
  std::map<std::string, double> custom;
  double cpus = 0, gpus = 0, memory = 0;
  if (resources.ok()) {
    for (const auto& [name, qty] : resources->ToMap()) {
      if (name == "CPU")
        cpus = qty;
      else if (name == "GPU")
        gpus = qty;
      else if (name == "memory")
        memory = qty;
      else
        custom[name] = qty;
    }
  }
  std::string custom_json = "{";
  for (const auto& [k, v] : custom) {
    absl::StrAppend(&custom_json, custom_json.size() > 1 ? ", " : "",
                    JsonString(k), ": ", JsonNumber(v));
  }
  custom_json += "}";
  return absl::StrCat(
      R"({"type": "SUBMISSION", "job_id": null, "submission_id": )",
      JsonString(job.submission_id()), R"(, "driver_info": null, "status": )",
      JsonString(rpc::JobSubmission::Status_Name(job.status())),
      R"(, "entrypoint": )", JsonString(job.entrypoint()), R"(, "message": )",
      JsonString(job.message()), R"(, "error_type": )",
      OrNull(job.error_type()), R"(, "start_time": )", job.start_time_ms(),
      R"(, "end_time": )", ended ? JsonNumber(job.end_time_ms()) : "null",
      R"(, "metadata": )", metadata, R"(, "runtime_env": )",
      job.runtime_env_json().empty() ? "{}" : job.runtime_env_json(),
      R"(, "driver_agent_http_address": null, "driver_node_id": )",
      OrNull(job.node_id().empty() ? "" : HexEncode(job.node_id())),
      R"(, "driver_exit_code": )", ended ? JsonNumber(job.exit_code()) : "null",
      R"(, "entrypoint_num_cpus": )", JsonNumber(cpus),
      R"(, "entrypoint_num_gpus": )", JsonNumber(gpus),
      R"(, "entrypoint_memory": )", JsonNumber(memory),
      R"(, "entrypoint_resources": )", custom_json, R"(, "quota": )",
      QuotaJson(job.quota()), "}");
}

// The submission a POST body describes; InvalidArgument saying what is
// wrong with it.
absl::StatusOr<rpc::JobSubmission> ParseSubmission(const std::string& body) {
  Struct s;
  auto parsed = google::protobuf::util::JsonStringToMessage(body, &s);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request body is not a JSON object: ",
                     parsed.message().as_string()));
  }
  const auto& f = s.fields();
  auto str = [&](const char* key) -> absl::StatusOr<std::string> {
    auto it = f.find(key);
    if (it == f.end() || it->second.has_null_value()) return std::string();
    if (!it->second.has_string_value()) {
      return absl::InvalidArgumentError(absl::StrCat(key, " must be a string"));
    }
    return it->second.string_value();
  };
  auto num = [&](const char* key) -> absl::StatusOr<double> {
    auto it = f.find(key);
    if (it == f.end() || it->second.has_null_value()) return 0.0;
    if (!it->second.has_number_value() || it->second.number_value() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, " must be a number >= 0"));
    }
    return it->second.number_value();
  };
  rpc::JobSubmission job;
  auto entrypoint = str("entrypoint");
  if (!entrypoint.ok()) return entrypoint.status();
  if (entrypoint->empty()) {
    return absl::InvalidArgumentError("the request needs an \"entrypoint\"");
  }
  job.set_entrypoint(*entrypoint);
  auto id = str("submission_id");
  if (!id.ok()) return id.status();
  if (id->empty()) id = str("job_id");  // Ray's older name for it
  if (!id.ok()) return id.status();
  job.set_submission_id(*id);
  if (auto it = f.find("metadata");
      it != f.end() && !it->second.has_null_value()) {
    if (!it->second.has_struct_value()) {
      return absl::InvalidArgumentError("metadata must be an object");
    }
    for (const auto& [k, v] : it->second.struct_value().fields()) {
      if (!v.has_string_value()) {
        return absl::InvalidArgumentError("metadata values must be strings");
      }
      (*job.mutable_metadata())[k] = v.string_value();
    }
  }
  if (auto it = f.find("runtime_env");
      it != f.end() && !it->second.has_null_value()) {
    if (!it->second.has_struct_value()) {
      return absl::InvalidArgumentError("runtime_env must be an object");
    }
    const auto& env = it->second.struct_value().fields();
    if (auto wd = env.find("working_dir"); wd != env.end()) {
      if (!wd->second.has_string_value() ||
          !absl::StartsWith(wd->second.string_value(), "gcs://")) {
        return absl::InvalidArgumentError(
            "runtime_env.working_dir must be a package uploaded to this head "
            "(gcs://...): `loom job submit --working-dir DIR` uploads one");
      }
      job.set_working_dir(wd->second.string_value());
    }
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(it->second.struct_value(),
                                                      &json);
    job.set_runtime_env_json(json);
  }
  std::map<std::string, double> quantities;
  for (auto [key, name] : {std::pair{"entrypoint_num_cpus", "CPU"},
                           std::pair{"entrypoint_num_gpus", "GPU"},
                           std::pair{"entrypoint_memory", "memory"}}) {
    auto v = num(key);
    if (!v.ok()) return v.status();
    if (*v > 0) quantities[name] = *v;
  }
  if (auto it = f.find("entrypoint_resources");
      it != f.end() && !it->second.has_null_value()) {
    if (!it->second.has_struct_value()) {
      return absl::InvalidArgumentError(
          "entrypoint_resources must be an object");
    }
    for (const auto& [k, v] : it->second.struct_value().fields()) {
      if (!v.has_number_value() || v.number_value() < 0) {
        return absl::InvalidArgumentError(
            "entrypoint_resources values must be numbers >= 0");
      }
      if (v.number_value() > 0) quantities[k] = v.number_value();
    }
  }
  auto resources = ResourceSet::FromMap(quantities);
  if (!resources.ok()) return resources.status();
  *job.mutable_entrypoint_resources() = ResourcesToProto(*resources);
  if (auto it = f.find("quota");
      it != f.end() && !it->second.has_null_value()) {
    if (auto s = ParseQuota(it->second, job.mutable_quota()); !s.ok()) return s;
  }
  return job;
}

}  // namespace

void JobApi::AddRoutes(HttpServer* http) {
  http->Route("/api/version", kMaxBodyBytes, [](const HttpRequest&) {
    return HttpResponse{
        200,
        absl::StrCat(R"({"version": ")", kApiVersion, R"(", "ray_version": ")",
                     kRayCompatibleVersion,
                     R"(", "ray_commit": "loom", "session_name": "loom", )",
                     R"("loom_version": )", JsonString(ToString(ThisVersion())),
                     "}")};
  });
  http->Route("/api/jobs", kMaxBodyBytes,
              [this](const HttpRequest& req) { return Jobs(req); });
  http->Stream("/api/jobs",
               [this](const HttpRequest& req, const HttpServer::Send& send) {
                 Tail(req, send);
               });
  http->Route("/api/packages", kMaxPackageBytes,
              [this](const HttpRequest& req) { return Packages(req); });
  // The audit log (audit_log.h), admins only: {"entries": [...],
  // "last_seq": N}; ?after_seq=N&since_ms=T to go on from an earlier page.
  http->Route("/api/audit", kMaxBodyBytes,
              [this](const HttpRequest& req) { return AuditEntries(req); },
              {Role::kAdmin, Role::kAdmin});
}

HttpResponse JobApi::AuditEntries(const HttpRequest& req) {
  if (req.method != "GET") return HttpServer::Error(405, "GET");
  int64_t after = 0, since = 0;
  for (absl::string_view kv : absl::StrSplit(req.query, '&')) {
    int64_t* into = absl::ConsumePrefix(&kv, "after_seq=")  ? &after
                    : absl::ConsumePrefix(&kv, "since_ms=") ? &since
                                                            : nullptr;
    if (into != nullptr && !absl::SimpleAtoi(kv, into)) {
      return HttpServer::Error(400, "after_seq and since_ms are numbers");
    }
  }
  AuditLog::Page page = server_->audit().Read(after, since, 1000);
  std::string out = R"({"entries": [)";
  for (size_t i = 0; i < page.lines.size(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", page.lines[i]);
  }
  return {200, absl::StrCat(out, R"(], "last_seq": )", page.last_seq, "}")};
}

HttpResponse JobApi::Jobs(const HttpRequest& req) {
  // /api/jobs, /api/jobs/, /api/jobs/{id}, /api/jobs/{id}/{logs,stop}
  std::vector<std::string> parts =
      absl::StrSplit(req.path, '/', absl::SkipEmpty());
  if (parts.size() == 2) {
    if (req.method == "POST") return Submit(req);
    if (req.method != "GET") return HttpServer::Error(405, "GET or POST");
    auto jobs = OnLoop<std::vector<rpc::JobSubmission>>(
        server_, [this](auto done) { done(server_->submissions().List()); });
    if (!jobs.ok()) return ErrorFor(jobs.status());
    std::string out = "[";
    for (const auto& job : *jobs) {
      absl::StrAppend(&out, out.size() > 1 ? ", " : "", JobJson(job));
    }
    return {200, out + "]"};
  }
  const std::string& id = parts[2];
  std::string action = parts.size() > 3 ? parts[3] : "";
  if (parts.size() > 4 ||
      (!action.empty() && action != "logs" && action != "stop")) {
    return HttpServer::Error(404, absl::StrCat("no such path: ", req.path));
  }
  if (action == "logs") return Logs(id, req);
  if (action == "stop") {
    if (req.method != "POST") return HttpServer::Error(405, "POST");
    if (auto s = MayChange(req, id, "stop"); !s.ok()) return ErrorFor(s);
    auto stopped = OnLoop<bool>(server_, [this, id](auto done) {
      server_->submissions().Stop(id, std::move(done));
    });
    Audit(req, "StopJob", id, stopped.status());
    if (!stopped.ok()) return ErrorFor(stopped.status());
    return {200,
            absl::StrCat(R"({"stopped": )", *stopped ? "true" : "false", "}")};
  }
  if (req.method == "DELETE") {
    if (auto s = MayChange(req, id, "delete"); !s.ok()) return ErrorFor(s);
    auto deleted = OnLoop<bool>(server_, [this, id](auto done) {
      server_->submissions().Delete(id, std::move(done));
    });
    Audit(req, "DeleteJob", id, deleted.status());
    if (!deleted.ok()) return ErrorFor(deleted.status());
    return {200,
            absl::StrCat(R"({"deleted": )", *deleted ? "true" : "false", "}")};
  }
  if (req.method != "GET") return HttpServer::Error(405, "GET or DELETE");
  auto job = GetJob(id);
  if (!job.ok()) return ErrorFor(job.status());
  return {200, JobJson(*job)};
}

absl::Status JobApi::MayChange(const HttpRequest& req, const std::string& id,
                               const char* what) {
  if (req.caller.role >= Role::kAdmin) return absl::OkStatus();
  auto job = GetJob(id);
  if (!job.ok() || job->owner() == req.caller.name) return absl::OkStatus();
  absl::Status denied = absl::PermissionDeniedError(
      absl::StrCat("the token \"", req.caller.name, "\" has the role ",
                   RoleName(req.caller.role), ", which may ", what,
                   " only the jobs it submitted; job ", id, " is another's"));
  Audit(req, what == std::string("stop") ? "StopJob" : "DeleteJob", id, denied);
  return denied;
}

void JobApi::Audit(const HttpRequest& req, const std::string& action,
                   const std::string& target, const absl::Status& result) {
  server_->audit().Append(req.caller, req.peer, action, "job " + target,
                          result);
}

absl::StatusOr<rpc::JobSubmission> JobApi::GetJob(const std::string& id) {
  return OnLoop<rpc::JobSubmission>(
      server_, [this, id](auto done) { done(server_->submissions().Get(id)); });
}

HttpResponse JobApi::Submit(const HttpRequest& req) {
  auto job = ParseSubmission(req.body);
  if (!job.ok()) return ErrorFor(job.status());
  job->set_owner(req.caller.name);
  auto submitted = OnLoop<rpc::JobSubmission>(
      server_, [this, job = *std::move(job)](auto done) mutable {
        server_->submissions().Submit(std::move(job), std::move(done));
      });
  Audit(req, "SubmitJob",
        submitted.ok() ? submitted->submission_id() : std::string("(none)"),
        submitted.status());
  if (!submitted.ok()) return ErrorFor(submitted.status());
  std::string id = JsonString(submitted->submission_id());
  return {200, absl::StrCat(R"({"job_id": )", id, R"(, "submission_id": )", id,
                            "}")};
}

absl::Status JobApi::ReadLog(const rpc::JobSubmission& job, int64_t* at,
                             std::string* logs) {
  while (!job.node_id().empty() &&
         static_cast<int64_t>(logs->size()) < kMaxLogBytes) {
    rpc::ReadLogRequest read;
    read.set_node_id(job.node_id());
    read.mutable_read()->set_name(job.log_file());
    read.mutable_read()->set_offset(*at);
    read.mutable_read()->set_max_bytes(1 << 20);  // the raylet's most
    auto reply = std::make_shared<rpc::ReadLogReply>();
    auto s = OnLoop<bool>(server_, [this, read, reply](auto done) {
      server_->HandleReadLog(read, reply.get(), [done](absl::Status s) {
        if (!s.ok()) return done(s);
        done(true);
      });
    });
    if (!s.ok()) {
      // No file yet: the entrypoint has not printed or not started.
      if (absl::IsNotFound(s.status()) && logs->empty())
        return absl::OkStatus();
      return s.status();
    }
    const auto& r = reply->read();
    *logs += r.data();
    *at = r.offset() + static_cast<int64_t>(r.data().size());
    if (r.data().empty() || *at >= r.size()) break;
  }
  return absl::OkStatus();
}

void JobApi::Tail(const HttpRequest& req, const HttpServer::Send& send) {
  // /api/jobs/{id}/logs/tail, as Ray's clients follow a job: text frames
  // of output until the job ended and all of it went.
  std::vector<std::string> parts =
      absl::StrSplit(req.path, '/', absl::SkipEmpty());
  if (parts.size() != 5 || parts[3] != "logs" || parts[4] != "tail") return;
  const std::string& id = parts[2];
  int64_t at = 0;
  while (true) {
    auto job = GetJob(id);
    if (!job.ok()) return;
    bool ended = JobManager::Ended(job->status());
    std::string text;
    if (!ReadLog(*job, &at, &text).ok()) return;
    if (!text.empty()) {
      if (!send(text)) return;
      continue;
    }
    if (ended || !send("")) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

HttpResponse JobApi::Logs(const std::string& id, const HttpRequest& req) {
  if (req.method != "GET") return HttpServer::Error(405, "GET");
  // ?offset=N (Loom's clients, to follow): from byte N, and where to go
  // on. Ray's clients read the whole log and accept no other key.
  int64_t offset = 0;
  bool with_offset = false;
  for (absl::string_view kv : absl::StrSplit(req.query, '&')) {
    if (!absl::ConsumePrefix(&kv, "offset=")) continue;
    with_offset = true;
    if (!absl::SimpleAtoi(kv, &offset)) {
      return HttpServer::Error(400, "offset must be a number");
    }
  }
  auto job = GetJob(id);
  if (!job.ok()) return ErrorFor(job.status());
  std::string logs;
  int64_t at = std::max<int64_t>(offset, 0);
  if (auto s = ReadLog(*job, &at, &logs); !s.ok()) return ErrorFor(s);
  if (!with_offset)
    return {200, absl::StrCat(R"({"logs": )", JsonString(logs), "}")};
  return {200, absl::StrCat(R"({"logs": )", JsonString(logs), R"(, "offset": )",
                            at, "}")};
}

HttpResponse JobApi::Packages(const HttpRequest& req) {
  // /api/packages/{protocol}/{name}: the head keeps gcs:// packages.
  std::vector<std::string> parts =
      absl::StrSplit(req.path, '/', absl::SkipEmpty());
  if (parts.size() != 4 || parts[2] != "gcs") {
    return HttpServer::Error(
        404, "packages are /api/packages/gcs/{name}: the head keeps them");
  }
  const std::string& name = parts[3];
  if (req.method == "GET") {
    auto found = OnLoop<bool>(server_, [this, name](auto done) {
      rpc::KvGetRequest get;
      get.set_ns(kPackagesNamespace);
      get.set_key(name);
      auto reply = std::make_shared<rpc::KvGetReply>();
      server_->HandleKvGet(get, reply.get(), [reply, done](absl::Status s) {
        if (!s.ok()) return done(s);
        done(reply->found());
      });
    });
    if (!found.ok()) return ErrorFor(found.status());
    if (!*found) return HttpServer::Error(404, "no package " + name);
    return {200, "{}"};
  }
  if (req.method != "PUT") return HttpServer::Error(405, "GET or PUT");
  if (req.body.empty()) return HttpServer::Error(400, "an empty package");
  // The body is copied once (the loop may run this after a timeout here),
  // then moved.
  auto added =
      OnLoop<bool>(server_, [this, name, body = req.body](auto done) mutable {
        rpc::KvPutRequest put;
        put.set_ns(kPackagesNamespace);
        put.set_key(name);
        put.set_value(std::move(body));
        put.set_overwrite(true);
        auto reply = std::make_shared<rpc::KvPutReply>();
        server_->HandleKvPut(put, reply.get(), [reply, done](absl::Status s) {
          if (!s.ok()) return done(s);
          done(true);
        });
      });
  if (!added.ok()) return ErrorFor(added.status());
  return {200, "{}"};
}

}  // namespace loom::gcs

#include "src/raylet/entrypoints.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/auth.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"

namespace loom::raylet {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kStopGrace = absl::Seconds(3);
constexpr absl::Duration kResendPeriod = absl::Seconds(2);
constexpr size_t kMaxNameSize = 200;

}  // namespace

absl::Status Unzip(const std::string& data, const std::string& dir) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* src =
      zip_source_buffer_create(data.data(), data.size(), 0, &error);
  zip_t* z = src ? zip_open_from_source(src, ZIP_RDONLY, &error) : nullptr;
  if (z == nullptr) {
    std::string why = zip_error_strerror(&error);
    if (src) zip_source_free(src);
    zip_error_fini(&error);
    return absl::InvalidArgumentError(
        absl::StrCat("the working directory's package is not a zip: ", why));
  }
  zip_error_fini(&error);
  absl::Status status;
  std::vector<char> buf(1 << 16);
  zip_int64_t n = zip_get_num_entries(z, 0);
  for (zip_int64_t i = 0; i < n && status.ok(); ++i) {
    zip_stat_t st;
    if (zip_stat_index(z, i, 0, &st) != 0 || st.name == nullptr) continue;
    std::string name = st.name;
    fs::path rel(name);
    bool unsafe = rel.is_absolute();
    for (const auto& part : rel) unsafe |= part == "..";
    if (unsafe) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "the package holds a path outside its directory: ", name));
      break;
    }
    fs::path out = fs::path(dir) / rel;
    std::error_code ec;
    if (!name.empty() && name.back() == '/') {
      fs::create_directories(out, ec);
      continue;
    }
    fs::create_directories(out.parent_path(), ec);
    zip_file_t* f = zip_fopen_index(z, i, 0);
    std::ofstream file(out, std::ios::binary | std::ios::trunc);
    if (f == nullptr || !file) {
      status = absl::InternalError(absl::StrCat("cannot unpack ", name));
    } else {
      zip_int64_t got;
      while ((got = zip_fread(f, buf.data(), buf.size())) > 0) {
        file.write(buf.data(), got);
      }
      if (got < 0 || !file) {
        status = absl::InternalError(absl::StrCat("cannot unpack ", name));
      }
    }
    if (f) zip_fclose(f);
  }
  zip_discard(z);
  return status;
}

void Entrypoints::Start(const rpc::StartEntrypointRequest& req,
                        rpc::StartEntrypointReply* reply, Done done) {
  const std::string& id = req.submission_id();
  // Both name files here.
  if (!IsPlainName(id, kMaxNameSize) ||
      !IsPlainName(req.log_file(), kMaxNameSize)) {
    return done(absl::InvalidArgumentError(
        "submission_id and log_file must be plain names"));
  }
  if (auto it = running_.find(id); it != running_.end()) {
    reply->set_started(true);  // the head asked again
    reply->set_pid(it->second.pid);
    return done(absl::OkStatus());
  }
  if (starting_.count(id) || unreported_.count(id)) {
    return done(absl::FailedPreconditionError(
        absl::StrCat("entrypoint of ", id, " is starting or ended here")));
  }
  auto demand = ResourcesFromProto(req.resources());
  if (!demand.ok()) return done(demand.status());
  std::optional<Allocation> allocation = options_.resources->Acquire(*demand);
  if (!allocation) {
    reply->set_started(false);
    return done(absl::OkStatus());
  }
  std::string dir = absl::StrCat(options_.session_dir, "/jobs/", id);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (req.working_dir().empty()) {
    return Spawn(req, *std::move(allocation), dir, reply, std::move(done));
  }
  // The package comes from the head's KV: off the loop.
  starting_[id] = true;
  std::thread([this, req, allocation = *std::move(allocation), dir, reply,
               done = std::move(done)]() mutable {
    std::string name(absl::StripPrefix(req.working_dir(), "gcs://"));
    rpc::KvGetRequest get;
    get.set_ns(kPackagesNamespace);
    get.set_key(name);
    rpc::KvGetReply got;
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 60000);
    absl::Status s =
        rpc::ToAbsl(options_.clients->Stub<rpc::Gcs>(options_.gcs_address)
                        ->KvGet(&ctx, get, &got));
    if (s.ok() && !got.found()) {
      s = absl::NotFoundError(
          absl::StrCat("the head has no package ", req.working_dir(),
                       " (upload it first: PUT /api/packages/gcs/", name, ")"));
    }
    if (s.ok()) s = Unzip(got.value(), dir);
    options_.loop->Post([this, req, allocation = std::move(allocation), dir,
                         reply, done = std::move(done), s]() mutable {
      starting_.erase(req.submission_id());
      if (s.ok()) {
        return Spawn(req, std::move(allocation), dir, reply, std::move(done));
      }
      options_.resources->Release(allocation);
      // It counts as started and ended at once: the head records why.
      reply->set_started(true);
      done(absl::OkStatus());
      rpc::ReportEntrypointExitRequest report;
      report.set_submission_id(req.submission_id());
      report.set_node_id(options_.node_id);
      report.set_exit_code(-1);
      report.set_message(
          absl::StrCat("the working directory could not be "
                       "set up: ",
                       s.message()));
      Report(std::move(report));
    });
  }).detach();
}

void Entrypoints::Spawn(const rpc::StartEntrypointRequest& req,
                        Allocation allocation, const std::string& dir,
                        rpc::StartEntrypointReply* reply, Done done) {
  SpawnOptions spawn;
  spawn.argv = {"/bin/sh", "-c", req.entrypoint()};
  spawn.cwd = dir;
  spawn.new_session = true;  // its own process group, stopped as one
  std::string log =
      absl::StrCat(options_.session_dir, "/logs/", req.log_file());
  spawn.stdout_path = spawn.stderr_path = log;
  for (const auto& [k, v] : req.env()) spawn.extra_env.push_back(k + "=" + v);
  spawn.extra_env.push_back("LOOM_ADDRESS=" + options_.gcs_address);
  spawn.extra_env.push_back("LOOM_RAYLET_SESSION_DIR=" + options_.session_dir);
  spawn.extra_env.push_back("LOOM_JOB_SUBMISSION_ID=" + req.submission_id());
  if (!rpc::ClusterToken().empty()) {
    spawn.extra_env.push_back(
        absl::StrCat(kAuthTokenEnv, "=", rpc::ClusterToken()));
  }
  auto pid = loom::Spawn(spawn);
  if (!pid.ok()) {
    options_.resources->Release(allocation);
    return done(pid.status());
  }
  spdlog::info("job {}: entrypoint started, pid {}, output in {}",
               req.submission_id(), *pid, log);
  running_[req.submission_id()] = Running{*pid, std::move(allocation)};
  reply->set_started(true);
  reply->set_pid(*pid);
  done(absl::OkStatus());
}

void Entrypoints::Stop(const rpc::StopEntrypointRequest& req,
                       rpc::StopEntrypointReply* reply, Done done) {
  auto it = running_.find(req.submission_id());
  if (it != running_.end()) {
    kill(-it->second.pid, SIGTERM);
    it->second.stop_sent = absl::Now();
    reply->set_found(true);
  }
  done(absl::OkStatus());
}

void Entrypoints::Reap() {
  absl::Time now = absl::Now();
  for (auto it = running_.begin(); it != running_.end();) {
    Running& r = it->second;
    int status = 0;
    if (waitpid(r.pid, &status, WNOHANG) != r.pid) {
      if (now - r.stop_sent > kStopGrace) kill(-r.pid, SIGKILL);
      ++it;
      continue;
    }
    kill(-r.pid, SIGKILL);  // what it started goes with it
    options_.resources->Release(r.allocation);
    rpc::ReportEntrypointExitRequest report;
    report.set_submission_id(it->first);
    report.set_node_id(options_.node_id);
    if (WIFSIGNALED(status)) {
      report.set_signal(WTERMSIG(status));
      report.set_exit_code(-1);
    } else {
      report.set_exit_code(WEXITSTATUS(status));
    }
    spdlog::info("job {}: entrypoint ended (exit {}, signal {})", it->first,
                 report.exit_code(), report.signal());
    it = running_.erase(it);
    Report(std::move(report));
  }
  if (now - last_resend_ < kResendPeriod) return;
  last_resend_ = now;
  for (const auto& [id, report] : unreported_) {
    if (!reporting_.count(id)) Report(report);
  }
}

void Entrypoints::Report(rpc::ReportEntrypointExitRequest report) {
  std::string id = report.submission_id();
  unreported_[id] = report;
  reporting_[id] = true;
  struct Call {
    rpc::Context ctx;
    rpc::ReportEntrypointExitRequest req;
    rpc::ReportEntrypointExitReply reply;
  };
  auto* call = new Call;
  call->req = std::move(report);
  rpc::SetTimeout(&call->ctx, 5000);
  rpc::AsyncCall(*options_.clients->Stub<rpc::Gcs>(options_.gcs_address),
                 &rpc::Gcs::Stub::PrepareAsyncReportEntrypointExit, &call->ctx,
                 call->req, &call->reply,
                 [this, call, loop = options_.loop](grpc::Status s) {
                   loop->Post([this, call, s] {
                     std::string id = call->req.submission_id();
                     reporting_.erase(id);
                     if (s.ok()) unreported_.erase(id);
                     delete call;
                   });
                 });
}

void Entrypoints::KillAll() {
  for (const auto& [id, r] : running_) kill(-r.pid, SIGKILL);
  for (const auto& [id, r] : running_) waitpid(r.pid, nullptr, 0);
  running_.clear();
}

}  // namespace loom::raylet

// src/cli/commands.h
//
// The `loom` subcommands. Each returns the process exit code and prints
// what a person needs: addresses, how to connect, clear errors.
#ifndef LOOM_SRC_CLI_COMMANDS_H_
#define LOOM_SRC_CLI_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/gcs.pb.h"
#include "runtime/log_reader.h"

namespace loom::cli {

struct StartArgs {
  bool head = false;
  std::string address;
  int port = 6379;
  int raylet_port = 0;
  int num_cpus = -1;
  int num_gpus = -1;
  double gpu_memory = 0;
  int64_t memory = 0;
  int64_t object_store_memory = 0;
  std::string resources_json;
  std::vector<std::string> labels;
  // loom.serve's HTTP port on this node (the "serve_port" label); unset:
  // the port serve.start() names (8000 by default). 0: any free port.
  std::optional<int> serve_port;
  int64_t node_timeout_ms = 5000;
  std::string storage;            // head: "" (memory) or redis://...
  std::string metrics_sd_file;    // head: "" (its session directory)
  int dashboard_port = 8265;      // head: the job API (-1: none)
  std::string grafana_url;        // head: linked from the dashboard
  std::string prometheus_url;     // head: linked from the dashboard
  bool standby = false;           // head: loom-gcs alone, waiting for the lease
  std::string standby_addresses;  // head: its standbys, HOST:PORT,...
  std::string session_root;
  // The address this node's daemons advertise (one of this machine's);
  // PrimaryAddress() when empty. They listen on bind_address when set
  // (0.0.0.0: everywhere), else on it, and on 127.0.0.1 too.
  std::string node_ip;
  std::string bind_address;
  std::string token_file;  // empty: $LOOM_AUTH_TOKEN, else found or made
  bool no_auth = false;
  // When the head fences this node's raylet, it rejoins as a new node.
  bool restart_on_fence = false;
  // The raylet's memory monitor (loom-raylet's flags of the same names);
  // a threshold < 0 keeps the raylet's default.
  double memory_usage_threshold = -1;
  int64_t memory_monitor_limit_bytes = 0;
};

int Start(const StartArgs& args);
int Stop(const std::string& session_root);
// `loom tls init DIR --ip IP...`: see CreateClusterCerts (src/common/tls.h);
// this machine's address is named too.
int TlsInit(const std::string& dir, std::vector<std::string> ips);
// `path` made absolute against the working directory.
std::string Absolute(const std::string& path);
int Status(const std::string& session_root, const std::string& address);
int Memory(const std::string& session_root, const std::string& address);
// `loom list KIND`, `loom get KIND ID`, `loom summary KIND` (see
// runtime/state_api.h): rows as a table, JSON or YAML; notes on what a
// listing lacks go to stderr.
struct StateArgs {
  std::string session_root, address;
  std::string kind;
  std::vector<std::string> filters;  // key=value or key!=value
  int64_t limit = 100;
  bool detail = false;
  std::string format = "table";  // table, json, yaml
  std::string id;                // get
  std::string job;               // summary: one job (hex)
};
int List(const StateArgs& args);
// `loom timeline`: a Chrome trace of the tasks the head holds (one job's
// with args.job) written to `out`.
int Timeline(const StateArgs& args, const std::string& out);
int Get(const StateArgs& args);
int Summary(const StateArgs& args);

// `loom job submit|status|logs|stop|list|delete` (src/cli/job.cc): jobs
// through the head's HTTP API at `address` (http://HOST:PORT; default:
// $LOOM_DASHBOARD_ADDRESS, $RAY_ADDRESS, else this machine's head).
struct JobArgs {
  std::string command;  // submit, status, logs, stop, list, delete
  std::string session_root, address;
  std::string id;
  std::vector<std::string> entrypoint;  // submit: the words after --
  std::string working_dir, submission_id;
  std::string runtime_env_json, metadata_json, resources_json;
  double num_cpus = 0, num_gpus = 0;
  // The job's quota (0: no limit), docs/security.md.
  double max_cpus = 0, max_gpus = 0;
  int64_t max_object_store_bytes = 0, max_actors = 0, max_pending_tasks = 0;
  bool no_wait = false;
  bool follow = false;  // logs
};
int Job(const JobArgs& args);

// `loom logs`: every node's log files; with `file`, its contents on the
// node chosen (by id prefix or IP, else the only node that has it), or the
// output of a process (`pid` on that node, or an actor's): the last `tail`
// lines (-1: all), then, with `follow`, new lines as they come.
struct LogsArgs {
  std::string session_root, address;
  LogQuery query;
};
int Logs(const LogsArgs& args);

// loom serve ARGS...: runs `python -m loom.serve ARGS...` in its place.
int Serve(const std::vector<std::string>& args);

// `loom token create|list|revoke` (command): people's tokens, made with a
// role and a name (roles.h), listed, revoked by name.
struct TokenArgs {
  std::string command, name, role = "viewer", session_root, address;
};
int Token(const TokenArgs& args);

// `loom audit`: the head's audit log from `since` (a time, or how long ago),
// then, with `follow`, new entries as they come.
struct AuditArgs {
  std::string since, session_root, address;
  bool follow = false;
};
int Audit(const AuditArgs& args);

// Makes this process carry the token of the cluster at `address` (else the
// session root's): read from `token_file`, else $LOOM_AUTH_TOKEN, else this
// machine's session of that cluster.
absl::Status UseToken(const std::string& token_file,
                      const std::string& session_root,
                      const std::string& address);

// The head's address: `address`, else the session root's cluster.
absl::StatusOr<std::string> HeadAddress(const std::string& session_root,
                                        const std::string& address);
absl::StatusOr<rpc::GetClusterStatusReply> FetchStatus(const std::string& addr);

}  // namespace loom::cli

#endif  // LOOM_SRC_CLI_COMMANDS_H_

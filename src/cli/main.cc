// loom: start, stop and inspect clusters.
//
//   loom start --head --num-cpus 4       # head + raylet, detached
//   loom start --address 127.0.0.1:6379  # another raylet joins
//   loom status
//   loom stop
//   loom tls init DIR --ip 10.0.0.2  # then loom start --tls-dir DIR
//   loom token create --role viewer --name alice
//   loom audit --since 1h
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "src/cli/commands.h"
#include "src/common/tls.h"
#include "src/common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"loom: start, stop and inspect Loom clusters"};
  app.require_subcommand(1);
  app.set_version_flag("--version", loom::ToString(loom::ThisVersion()));
  loom::cli::StartArgs start;
  std::string session_root;
  std::string address;

  auto* start_cmd = app.add_subcommand("start", "Start a head, or join one");
  start_cmd->add_flag("--head", start.head, "Start the head (loom-gcs) here");
  start_cmd->add_option("--address", start.address,
                        "Join the head at HOST:PORT");
  start_cmd
      ->add_option("--port", start.port, "Head port (default 6379; 0: any)")
      ->check(CLI::Range(0, 65535));
  start_cmd->add_option("--raylet-port", start.raylet_port)
      ->check(CLI::Range(0, 65535));
  start_cmd->add_option("--num-cpus", start.num_cpus)
      ->check(CLI::Range(0, 100000));
  start_cmd
      ->add_option("--num-gpus", start.num_gpus,
                   "GPUs to offer (default: those NVML finds)")
      ->check(CLI::Range(-1, 1024));
  start_cmd
      ->add_option("--gpu-memory", start.gpu_memory,
                   "Bytes of memory per GPU (default: NVML's)")
      ->check(CLI::Range(0.0, 1e13));
  start_cmd->add_option("--memory", start.memory, "Bytes of memory to offer");
  start_cmd->add_option(
      "--object-store-memory", start.object_store_memory,
      "Bytes of shared memory for objects (default: 30% of available)");
  start_cmd->add_option("--resources", start.resources_json,
                        "Custom resources as JSON, e.g. '{\"accel\": 2}'");
  start_cmd->add_option("--labels", start.labels, "Node labels, k=v");
  start_cmd
      ->add_option("--serve-port", start.serve_port,
                   "loom.serve's HTTP port on this node (default: the port "
                   "serve.start() names, 8000 unless told; 0: any free "
                   "port, which `loom serve status` lists)")
      ->check(CLI::Range(0, 65535));
  start_cmd->add_option("--node-timeout-ms", start.node_timeout_ms,
                        "Head: a node silent this long is dead");
  start_cmd
      ->add_option(
          "--storage", start.storage,
          "Head: where it keeps its tables: memory (default) or "
          "redis://[:PASSWORD@]HOST:PORT[/DB], so that a head restarted on the "
          "same port finds its actors, jobs and placement groups again (a "
          "password is better given as $LOOM_STORAGE: argv is public)")
      ->envname("LOOM_STORAGE");
  start_cmd->add_flag(
      "--standby", start.standby,
      "Head: a standby on --storage redis://... and a fixed --port; it "
      "serves once the active head stops renewing its lease (clients pass "
      "--address ACTIVE:PORT,STANDBY:PORT)");
  start_cmd->add_option(
      "--standby-addresses", start.standby_addresses,
      "Head: its standby heads, HOST:PORT[,HOST:PORT]: this node and the "
      "nodes that join follow a takeover");
  start_cmd
      ->add_option("--dashboard-port", start.dashboard_port,
                   "Head: the job submission HTTP API's port (default 8265, "
                   "Ray's; 0: any free port; -1: none). If it is in use the "
                   "head warns and runs without it")
      ->check(CLI::Range(-1, 65535));
  start_cmd->add_option("--grafana-url", start.grafana_url,
                        "Head: your Grafana's URL, linked from the dashboard "
                        "(default: $LOOM_GRAFANA_URL)");
  start_cmd->add_option("--prometheus-url", start.prometheus_url,
                        "Head: your Prometheus' URL, linked from the "
                        "dashboard (default: $LOOM_PROMETHEUS_URL)");
  start_cmd->add_option(
      "--metrics-sd-file", start.metrics_sd_file,
      "Head: where it keeps the Prometheus file_sd list of every metrics "
      "endpoint (default: <session dir>/prometheus_sd.json)");
  start_cmd->add_option(
      "--node-ip-address", start.node_ip,
      "This node's address, one of this machine's: its daemons advertise it "
      "and listen on it and on 127.0.0.1 (default: the source address of "
      "the default route, else 127.0.0.1)");
  start_cmd->add_option("--bind-address", start.bind_address,
                        "Listen on this address instead (0.0.0.0: all of "
                        "this machine's), still advertising the node IP");
  start_cmd->add_option("--auth-token-file", start.token_file,
                        "The cluster token (default: $LOOM_AUTH_TOKEN; a "
                        "head makes one, a joining node finds this "
                        "machine's)");
  start_cmd->add_flag("--no-auth", start.no_auth,
                      "No cluster token (only with loopback addresses)");
  std::string tls_dir;
  start_cmd->add_option(
      "--tls-dir", tls_dir,
      "Mutual TLS on every link, with ca.pem, node.pem and node.key from "
      "DIR (made by `loom tls init`; default: $LOOM_TLS_DIR)");
  start_cmd->add_flag(
      "--restart-on-fence", start.restart_on_fence,
      "When the head declared this node dead and it comes back, kill its "
      "workers and rejoin as a new node (default: its raylet exits)");
  start_cmd
      ->add_option("--memory-usage-threshold", start.memory_usage_threshold,
                   "Fraction of the memory limit above which the raylet's "
                   "memory monitor kills a worker; 0 or 1: off (default "
                   "0.95)")
      ->check(CLI::Range(0.0, 1.0));
  start_cmd
      ->add_option("--memory-monitor-limit-bytes",
                   start.memory_monitor_limit_bytes,
                   "The memory monitor's limit, measured against the "
                   "raylet's workers' memory (default: the node's or its "
                   "container's limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));
  start_cmd->add_option(
      "--session-root", session_root,
      "Root for session directories (default $LOOM_SESSION_ROOT or /tmp/loom)");

  auto* tls_cmd = app.add_subcommand("tls", "TLS certificates");
  tls_cmd->require_subcommand(1);
  auto* tls_init = tls_cmd->add_subcommand(
      "init", "Make a cluster CA and the nodes' certificate in DIR");
  std::vector<std::string> tls_ips;
  tls_init->add_option("dir", tls_dir, "Where (made if missing)")->required();
  tls_init->add_option("--ip", tls_ips,
                       "A node's IP address, for the certificate's subject "
                       "alternative names (127.0.0.1 and localhost always)");

  auto* stop_cmd =
      app.add_subcommand("stop", "Stop what this session root started");
  stop_cmd->add_option("--session-root", session_root);

  auto* status_cmd =
      app.add_subcommand("status", "Nodes, resources and demands");
  status_cmd->add_option("--session-root", session_root);
  status_cmd->add_option("--address", address,
                         "Head HOST:PORT (default: this root's)");

  auto* memory_cmd = app.add_subcommand("memory", "Object store use per node");
  memory_cmd->add_option("--session-root", session_root);
  memory_cmd->add_option("--address", address,
                         "Head HOST:PORT (default: this root's)");

  std::string token_file;
  for (auto* cmd : {status_cmd, memory_cmd}) {
    cmd->add_option("--auth-token-file", token_file,
                    "The cluster token (default: $LOOM_AUTH_TOKEN, else this "
                    "machine's session of that cluster)");
  }

  loom::cli::StateArgs state;
  const std::vector<std::string> kinds = {
      "tasks", "actors",  "objects",         "nodes",
      "jobs",  "workers", "placement-groups"};
  auto* list_cmd =
      app.add_subcommand("list",
                         "List tasks, actors, objects, nodes, jobs, workers or "
                         "placement groups");
  list_cmd
      ->add_option("kind", state.kind,
                   "tasks | actors | objects | nodes "
                   "| jobs | workers | "
                   "placement-groups")
      ->required()
      ->check(CLI::IsMember(kinds));
  list_cmd->add_option("--filter,-f", state.filters,
                       "key=value or key!=value on a column (repeatable; ids "
                       "match by prefix)");
  list_cmd->add_option("--limit", state.limit, "At most this many rows")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  list_cmd->add_flag("--detail", state.detail, "Every column");
  auto* get_cmd =
      app.add_subcommand("get", "One task, actor, node, ... by id (prefix)");
  get_cmd->add_option("kind", state.kind, "tasks | actors | ...")
      ->required()
      ->check(CLI::IsMember(kinds));
  get_cmd->add_option("id", state.id, "Its id, or a prefix of it")->required();
  auto* summary_cmd = app.add_subcommand(
      "summary",
      "Tasks per function (states, run-time percentiles), actors "
      "per class, objects per node");
  summary_cmd->add_option("kind", state.kind, "tasks | actors | objects")
      ->required()
      ->check(CLI::IsMember({"tasks", "actors", "objects"}));
  summary_cmd->add_option("--job-id", state.job, "Only this job (tasks)");
  std::string timeline_out = "loom-timeline.json";
  auto* timeline_cmd = app.add_subcommand(
      "timeline",
      "Write a Chrome trace of the tasks the head holds (open it "
      "in Perfetto or chrome://tracing)");
  timeline_cmd->add_option("--job-id", state.job, "Only this job's tasks");
  timeline_cmd->add_option("-o,--output", timeline_out,
                           "The file (default loom-timeline.json)");
  for (auto* cmd : {list_cmd, get_cmd, summary_cmd}) {
    cmd->add_option("--format", state.format, "table | json | yaml")
        ->check(CLI::IsMember({"table", "json", "yaml"}));
  }
  for (auto* cmd : {list_cmd, get_cmd, summary_cmd, timeline_cmd}) {
    cmd->add_option("--session-root", session_root);
    cmd->add_option("--address", address,
                    "Head HOST:PORT (default: this root's)");
    cmd->add_option("--auth-token-file", token_file, "The cluster token");
  }

  loom::cli::LogsArgs logs;
  auto* logs_cmd = app.add_subcommand(
      "logs", "List every node's log files, or print one (through the head)");
  logs_cmd->add_option("file", logs.query.file,
                       "A file `loom logs` listed (without it: the list)");
  logs_cmd->add_option("--node-id", logs.query.node_id,
                       "The node (its id, or a prefix of it)");
  logs_cmd->add_option("--node-ip", logs.query.node_ip, "The node, by IP");
  logs_cmd->add_option("--actor-id", logs.query.actor_id,
                       "What this actor's process printed");
  logs_cmd->add_option("--task-id", logs.query.task_id,
                       "What the worker that ran this task printed");
  logs_cmd->add_option("--worker-id", logs.query.worker_id,
                       "What this worker process printed");
  logs_cmd
      ->add_option("--pid", logs.query.pid,
                   "What this worker process printed (on the node named)")
      ->check(CLI::PositiveNumber);
  logs_cmd->add_option("--tail", logs.query.tail, "Only the last N lines")
      ->check(CLI::NonNegativeNumber);
  logs_cmd->add_flag("--follow,-f", logs.query.follow,
                     "Keep printing new lines as they come");
  logs_cmd->add_option("--session-root", session_root);
  logs_cmd->add_option("--address", address,
                       "Head HOST:PORT (default: this root's)");
  logs_cmd->add_option("--auth-token-file", token_file, "The cluster token");

  loom::cli::JobArgs job;
  auto* job_cmd = app.add_subcommand(
      "job", "Submit jobs to a cluster and follow them (the head's HTTP API)");
  job_cmd->require_subcommand(1);
  auto* job_submit = job_cmd->add_subcommand(
      "submit",
      "Run a command as a driver in the cluster: loom job submit "
      "[options] -- python script.py");
  job_submit->add_option("entrypoint", job.entrypoint, "The command, after --")
      ->required();
  job_submit->add_option("--working-dir", job.working_dir,
                         "A directory to upload; the command runs in a copy "
                         "of it");
  job_submit->add_option("--submission-id", job.submission_id,
                         "The job's id (submitting the same id again returns "
                         "that job, never a second)");
  job_submit->add_option("--entrypoint-num-cpus", job.num_cpus)
      ->check(CLI::NonNegativeNumber);
  job_submit->add_option("--entrypoint-num-gpus", job.num_gpus)
      ->check(CLI::NonNegativeNumber);
  job_submit
      ->add_option("--max-cpus", job.max_cpus,
                   "The job's quota: CPUs its tasks and actors hold at "
                   "once (more wait)")
      ->check(CLI::NonNegativeNumber);
  job_submit->add_option("--max-gpus", job.max_gpus, "Likewise, GPUs")
      ->check(CLI::NonNegativeNumber);
  job_submit
      ->add_option("--max-object-store-bytes", job.max_object_store_bytes,
                   "Bytes its objects hold in the stores (puts past it "
                   "fail)")
      ->check(CLI::NonNegativeNumber);
  job_submit
      ->add_option("--max-actors", job.max_actors,
                   "Actors alive at once (more are refused)")
      ->check(CLI::NonNegativeNumber);
  job_submit
      ->add_option("--max-pending-tasks", job.max_pending_tasks,
                   "Tasks its driver has pending (submitting more "
                   "waits)")
      ->check(CLI::NonNegativeNumber);
  job_submit->add_option("--entrypoint-resources", job.resources_json,
                         "Custom resources as JSON, e.g. '{\"accel\": 1}'");
  job_submit->add_option("--runtime-env-json", job.runtime_env_json,
                         "e.g. '{\"env_vars\": {\"K\": \"v\"}}'");
  job_submit->add_option("--metadata-json", job.metadata_json);
  job_submit->add_flag("--no-wait", job.no_wait,
                       "Return once submitted (default: print its output "
                       "until it ends; exit 1 unless it succeeded)");
  auto* job_status = job_cmd->add_subcommand("status", "A job's status");
  auto* job_logs = job_cmd->add_subcommand("logs", "A job's output");
  job_logs->add_flag("--follow,-f", job.follow, "Until the job ends");
  auto* job_stop = job_cmd->add_subcommand("stop", "Stop a job");
  auto* job_delete =
      job_cmd->add_subcommand("delete", "Forget a job that ended");
  auto* job_list = job_cmd->add_subcommand("list", "Every job");
  for (auto* cmd : {job_status, job_logs, job_stop, job_delete}) {
    cmd->add_option("id", job.id, "The submission id")->required();
  }
  for (auto* cmd :
       {job_submit, job_status, job_logs, job_stop, job_delete, job_list}) {
    cmd->add_option("--address", job.address,
                    "The job API, http://HEAD:8265 (default: "
                    "$LOOM_DASHBOARD_ADDRESS, $RAY_ADDRESS, else this "
                    "machine's head)");
    cmd->add_option("--session-root", session_root);
  }

  loom::cli::TokenArgs token;
  auto* token_cmd = app.add_subcommand(
      "token", "People's tokens, each with a role (admin only)");
  token_cmd->require_subcommand(1);
  auto* token_create = token_cmd->add_subcommand(
      "create", "Make a token; it is printed once, as the last line");
  token_create
      ->add_option("--role", token.role,
                   "viewer (reads state and logs), submitter (also runs "
                   "jobs; kills only its own jobs' actors) or admin")
      ->check(CLI::IsMember({"viewer", "submitter", "admin"}));
  token_create->add_option("--name", token.name,
                           "Its name in `loom token list` and the audit log "
                           "(default: ROLE-xxxxxx)");
  auto* token_list = token_cmd->add_subcommand("list", "Every token");
  auto* token_revoke =
      token_cmd->add_subcommand("revoke", "Stop a token from working");
  token_revoke->add_option("name", token.name, "Its name")->required();
  loom::cli::AuditArgs audit;
  auto* audit_cmd = app.add_subcommand(
      "audit", "The head's audit log, JSON lines (admin only)");
  audit_cmd->add_option("--since", audit.since,
                        "From this time (2026-12-04T10:00:00Z) or this long "
                        "ago (30m, 2h)");
  audit_cmd->add_flag("--follow,-f", audit.follow,
                      "Keep printing new entries as they come");
  for (auto* cmd : {token_create, token_list, token_revoke, audit_cmd}) {
    cmd->add_option("--session-root", session_root);
    cmd->add_option("--address", address,
                    "Head HOST:PORT (default: this root's)");
    cmd->add_option("--auth-token-file", token_file,
                    "An admin's token (default: $LOOM_AUTH_TOKEN, else "
                    "this machine's cluster token)");
  }

  auto* serve_cmd = app.add_subcommand(
      "serve",
      "Serve models over HTTP (loom.serve, in Python): run MODULE:APP, "
      "deploy CONFIG, status, shutdown; see `loom serve --help`");
  serve_cmd->prefix_command();
  serve_cmd->set_help_flag();  // --help goes to Python too

  CLI11_PARSE(app, argc, argv);
  if (serve_cmd->parsed()) return loom::cli::Serve(serve_cmd->remaining());
  if (job_cmd->parsed()) {
    for (auto* cmd :
         {job_submit, job_status, job_logs, job_stop, job_delete, job_list}) {
      if (cmd->parsed()) job.command = cmd->get_name();
    }
    job.session_root = session_root;
    return loom::cli::Job(job);
  }
  if (tls_init->parsed()) return loom::cli::TlsInit(tls_dir, tls_ips);
  start.session_root = session_root;
  if (start_cmd->parsed()) {
    if (!tls_dir.empty()) {
      // The daemons it starts inherit it; so does every process they start.
      setenv(loom::kTlsDirEnv, loom::cli::Absolute(tls_dir).c_str(), 1);
    }
    return loom::cli::Start(start);
  }
  if (stop_cmd->parsed()) return loom::cli::Stop(session_root);
  if (auto s = loom::cli::UseToken(token_file, session_root, address);
      !s.ok()) {
    std::fprintf(stderr, "loom: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (status_cmd->parsed()) return loom::cli::Status(session_root, address);
  if (memory_cmd->parsed()) return loom::cli::Memory(session_root, address);
  state.session_root = session_root;
  state.address = address;
  if (list_cmd->parsed()) return loom::cli::List(state);
  if (get_cmd->parsed()) return loom::cli::Get(state);
  if (summary_cmd->parsed()) return loom::cli::Summary(state);
  if (timeline_cmd->parsed()) {
    return loom::cli::Timeline(state, timeline_out);
  }
  if (token_cmd->parsed()) {
    for (auto* cmd : {token_create, token_list, token_revoke}) {
      if (cmd->parsed()) token.command = cmd->get_name();
    }
    token.session_root = session_root;
    token.address = address;
    return loom::cli::Token(token);
  }
  if (audit_cmd->parsed()) {
    audit.session_root = session_root;
    audit.address = address;
    return loom::cli::Audit(audit);
  }
  if (logs_cmd->parsed()) {
    logs.session_root = session_root;
    logs.address = address;
    return loom::cli::Logs(logs);
  }
  return 2;
}

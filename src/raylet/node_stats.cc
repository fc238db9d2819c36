#include "src/raylet/node_stats.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace loom::raylet {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first line of /proc/stat: "cpu user nice system idle iowait irq ...".
NodeStats::CpuTimes ReadCpu(const std::string& proc) {
  NodeStats::CpuTimes t;
  std::string text = ReadFile(proc + "/stat");
  std::string_view line(text);
  line = line.substr(0, line.find('\n'));
  std::vector<absl::string_view> fields = absl::StrSplit(
      absl::string_view(line.data(), line.size()), ' ', absl::SkipEmpty());
  if (fields.empty() || fields[0] != "cpu") return t;
  for (size_t i = 1; i < fields.size() && i <= 8; ++i) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(fields[i], &v)) continue;
    t.total += v;
    if (i != 4 && i != 5) t.busy += v;  // idle and iowait are not busy
  }
  return t;
}

// MemTotal and MemAvailable from /proc/meminfo, in bytes.
std::pair<uint64_t, uint64_t> ReadMemory(const std::string& proc) {
  uint64_t total = 0, available = 0;
  std::string text = ReadFile(proc + "/meminfo");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    uint64_t* into = absl::ConsumePrefix(&line, "MemTotal:")       ? &total
                     : absl::ConsumePrefix(&line, "MemAvailable:") ? &available
                                                                   : nullptr;
    if (into == nullptr) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, " kB");
    if (absl::SimpleAtoi(line, into)) *into *= 1024;
  }
  return {total, available};
}

// Bytes received and sent over every interface but loopback, from
// /proc/net/dev ("  eth0: rx_bytes rx_packets ... (8 fields) tx_bytes ...").
NodeStats::Network ReadNetwork(const std::string& proc) {
  NodeStats::Network n;
  std::string text = ReadFile(proc + "/net/dev");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::StripAsciiWhitespace(line.substr(0, colon)) == "lo") continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line.substr(colon + 1), ' ', absl::SkipEmpty());
    uint64_t rx = 0, tx = 0;
    if (f.size() >= 9 && absl::SimpleAtoi(f[0], &rx) &&
        absl::SimpleAtoi(f[8], &tx)) {
      n.received += rx;
      n.sent += tx;
    }
  }
  return n;
}

prometheus::MetricFamily Gauge(std::string name, std::string help,
                               double value) {
  prometheus::ClientMetric m;
  m.gauge.value = value;
  return {std::move(name),
          std::move(help),
          prometheus::MetricType::Gauge,
          {std::move(m)}};
}

// The session filesystem's size and use, bytes; false when unknown.
bool ReadDisk(const std::string& path, double* total, double* used,
              double* free) {
  struct statvfs fs {};
  if (statvfs(path.empty() ? "/" : path.c_str(), &fs) != 0) return false;
  double block = static_cast<double>(fs.f_frsize);
  *total = fs.f_blocks * block;
  *free = fs.f_bavail * block;
  *used = *total - fs.f_bfree * block;
  return true;
}

}  // namespace

NodeStats::NodeStats(Options options)
    : options_(std::move(options)), gpus_(GpuMonitor::Open()) {}
NodeStats::~NodeStats() = default;

void NodeStats::Fill(rpc::HostStats* out) {
  CpuTimes cpu = ReadCpu(options_.proc);
  {
    absl::MutexLock lock(&mu_);
    uint64_t total = cpu.total - std::min(cpu.total, last_fill_cpu_.total);
    uint64_t busy = cpu.busy - std::min(cpu.busy, last_fill_cpu_.busy);
    out->set_cpu_percent(total > 0 ? 100.0 * busy / total : 0);
    last_fill_cpu_ = cpu;
  }
  out->set_cpus(std::thread::hardware_concurrency());
  auto [mem_total, mem_available] = ReadMemory(options_.proc);
  out->set_mem_total(mem_total);
  out->set_mem_used(mem_total - std::min(mem_total, mem_available));
  double total = 0, used = 0, free = 0;
  if (ReadDisk(options_.disk_path, &total, &used, &free)) {
    out->set_disk_total(total);
    out->set_disk_used(used);
  }
  if (!gpus_) return;
  for (const GpuMonitor::Sample& g : gpus_->Read()) {
    rpc::GpuStats* gpu = out->add_gpus();
    gpu->set_index(g.index);
    gpu->set_name(g.name);
    gpu->set_utilization_percent(g.utilization_percent);
    gpu->set_memory_used(g.memory_used);
    gpu->set_memory_total(g.memory_total);
  }
}

MetricFamilies NodeStats::Collect() {
  CpuTimes cpu = ReadCpu(options_.proc);
  Network net = ReadNetwork(options_.proc);
  auto [mem_total, mem_available] = ReadMemory(options_.proc);
  absl::Time now = absl::Now();
  double cpu_percent = 0, send_speed = 0, receive_speed = 0;
  {
    absl::MutexLock lock(&mu_);
    uint64_t total = cpu.total - std::min(cpu.total, last_cpu_.total);
    uint64_t busy = cpu.busy - std::min(cpu.busy, last_cpu_.busy);
    if (total > 0) cpu_percent = 100.0 * busy / total;
    double seconds = absl::ToDoubleSeconds(now - last_at_);
    if (last_at_ != absl::InfinitePast() && seconds > 0) {
      send_speed = (net.sent - std::min(net.sent, last_net_.sent)) / seconds;
      receive_speed =
          (net.received - std::min(net.received, last_net_.received)) / seconds;
    }
    last_cpu_ = cpu;
    last_net_ = net;
    last_at_ = now;
  }
  MetricFamilies out;
  out.push_back(Gauge("loom_node_cpu_utilization",
                      "CPU busy, percent of all cores, since the last scrape",
                      cpu_percent));
  out.push_back(Gauge("loom_node_cpu_count", "Logical CPUs",
                      std::thread::hardware_concurrency()));
  out.push_back(
      Gauge("loom_node_mem_total", "Memory, bytes", double(mem_total)));
  out.push_back(Gauge("loom_node_mem_available",
                      "Memory available to new processes, bytes",
                      double(mem_available)));
  out.push_back(Gauge("loom_node_mem_used", "Memory in use, bytes",
                      double(mem_total - std::min(mem_total, mem_available))));
  if (double total = 0, used = 0, free = 0;
      ReadDisk(options_.disk_path, &total, &used, &free)) {
    out.push_back(Gauge("loom_node_disk_usage",
                        "Bytes used on the session's filesystem", used));
    out.push_back(Gauge("loom_node_disk_free",
                        "Bytes free on the session's filesystem", free));
    out.push_back(Gauge("loom_node_disk_utilization_percentage",
                        "Percent used of the session's filesystem",
                        total > 0 ? 100.0 * used / total : 0));
  }
  out.push_back(Gauge("loom_node_network_received",
                      "Bytes received since boot (all but loopback)",
                      double(net.received)));
  out.push_back(Gauge("loom_node_network_sent",
                      "Bytes sent since boot (all but loopback)",
                      double(net.sent)));
  out.push_back(Gauge("loom_node_network_receive_speed",
                      "Bytes per second received since the last scrape",
                      receive_speed));
  out.push_back(Gauge("loom_node_network_send_speed",
                      "Bytes per second sent since the last scrape",
                      send_speed));
  if (gpus_) {
    prometheus::MetricFamily util{"loom_node_gpus_utilization",
                                  "GPU busy, percent (NVML)",
                                  prometheus::MetricType::Gauge,
                                  {}};
    prometheus::MetricFamily used{"loom_node_gram_used",
                                  "GPU memory in use, MB (NVML)",
                                  prometheus::MetricType::Gauge,
                                  {}};
    prometheus::MetricFamily available{"loom_node_gram_available",
                                       "GPU memory free, MB (NVML)",
                                       prometheus::MetricType::Gauge,
                                       {}};
    for (const GpuMonitor::Sample& g : gpus_->Read()) {
      std::vector<prometheus::ClientMetric::Label> labels = {
          MetricLabel("gpu_index", std::to_string(g.index)),
          MetricLabel("gpu_name", g.name)};
      prometheus::ClientMetric m;
      m.label = labels;
      m.gauge.value = g.utilization_percent;
      util.metric.push_back(m);
      m.gauge.value = g.memory_used / 1e6;
      used.metric.push_back(m);
      m.gauge.value =
          (g.memory_total - std::min(g.memory_total, g.memory_used)) / 1e6;
      available.metric.push_back(m);
    }
    out.push_back(std::move(util));
    out.push_back(std::move(used));
    out.push_back(std::move(available));
  }
  return out;
}

}  // namespace loom::raylet

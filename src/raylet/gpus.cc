#include "src/raylet/gpus.h"

#include <dlfcn.h>

#include <cstdlib>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace loom::raylet {
namespace {

// The few NVML entry points used, by their C signatures (nvml.h).
using NvmlDevice = void*;
struct NvmlMemory {
  unsigned long long total, free, used;
};
using InitFn = int (*)();
using CountFn = int (*)(unsigned*);
using HandleFn = int (*)(unsigned, NvmlDevice*);
using NameFn = int (*)(NvmlDevice, char*, unsigned);
using MemoryFn = int (*)(NvmlDevice, NvmlMemory*);
struct NvmlUtilization {
  unsigned gpu, memory;  // percent of the last sample period
};
using UtilizationFn = int (*)(NvmlDevice, NvmlUtilization*);

// Indices named by CUDA_VISIBLE_DEVICES; nullopt when unset or not indices.
std::optional<std::vector<unsigned>> VisibleDevices() {
  const char* env = std::getenv("CUDA_VISIBLE_DEVICES");
  if (env == nullptr) return std::nullopt;
  std::vector<unsigned> out;
  for (absl::string_view part : absl::StrSplit(env, ',', absl::SkipEmpty())) {
    unsigned i = 0;
    if (!absl::SimpleAtoi(part, &i)) return std::nullopt;  // UUIDs
    out.push_back(i);
  }
  return out;
}

}  // namespace

// NVML loaded and initialised, and the visible GPUs' handles.
struct Nvml {
  void* lib = nullptr;
  InitFn shutdown = nullptr;
  NameFn name = nullptr;
  MemoryFn memory = nullptr;
  UtilizationFn utilization = nullptr;  // may be missing
  std::vector<NvmlDevice> devices;

  // False, with *why, when there is no usable NVML.
  bool Open(std::string* why) {
    lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      *why = "no NVIDIA driver (libnvidia-ml.so.1 not found)";
      return false;
    }
    auto sym = [&](const char* s) { return dlsym(lib, s); };
    auto init = reinterpret_cast<InitFn>(sym("nvmlInit_v2"));
    shutdown = reinterpret_cast<InitFn>(sym("nvmlShutdown"));
    auto count = reinterpret_cast<CountFn>(sym("nvmlDeviceGetCount_v2"));
    auto handle =
        reinterpret_cast<HandleFn>(sym("nvmlDeviceGetHandleByIndex_v2"));
    name = reinterpret_cast<NameFn>(sym("nvmlDeviceGetName"));
    memory = reinterpret_cast<MemoryFn>(sym("nvmlDeviceGetMemoryInfo"));
    utilization =
        reinterpret_cast<UtilizationFn>(sym("nvmlDeviceGetUtilizationRates"));
    if (!init || !shutdown || !count || !handle || !name || !memory) {
      *why = "libnvidia-ml.so.1 lacks the NVML functions needed";
      shutdown = nullptr;
      return false;
    }
    if (int rc = init(); rc != 0) {
      *why = absl::StrCat("nvmlInit failed (NVML error ", rc, ")");
      shutdown = nullptr;
      return false;
    }
    unsigned n = 0;
    if (int rc = count(&n); rc != 0) {
      *why = absl::StrCat("nvmlDeviceGetCount failed (NVML error ", rc, ")");
      n = 0;
    }
    std::vector<unsigned> indices;
    if (auto visible = VisibleDevices()) {
      for (unsigned i : *visible) {
        if (i < n) indices.push_back(i);
      }
    } else {
      for (unsigned i = 0; i < n; ++i) indices.push_back(i);
    }
    for (unsigned i : indices) {
      NvmlDevice dev = nullptr;
      if (handle(i, &dev) == 0) devices.push_back(dev);
    }
    if (devices.empty() && why->empty()) *why = "NVML reports no GPUs";
    return !devices.empty();
  }

  ~Nvml() {
    if (shutdown) shutdown();
    if (lib) dlclose(lib);
  }
};

std::vector<GpuInfo> DiscoverGpus(std::string* why) {
  Nvml nvml;
  std::vector<GpuInfo> gpus;
  if (!nvml.Open(why)) return gpus;
  for (NvmlDevice dev : nvml.devices) {
    GpuInfo g;
    char buf[96] = {0};
    if (nvml.name(dev, buf, sizeof(buf)) == 0) g.name = buf;
    NvmlMemory mem{};
    if (nvml.memory(dev, &mem) == 0) g.memory_bytes = mem.total;
    gpus.push_back(std::move(g));
  }
  return gpus;
}

std::unique_ptr<GpuMonitor> GpuMonitor::Open() {
  auto nvml = std::make_unique<Nvml>();
  std::string why;
  if (!nvml->Open(&why)) return nullptr;
  return std::unique_ptr<GpuMonitor>(new GpuMonitor(std::move(nvml)));
}

GpuMonitor::GpuMonitor(std::unique_ptr<Nvml> nvml) : nvml_(std::move(nvml)) {}
GpuMonitor::~GpuMonitor() = default;

std::vector<GpuMonitor::Sample> GpuMonitor::Read() {
  absl::MutexLock lock(&mu_);
  std::vector<Sample> out;
  for (size_t i = 0; i < nvml_->devices.size(); ++i) {
    NvmlDevice dev = nvml_->devices[i];
    Sample s;
    s.index = static_cast<int>(i);
    char buf[96] = {0};
    if (nvml_->name(dev, buf, sizeof(buf)) == 0) s.name = buf;
    NvmlMemory mem{};
    if (nvml_->memory(dev, &mem) == 0) {
      s.memory_used = mem.used;
      s.memory_total = mem.total;
    }
    NvmlUtilization util{};
    if (nvml_->utilization && nvml_->utilization(dev, &util) == 0) {
      s.utilization_percent = util.gpu;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::map<std::string, std::string> GpuLabels(const std::vector<GpuInfo>& gpus) {
  std::map<std::string, std::string> labels;
  if (gpus.empty()) return labels;
  const GpuInfo& g = gpus[0];
  labels["gpu_model"] = g.name;
  // "NVIDIA H100 80GB HBM3" -> "H100", "Tesla V100-SXM2-16GB" -> "V100".
  absl::string_view model = g.name;
  absl::ConsumePrefix(&model, "NVIDIA ");
  absl::ConsumePrefix(&model, "Tesla ");
  absl::ConsumePrefix(&model, "GeForce ");
  std::string first(model.substr(0, model.find_first_of(" -")));
  labels["accelerator_type"] = first.empty() ? g.name : first;
  if (g.memory_bytes > 0) labels["gpu_memory"] = std::to_string(g.memory_bytes);
  return labels;
}

}  // namespace loom::raylet

// src/raylet/gpus.h
//
// Finding this machine's GPUs: NVML, loaded at run time (never linked), so
// a machine without the NVIDIA driver runs with no GPUs. When
// CUDA_VISIBLE_DEVICES is set (to indices), only those GPUs count.
//
//   std::string why;
//   std::vector<GpuInfo> gpus = DiscoverGpus(&why);  // empty: `why` says
//   auto monitor = GpuMonitor::Open();  // null: no GPUs to watch
//   for (const auto& g : monitor->Read()) use(g.utilization_percent);
#ifndef LOOM_SRC_RAYLET_GPUS_H_
#define LOOM_SRC_RAYLET_GPUS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace loom::raylet {

struct GpuInfo {
  std::string name;  // "NVIDIA H100 80GB HBM3"
  uint64_t memory_bytes = 0;
};

std::vector<GpuInfo> DiscoverGpus(std::string* why);

struct Nvml;

// Samples the visible GPUs' utilisation and memory, NVML kept loaded.
// Thread-safe.
class GpuMonitor {
 public:
  struct Sample {
    int index = 0;  // among the visible GPUs
    std::string name;
    double utilization_percent = 0;
    uint64_t memory_used = 0, memory_total = 0;
  };
  // Null when there is no NVML or no visible GPU.
  static std::unique_ptr<GpuMonitor> Open();
  ~GpuMonitor();
  std::vector<Sample> Read();

 private:
  explicit GpuMonitor(std::unique_ptr<Nvml> nvml);
  absl::Mutex mu_;
  std::unique_ptr<Nvml> nvml_ ABSL_GUARDED_BY(mu_);
};

// The node labels for these GPUs: accelerator_type (the model's short name,
// "H100"), gpu_model (the full name) and gpu_memory (bytes per GPU).
std::map<std::string, std::string> GpuLabels(const std::vector<GpuInfo>& gpus);

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_GPUS_H_

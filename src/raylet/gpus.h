// src/raylet/gpus.h
//
// Finding this machine's GPUs: NVML, loaded at run time (never linked), so
// a machine without the NVIDIA driver runs with no GPUs. When
// CUDA_VISIBLE_DEVICES is set (to indices), only those GPUs count.
//
//   std::string why;
//   std::vector<GpuInfo> gpus = DiscoverGpus(&why);  // empty: `why` says
#ifndef LOOM_SRC_RAYLET_GPUS_H_
#define LOOM_SRC_RAYLET_GPUS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom::raylet {

struct GpuInfo {
  std::string name;  // "NVIDIA H100 80GB HBM3"
  uint64_t memory_bytes = 0;
};

std::vector<GpuInfo> DiscoverGpus(std::string* why);

// The node labels for these GPUs: accelerator_type (the model's short name,
// "H100"), gpu_model (the full name) and gpu_memory (bytes per GPU).
std::map<std::string, std::string> GpuLabels(const std::vector<GpuInfo>& gpus);

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_GPUS_H_

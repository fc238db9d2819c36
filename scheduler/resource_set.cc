#include "scheduler/resource_set.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loom {

std::string BundleResource(const std::string& name, const std::string& pg_hex,
                           int index) {
  if (index < 0) return absl::StrCat(name, "_group_", pg_hex);
  return absl::StrCat(name, "_group_", index, "_", pg_hex);
}

std::string BundleGroupHex(const std::string& name) {
  size_t at = name.find("_group_");
  if (at == std::string::npos) return "";
  size_t last = name.rfind('_');
  return last + 1 < name.size() ? name.substr(last + 1) : "";
}

std::string FixedPoint::ToString() const {
  if (IsWhole()) return absl::StrCat(raw_ / kScale);
  std::string s = absl::StrFormat("%.4f", ToDouble());
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

absl::StatusOr<ResourceSet> ResourceSet::FromMap(
    const std::map<std::string, double>& quantities) {
  ResourceSet set;
  for (const auto& [name, qty] : quantities) {
    if (name.empty()) return absl::InvalidArgumentError("empty resource name");
    if (!std::isfinite(qty) || qty < 0 || qty > kMaxQuantity) {
      return absl::InvalidArgumentError(
          absl::StrCat("resource '", name, "' has invalid quantity ", qty,
                       " (must be finite, >= 0 and <= 1e12)"));
    }
    FixedPoint fp = FixedPoint::FromDouble(qty);
    if (name == kGpu && fp > FixedPoint::FromInt(1) && !fp.IsWhole()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a GPU request above 1 must be whole, got ", qty,
          " (fractions share one GPU; whole requests take whole GPUs)"));
    }
    if (qty > 0 && fp.raw() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "resource '", name, "' quantity ", qty, " is below 0.0001"));
    }
    set.Set(name, fp);
  }
  return set;
}

FixedPoint ResourceSet::Get(const std::string& name) const {
  auto it = quantities_.find(name);
  return it == quantities_.end() ? FixedPoint() : it->second;
}

double ResourceSet::Cpus() const {
  double cpus = Get(kCpu).ToDouble();
  const std::string prefix = absl::StrCat(kCpu, "_group_");
  for (const auto& [name, quantity] : quantities_) {
    if (absl::StartsWith(name, prefix)) {
      cpus = std::max(cpus, quantity.ToDouble());
    }
  }
  return cpus;
}

void ResourceSet::Set(const std::string& name, FixedPoint value) {
  if (value == FixedPoint()) {
    quantities_.erase(name);
  } else {
    quantities_[name] = value;
  }
}

bool ResourceSet::Contains(const ResourceSet& other) const {
  for (const auto& [name, qty] : other.quantities_) {
    if (Get(name) < qty) return false;
  }
  return true;
}

void ResourceSet::Add(const ResourceSet& other) {
  for (const auto& [name, qty] : other.quantities_) Set(name, Get(name) + qty);
}

void ResourceSet::Subtract(const ResourceSet& other) {
  for (const auto& [name, qty] : other.quantities_) Set(name, Get(name) - qty);
}

std::map<std::string, double> ResourceSet::ToMap() const {
  std::map<std::string, double> out;
  for (const auto& [name, qty] : quantities_) out[name] = qty.ToDouble();
  return out;
}

std::string ResourceSet::ToString() const {
  std::map<std::string, FixedPoint> sorted(quantities_.begin(),
                                           quantities_.end());
  std::string out = "{";
  for (const auto& [name, qty] : sorted) {
    if (out.size() > 1) out += ", ";
    absl::StrAppend(&out, name, ": ", qty.ToString());
  }
  return out + "}";
}

}  // namespace loom

// Histogram: counts of observations in fixed buckets (each an upper bound, ascending), their sum and
// count, written in Prometheus' text format (cumulative `_bucket{le=...}` lines, `_sum`, `_count`).
// The scheduler's latency metrics and the ledger writer's commit latency use it; /metrics prints them.
//
// A value type: not synchronized (its owner guards it; a copy is a snapshot). The bounds are borrowed
// (a static array: they must outlive every copy).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nc {

class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);

  void observe(double v);
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  std::span<const double> bounds() const { return bounds_; }
  // Observations <= bounds()[i] (what Prometheus' bucket le="bounds[i]" holds).
  uint64_t cumulative(size_t i) const;

  // Appends the series of metric `name` (its _bucket lines, cumulative, then _sum and _count), each
  // with `labels` ("" or `a="x",b="y"`, no braces). The family's # HELP / # TYPE lines come first,
  // once per exposition: prometheus_header(name, "histogram", help).
  void append_prometheus(std::string& out, std::string_view name, std::string_view labels = "") const;

 private:
  std::span<const double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket; the last holds what is above every bound
  uint64_t count_ = 0;
  double sum_ = 0;
};

// "# HELP name help\n# TYPE name type\n": what starts a metric family in Prometheus' text format.
std::string prometheus_header(std::string_view name, std::string_view type, std::string_view help);

}  // namespace nc

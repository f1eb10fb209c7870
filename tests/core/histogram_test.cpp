// nc::Histogram: bucket placement (a value equal to a bound is in that bound's bucket), the count and
// sum, and the Prometheus text it writes.
#include "core/histogram.h"

#include <gtest/gtest.h>

namespace {

constexpr double kBounds[] = {0.001, 0.01, 0.1};

TEST(Histogram, CountsEachObservationInTheFirstBucketThatHoldsIt) {
  nc::Histogram h(kBounds);
  for (double v : {0.0005, 0.001, 0.002, 0.01, 0.05, 0.5, 7.0}) h.observe(v);
  EXPECT_EQ(h.count(), 7u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.0005 + 0.001 + 0.002 + 0.01 + 0.05 + 0.5 + 7.0);
  EXPECT_EQ(h.cumulative(0), 2u);  // 0.0005, 0.001 (le is inclusive)
  EXPECT_EQ(h.cumulative(1), 4u);  // + 0.002, 0.01
  EXPECT_EQ(h.cumulative(2), 5u);  // + 0.05
  EXPECT_EQ(h.cumulative(3), 7u);  // + the two above every bound (+Inf)
}

TEST(Histogram, WritesPrometheusTextWithCumulativeBuckets) {
  nc::Histogram h(kBounds);
  h.observe(0.0078125);  // sums exactly in binary
  h.observe(0.25);
  std::string out = nc::prometheus_header("x_seconds", "histogram", "Some latency.");
  h.append_prometheus(out, "x_seconds", "model_name=\"m\"");
  EXPECT_EQ(out,
            "# HELP x_seconds Some latency.\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{model_name=\"m\",le=\"0.001\"} 0\n"
            "x_seconds_bucket{model_name=\"m\",le=\"0.01\"} 1\n"
            "x_seconds_bucket{model_name=\"m\",le=\"0.1\"} 1\n"
            "x_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 2\n"
            "x_seconds_sum{model_name=\"m\"} 0.2578125\n"
            "x_seconds_count{model_name=\"m\"} 2\n");
  out.clear();
  nc::Histogram(kBounds).append_prometheus(out, "y");
  EXPECT_EQ(out,
            "y_bucket{le=\"0.001\"} 0\ny_bucket{le=\"0.01\"} 0\n"
            "y_bucket{le=\"0.1\"} 0\ny_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n");
}

}  // namespace

// The Prometheus text format of metrics::Registry: escapes, histogram series, ordering.
#include <gtest/gtest.h>

#include <limits>

#include "metrics/registry.h"

namespace onemcp::metrics {
namespace {

TEST(Metrics, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(escape_label_value(R"(a\b"c)"
                               "\nd"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(escape_help("x\\y\nz\""), "x\\\\y\\nz\"");  // HELP keeps quotes as they are
}

TEST(Metrics, ValuesAreShortestDecimalsOrInfinities) {
  EXPECT_EQ(format_value(1), "1");
  EXPECT_EQ(format_value(0.005), "0.005");
  EXPECT_EQ(format_value(2.5), "2.5");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Metrics, CounterRendersHelpTypeAndEscapedLabels) {
  Registry r;
  r.counter("onemcp_runs_total", "Tool calls\nby outcome", {"tool", "outcome"});
  r.add("onemcp_runs_total", {"run_py", "timeout"});
  r.add("onemcp_runs_total", {"run_py", "timeout"});
  r.add("onemcp_runs_total", {"run_js", "o\"k\\"});
  r.add("onemcp_runs_total", {"run_js", "ok"}, -1);  // ignored: counters never go down
  EXPECT_EQ(r.value("onemcp_runs_total", {"run_py", "timeout"}), 2);
  EXPECT_EQ(r.render(),
            "# HELP onemcp_runs_total Tool calls\\nby outcome\n"
            "# TYPE onemcp_runs_total counter\n"
            "onemcp_runs_total{tool=\"run_js\",outcome=\"o\\\"k\\\\\"} 1\n"
            "onemcp_runs_total{tool=\"run_py\",outcome=\"timeout\"} 2\n");
}

TEST(Metrics, HistogramHasCumulativeBucketsInfSumAndCount) {
  Registry r;
  r.histogram("onemcp_wait_seconds", "Wait", {"tool"}, {0.1, 1});
  r.observe("onemcp_wait_seconds", {"run_js"}, 0.05);
  r.observe("onemcp_wait_seconds", {"run_js"}, 0.1);  // le is inclusive
  r.observe("onemcp_wait_seconds", {"run_js"}, 0.5);
  r.observe("onemcp_wait_seconds", {"run_js"}, 7);
  EXPECT_EQ(r.render(),
            "# HELP onemcp_wait_seconds Wait\n"
            "# TYPE onemcp_wait_seconds histogram\n"
            "onemcp_wait_seconds_bucket{tool=\"run_js\",le=\"0.1\"} 2\n"
            "onemcp_wait_seconds_bucket{tool=\"run_js\",le=\"1\"} 3\n"
            "onemcp_wait_seconds_bucket{tool=\"run_js\",le=\"+Inf\"} 4\n"
            "onemcp_wait_seconds_sum{tool=\"run_js\"} 7.65\n"
            "onemcp_wait_seconds_count{tool=\"run_js\"} 4\n");
}

TEST(Metrics, HistogramWithoutLabelsStillNamesLe) {
  Registry r;
  r.histogram("h", "H", {}, {1});
  r.observe("h", {}, 2);
  EXPECT_NE(r.render().find("h_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n"), std::string::npos);
}

TEST(Metrics, GaugesAreReadWhenRenderedAndSorted) {
  Registry r;
  int calls = 0;
  r.gauge("onemcp_upstreams", "Upstreams by state", {"state"}, [&] {
    ++calls;
    return std::vector<Sample>{{{"ready"}, 2}, {{"backoff"}, 1}};
  });
  r.gauge("onemcp_runs_in_flight", "Runs", {}, [] { return std::vector<Sample>{{{}, 3}}; });
  EXPECT_EQ(r.render(),
            "# HELP onemcp_upstreams Upstreams by state\n"
            "# TYPE onemcp_upstreams gauge\n"
            "onemcp_upstreams{state=\"backoff\"} 1\n"
            "onemcp_upstreams{state=\"ready\"} 2\n"
            "# HELP onemcp_runs_in_flight Runs\n"
            "# TYPE onemcp_runs_in_flight gauge\n"
            "onemcp_runs_in_flight 3\n");
  EXPECT_EQ(calls, 1);
}

TEST(Metrics, DeclaringANameTwiceIsABug) {
  Registry r;
  r.counter("c", "C");
  EXPECT_DEATH(r.counter("c", "C"), "declared twice");
  EXPECT_DEATH(r.counter("bad name", "C"), "invalid metric name");
}

}  // namespace
}  // namespace onemcp::metrics

// metrics/registry.h — counters, histograms and gauges for operators, rendered in Prometheus'
// text exposition format 0.0.4 (GET /metrics). Families are declared once, then updated by label
// values; gauges are read from their owner when rendered, so nothing has to keep them current.
// No I/O: the server serves what render() returns.
// Thread-safety: every method may be called from any thread; gauge callbacks run under the
// registry's mutex while rendering, so they must not call back into the registry.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace onemcp::metrics {

// Label values in the order of the family's label names.
using LabelValues = std::vector<std::string>;

struct Sample {
  LabelValues labels;
  double value = 0;
};

// Upper bounds of a histogram's buckets, increasing; +Inf is implied.
inline const std::vector<double> kSecondsBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                    1,     2.5,  5,     10,   30,  60,   300};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Declares a family. A name declared twice, or a name or label name outside
  // [a-zA-Z_:][a-zA-Z0-9_:]*, is a bug: the process aborts. Label values may be any bytes.
  void counter(std::string name, std::string help, std::vector<std::string> labels = {});
  void histogram(std::string name, std::string help, std::vector<std::string> labels,
                 std::vector<double> buckets);
  // A gauge (or, with `type` "counter", a counter someone else keeps) whose samples `read`
  // returns at render time.
  void gauge(std::string name, std::string help, std::vector<std::string> labels,
             std::function<std::vector<Sample>()> read, std::string type = "gauge");

  // Adds `v` (>= 0) to a counter's sample with these label values (created at 0).
  void add(std::string_view name, const LabelValues& labels, double v = 1);
  // Records one observation in a histogram.
  void observe(std::string_view name, const LabelValues& labels, double v);

  // The value of a counter's sample, or of a histogram's count (tests; 0 when absent).
  double value(std::string_view name, const LabelValues& labels) const;

  // Every family in declaration order, samples ordered by label values.
  std::string render() const;

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; the last one is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    std::string name, help, type;
    std::vector<std::string> labels;
    std::vector<double> buckets;                  // histograms
    std::map<LabelValues, double> counters;       // counters
    std::map<LabelValues, Histogram> histograms;  // histograms
    std::function<std::vector<Sample>()> read;    // gauges
  };
  Family* find(std::string_view name);  // caller holds mu_
  const Family* find(std::string_view name) const;

  mutable std::mutex mu_;
  std::vector<Family> families_;
};

// The text format's escapes: a label value escapes \ " and newline; HELP text \ and newline.
std::string escape_label_value(std::string_view v);
std::string escape_help(std::string_view v);
// A sample value: shortest round-trip decimal, "+Inf", "-Inf" or "NaN".
std::string format_value(double v);

}  // namespace onemcp::metrics

// libFuzzer target: any bytes through the jobs API (capacity/jobs_api.h) — job and reservation submit
// bodies, paths and query strings, and the operator's quota and node routes — against a real Scheduler
// and JobController. The executor is a recording stand-in: fuzz input must never run commands on this
// machine. Must never crash, throw or hang; every answer is a JSON object (an error or a result).
// Input: byte 0 picks the route family, byte 1 the method; the rest is "PATH?QUERY\nBODY".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "capacity/job_controller.h"
#include "capacity/jobs_api.h"

namespace {
using namespace nc::capacity;

// Accepts every launch and ends it at the next poll (so jobs move through their states).
class RecordingExecutor final : public Executor {
 public:
  std::string_view name() const override { return "fuzz"; }
  nc::Status launch(const LaunchSpec& spec) override {
    running_.push_back(spec);
    return nc::Status::ok();
  }
  nc::Status terminate(const std::string&, int, int) override { return nc::Status::ok(); }
  std::vector<ExitReport> poll() override {
    std::vector<ExitReport> out;
    for (const auto& s : running_) out.push_back({s.job_id, s.segment, ExitKind::kSucceeded, 0, 0, 1, 2, ""});
    running_.clear();
    return out;
  }
  size_t running() const override { return running_.size(); }
  nc::Status kill_leftover(const std::string&, int) override { return nc::Status::ok(); }

 private:
  std::vector<LaunchSpec> running_;
};

std::unique_ptr<JobController> make_controller() {
  std::vector<Node> nodes = {make_node("n0", 64000, 1 << 20, 8, "H100"), make_node("n1", 64000, 1 << 20, 4, "L4")};
  nodes[0].gpu_domain = {0, 0, 0, 0, 1, 1, 1, 1};
  auto sched = Scheduler::create(Cluster(nodes));
  if (!sched.is_ok()) std::abort();
  JobControllerOptions o;
  o.log_dir = "/tmp/nc-fuzz-jobs";
  return std::make_unique<JobController>(std::move(sched).value(), std::make_unique<RecordingExecutor>(), o);
}

// A fresh controller every few thousand inputs: jobs accumulate (list and tick grow with them), which
// would slow the fuzzer down without finding anything new.
JobController& controller() {
  static std::unique_ptr<JobController> c;
  static int uses = 0;
  if (!c || ++uses % 2000 == 0) c = make_controller();
  return *c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  JobController& jobs = controller();
  static const char* methods[] = {"GET", "POST", "PUT", "DELETE"};
  const std::string in(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t nl = in.find('\n');
  std::string target = in.substr(0, nl);
  const std::string body = nl == std::string::npos ? "" : in.substr(nl + 1);
  const size_t q = target.find('?');
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  const std::string rest = target.substr(0, q);
  const char* method = methods[data[1] % 4];
  JobsResponse r;
  switch (data[0] % 3) {
    case 0: r = handle_jobs(jobs, "org_a", "proj_a", method, "/v1/jobs" + rest, query, body); break;
    case 1: r = handle_jobs(jobs, "org_a", "proj_a", method, "/v1/reservations" + rest, query, body); break;
    default: {
      const std::string path = "/v1/admin/" + rest;
      if (!is_capacity_admin_path(path)) return 0;
      r = handle_capacity_admin(jobs, method, path, body);
    }
  }
  if (!r.body.is_object() || r.status < 200 || r.status > 599) std::abort();
  (void)r.body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (data[1] & 0x80) jobs.tick();  // sometimes run a scheduling cycle: jobs start, end, reservations activate
  return 0;
}

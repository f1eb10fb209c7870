// Parsing Slurm's command output (slurm_output.h).
#include "capacity/slurm_output.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <set>
#include <sstream>

namespace nc::capacity {

int64_t parse_slurm_time(const std::string& s) {
  std::tm tm{};
  int y, mo, d, h, mi, se;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6) return 0;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  tm.tm_isdst = -1;
  time_t t = std::mktime(&tm);
  return t < 0 ? 0 : static_cast<int64_t>(t);
}

std::string scontrol_field(const std::string& line, const std::string& key) {
  std::string pat = " " + key + "=";
  size_t p = line.find(pat);
  if (p == std::string::npos) {
    if (line.compare(0, key.size() + 1, key + "=") != 0) return "";
    p = 0;
    pat = key + "=";
  }
  p += pat.size();
  size_t e = line.find(' ', p);
  return line.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

bool slurm_state_ended(const std::string& state) {
  static const std::set<std::string> kEnded = {"COMPLETED", "FAILED",    "CANCELLED",  "TIMEOUT",
                                               "NODE_FAIL", "BOOT_FAIL", "DEADLINE",   "OUT_OF_MEMORY",
                                               "PREEMPTED", "REVOKED",   "SPECIAL_EXIT"};
  return kEnded.count(state) > 0;
}

bool slurm_state_started(const std::string& state) {
  return state == "RUNNING" || state == "COMPLETING" || state == "SUSPENDED" || state == "STOPPED" ||
         state == "SIGNALING" || state == "STAGE_OUT" || slurm_state_ended(state);
}

std::map<std::string, SqueueJob> parse_squeue_jobs(const std::string& out) {
  std::map<std::string, SqueueJob> seen;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    size_t p = 0;
    for (int i = 0; i < 3; ++i) {
      size_t bar = line.find('|', p);
      if (bar == std::string::npos) break;
      f.push_back(line.substr(p, bar - p));
      p = bar + 1;
    }
    if (f.size() != 3) continue;
    seen[f[0]] = {f[1], f[2], line.substr(p)};
  }
  return seen;
}

SqueueSteps parse_squeue_steps(const std::string& out) {
  SqueueSteps r;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    const size_t bar = line.find('|');
    std::string s = line.substr(0, bar);
    size_t dot = s.find('.');
    if (dot != std::string::npos && dot + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[dot + 1]))) {
      r.steps.push_back(s);
      if (bar != std::string::npos) r.newest_start_s = std::max(r.newest_start_s, parse_slurm_time(line.substr(bar + 1)));
    }
  }
  return r;
}

std::string parse_sbatch_job_id(const std::string& out) {
  std::string id;
  for (char c : out) {
    if (!std::isdigit(static_cast<unsigned char>(c))) break;
    id += c;
  }
  return id;
}

}  // namespace nc::capacity

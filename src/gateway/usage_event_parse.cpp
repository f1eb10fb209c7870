// Gateway::parse_usage_events (gateway.h): POST /v1/usage/events bodies (one CloudEvent or an array)
// checked field by field and priced from the policy snapshot.
#include "gateway/gateway.h"

#include <fmt/format.h>

#include <cctype>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>

#include "core/json_parse.h"
#include "core/timer.h"

namespace nc::gateway {

using nlohmann::json;

namespace {

// RFC 3339 ("2026-11-28T10:00:00Z", fractions and offsets allowed) -> unix microseconds.
Result<int64_t> parse_rfc3339(const std::string& s) {
  int Y, M, D, h, m, sec, n = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || n == 0)
    return invalid_argument(fmt::format("'time' must be an RFC 3339 timestamp, not '{}'", s));
  size_t i = static_cast<size_t>(n);
  int64_t frac_us = 0;
  if (i < s.size() && s[i] == '.') {
    int64_t scale = 100000;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      frac_us += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    const int oh = std::atoi(s.substr(i + 1, 2).c_str()), om = std::atoi(s.substr(i + 4, 2).c_str());
    offset_s = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return invalid_argument(fmt::format("'time' needs a zone (Z or +HH:MM): '{}'", s));
  }
  if (i != s.size() || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
    return invalid_argument(fmt::format("'time' must be an RFC 3339 timestamp, not '{}'", s));
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  return (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000000 + frac_us;
}

// The ledger record of a ticket as admitted: ids, model, endpoint, start time and the prompt tokens
// (known at admission: an interrupted record still shows them). settle() adds the outcome.
}  // namespace

Result<std::vector<UsageEvent>> Gateway::parse_usage_events(const Caller& c, const std::string& body) {
  const json j = parse_json_or_discarded(body);
  if (j.is_discarded()) return invalid_argument("the body must be a CloudEvent JSON object or an array of them");
  const json list = j.is_array() ? j : json::array({j});
  if (list.empty()) return invalid_argument("no events in the body");
  if (list.size() > 10000) return invalid_argument(fmt::format("at most 10000 events per request, not {}", list.size()));
  auto snap = policy_.snapshot();
  const int64_t now = nc::unix_us();
  std::set<std::string> known_projects;
  std::vector<UsageEvent> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const json& e = list[i];
    auto bad = [&](const std::string& what) { return invalid_argument(fmt::format("event {}: {}", i, what)); };
    if (!e.is_object()) return bad("must be an object");
    UsageEvent ev;
    auto str = [&](const char* k, std::string* v, bool required) -> Status {
      auto it = e.find(k);
      if (it == e.end() || it->is_null()) return required ? bad(fmt::format("'{}' (a string) is required", k)) : Status::ok();
      if (!it->is_string() || it->get<std::string>().empty() || it->get<std::string>().size() > 256)
        return bad(fmt::format("'{}' must be a non-empty string of at most 256 bytes", k));
      *v = it->get<std::string>();
      return Status::ok();
    };
    NC_RETURN_IF_ERROR(str("id", &ev.id, true));
    NC_RETURN_IF_ERROR(str("source", &ev.source, true));
    // The platform's own meters (GPU-seconds of jobs: gateway/metered_usage.h) are never accepted from
    // the party they bill: a tenant's event with their (source, id) would be kept and the real one dropped
    // as its duplicate.
    std::string lower = ev.source;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "neocloud" || lower.starts_with("neocloud/"))
      return bad("'source' neocloud/... is reserved for the platform's own meters");
    NC_RETURN_IF_ERROR(str("type", &ev.type, true));
    std::string subject, time;
    NC_RETURN_IF_ERROR(str("subject", &subject, false));
    NC_RETURN_IF_ERROR(str("time", &time, false));
    if (time.empty()) {
      ev.time = now;
    } else {
      auto t = parse_rfc3339(time);
      if (!t.is_ok()) return bad(t.status().message());
      ev.time = *t;
    }
    const auto& p = c.principal;
    if (p.kind == tenancy::KeyKind::kInference) {
      // A project key meters into its own project only.
      if (!subject.empty() && subject != p.project_id) return bad("'subject' must be this key's project id");
      ev.project_id = p.project_id;
      ev.api_key_id = p.key_id;
    } else if (!subject.empty()) {
      // An admin key meters into a project of its own organization only (never another tenant's).
      if (!known_projects.count(subject)) {
        auto found = db_.read([&](storage::Transaction& tx) {
          return tx.query_optional("SELECT id FROM projects WHERE id = $1 AND org_id = $2", {subject, p.org_id});
        });
        if (!found.is_ok()) return found.status();
        if (!*found) return bad(fmt::format("'subject' {} is not a project of this organization", subject));
        known_projects.insert(subject);
      }
      ev.project_id = subject;
    }
    auto data = e.find("data");
    if (data == e.end() || !data->is_object()) return bad("'data' (an object) is required");
    auto num = [&](const char* k, int64_t* v) -> Status {
      auto it = data->find(k);
      if (it == data->end() || it->is_null()) return Status::ok();
      if (!it->is_number_integer() || it->get<int64_t>() < 0) return bad(fmt::format("data.{} must be a non-negative integer", k));
      *v = it->get<int64_t>();
      return Status::ok();
    };
    NC_RETURN_IF_ERROR(num("quantity", &ev.quantity));
    NC_RETURN_IF_ERROR(num("input_tokens", &ev.input_tokens));
    NC_RETURN_IF_ERROR(num("output_tokens", &ev.output_tokens));
    NC_RETURN_IF_ERROR(num("cached_tokens", &ev.cached_tokens));
    for (const char* k : {"item", "model", "meter"}) {
      auto it = data->find(k);
      if (it != data->end() && it->is_string() && !it->get<std::string>().empty()) {
        ev.item = it->get<std::string>();
        break;
      }
    }
    if (ev.item.empty()) return bad("data.item (a model id or a meter name, e.g. \"gpu_seconds:H100\") is required");
    if (ev.cached_tokens > ev.input_tokens) return bad("data.cached_tokens cannot exceed data.input_tokens");
    if (const Price* pr = snap->price_at(ev.item, ev.time)) {
      ev.cost_micros = token_cost_micros(*pr, ev.input_tokens, ev.output_tokens, ev.cached_tokens);
      const __int128 unit = static_cast<__int128>(ev.quantity) * pr->per_unit;
      if (unit > INT64_MAX / 2) return bad("data.quantity is too large");
      ev.cost_micros += static_cast<int64_t>(unit);
    }
    ev.data = data->dump();
    out.push_back(std::move(ev));
  }
  return out;
}

}  // namespace nc::gateway

// The fine-tuning API (fine_tuning_api.h).
#include "training/fine_tuning_api.h"

#include <fmt/format.h>

#include "core/json_parse.h"
#include "core/query_string.h"

namespace nc::training {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

ApiResponse ok(const json& j) {
  ApiResponse r;
  r.body = ojson::parse(j.dump());
  return r;
}

ApiResponse not_found_job(const std::string& id) {
  return error_response(api_error(404, fmt::format("Fine-tuning job {} not found.", id), "fine_tuning_job_id", "not_found"));
}

// A hyperparameter: "auto" (or absent, null) is 0.
template <typename T>
Status hyper(const json& h, const char* name, T* out) {
  auto it = h.find(name);
  if (it == h.end() || it->is_null() || (it->is_string() && it->get<std::string>() == "auto")) return Status::ok();
  if (!it->is_number() || it->get<double>() <= 0 || (std::is_integral_v<T> && !it->is_number_integer()))
    return invalid_argument(fmt::format("'{}' must be \"auto\" or a positive {}", name,
                                        std::is_integral_v<T> ? "integer" : "number"))
        .with_field(name);
  *out = it->get<T>();
  return Status::ok();
}

Result<FineTuneRequest> parse_request(const std::string& text) {
  NC_ASSIGN_OR_RETURN(json b, parse_json(text));
  if (!b.is_object()) return invalid_argument("the body must be a JSON object");
  FineTuneRequest r;
  for (const auto& [field, out] : {std::pair{"model", &r.model}, std::pair{"training_file", &r.training_file},
                                   std::pair{"validation_file", &r.validation_file}, std::pair{"suffix", &r.suffix}}) {
    auto it = b.find(field);
    if (it == b.end() || it->is_null()) continue;
    if (!it->is_string()) return invalid_argument(fmt::format("'{}' must be a string", field)).with_field(field);
    *out = it->get<std::string>();
  }
  if (auto it = b.find("seed"); it != b.end() && !it->is_null()) {
    if (!it->is_number_integer()) return invalid_argument("'seed' must be an integer").with_field("seed");
    r.seed = it->get<int64_t>();
  }
  json h = b.value("hyperparameters", json::object());
  if (auto m = b.find("method"); m != b.end() && !m->is_null()) {
    if (!m->is_object()) return invalid_argument("'method' must be an object").with_field("method");
    auto t = m->find("type");
    if (t != m->end() && !t->is_null() && !t->is_string())
      return invalid_argument("'method.type' must be a string").with_field("method.type");
    const std::string type = t == m->end() || t->is_null() ? std::string("supervised") : t->get<std::string>();
    if (type != "supervised")
      return invalid_argument(fmt::format("method type '{}' is not supported: use 'supervised'", type)).with_field("method.type");
    if (auto s = m->find("supervised"); s != m->end() && s->is_object()) h = s->value("hyperparameters", json::object());
  }
  if (!h.is_object()) return invalid_argument("'hyperparameters' must be an object").with_field("hyperparameters");
  NC_RETURN_IF_ERROR(hyper(h, "n_epochs", &r.hyper.n_epochs));
  NC_RETURN_IF_ERROR(hyper(h, "batch_size", &r.hyper.batch_size));
  NC_RETURN_IF_ERROR(hyper(h, "learning_rate_multiplier", &r.hyper.learning_rate_multiplier));
  NC_RETURN_IF_ERROR(hyper(h, "lora_rank", &r.hyper.lora_rank));
  NC_RETURN_IF_ERROR(hyper(h, "lora_alpha", &r.hyper.lora_alpha));
  return r;
}

Result<int64_t> limit_of(const QueryString& q) {
  auto l = q.get("limit");
  if (!l) return int64_t{20};
  char* end = nullptr;
  const long long v = std::strtoll(l->c_str(), &end, 10);
  if (l->empty() || *end != '\0' || v < 1 || v > 100) return invalid_argument("'limit' must be 1 to 100").with_field("limit");
  return static_cast<int64_t>(v);
}

json list_body(json data, bool has_more) { return {{"object", "list"}, {"data", std::move(data)}, {"has_more", has_more}}; }

json checkpoint_json(const FineTuneJob& j, const Checkpoint& c) {
  json metrics = {{"step", c.step}, {"train_loss", c.train_loss}};
  if (c.valid_loss) metrics["valid_loss"] = *c.valid_loss;
  return {{"object", "fine_tuning.job.checkpoint"},
          {"id", c.id},
          {"created_at", c.created_at},
          {"fine_tuned_model_checkpoint", fmt::format("{}:ckpt-step-{}", j.fine_tuned_model.empty() ? j.id : j.fine_tuned_model, c.step)},
          {"step_number", c.step},
          {"metrics", metrics},
          {"fine_tuning_job_id", j.id}};
}

}  // namespace

ApiResponse handle_fine_tuning(FineTuneController& c, const std::string& org, const std::string& project,
                               const std::string& key_id, const std::string& method, const std::string& path,
                               const std::string& query, const std::string& body) {
  const std::string prefix = "/v1/fine_tuning/jobs";
  std::string rest = path.substr(std::min(path.size(), prefix.size()));
  const QueryString q(query);
  if (rest.empty()) {
    if (method == "POST") {
      auto req = parse_request(body);
      if (!req.is_ok()) return error_response(req.status());
      auto j = c.create(org, project, key_id, *req);
      if (!j.is_ok()) {
        if (j.status().code() == StatusCode::kResourceExhausted) {
          ApiError e = api_error(429, j.status().message(), "", "insufficient_quota", "insufficient_quota");
          e.should_retry = false;
          return error_response(e);
        }
        return error_response(j.status());
      }
      return ok(to_api(*j));
    }
    if (method == "GET") {
      auto limit = limit_of(q);
      if (!limit.is_ok()) return error_response(limit.status());
      const std::string after = q.get("after").value_or("");
      json data = json::array();
      bool started = after.empty(), more = false;
      for (const auto& j : c.list(org)) {
        if (!started) {
          started = j.id == after;
          continue;
        }
        if (static_cast<int64_t>(data.size()) == *limit) {
          more = true;
          break;
        }
        data.push_back(to_api(j));
      }
      return ok(list_body(std::move(data), more));
    }
    return error_response(api_error(405, "Method not allowed.", "", "method_not_allowed"));
  }
  if (rest[0] != '/') return error_response(api_error(404, "Invalid URL (" + method + " " + path + ")"));
  rest = rest.substr(1);
  const size_t slash = rest.find('/');
  const std::string id = rest.substr(0, slash), sub = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (sub.empty() && method == "GET") {
    auto j = c.get(org, id);
    return j.is_ok() ? ok(to_api(*j)) : not_found_job(id);
  }
  if (sub == "cancel" && method == "POST") {
    auto j = c.cancel(org, id);
    if (!j.is_ok() && j.status().code() == StatusCode::kNotFound) return not_found_job(id);
    if (!j.is_ok()) return error_response(api_error(400, j.status().message(), "", "job_not_cancellable"));
    return ok(to_api(*j));
  }
  if (sub == "events" && method == "GET") {
    auto limit = limit_of(q);
    if (!limit.is_ok()) return error_response(limit.status());
    bool more = false;
    auto ev = c.events(org, id, q.get("after").value_or(""), *limit, &more);
    if (!ev.is_ok() && ev.status().code() == StatusCode::kNotFound) return not_found_job(id);
    if (!ev.is_ok()) return error_response(ev.status());
    json data = json::array();
    for (const auto& e : *ev) data.push_back(event_to_api(e));
    return ok(list_body(std::move(data), more));
  }
  if (sub == "checkpoints" && method == "GET") {
    auto limit = limit_of(q);
    if (!limit.is_ok()) return error_response(limit.status());
    auto j = c.get(org, id);
    if (!j.is_ok()) return not_found_job(id);
    const std::string after = q.get("after").value_or("");
    json data = json::array();
    bool started = after.empty(), more = false;
    for (auto it = j->checkpoints.rbegin(); it != j->checkpoints.rend(); ++it) {
      if (!started) {
        started = it->id == after;
        continue;
      }
      if (static_cast<int64_t>(data.size()) == *limit) {
        more = true;
        break;
      }
      data.push_back(checkpoint_json(*j, *it));
    }
    json res = list_body(std::move(data), more);
    res["first_id"] = res["data"].empty() ? json() : res["data"].front()["id"];
    res["last_id"] = res["data"].empty() ? json() : res["data"].back()["id"];
    return ok(res);
  }
  return error_response(api_error(404, "Invalid URL (" + method + " " + path + ")"));
}

}  // namespace nc::training

// FineTuneJob documents (fine_tune_job.h).
#include "training/fine_tune_job.h"

#include <fmt/format.h>

namespace nc::training {

using json = nlohmann::json;

namespace {
constexpr std::string_view kStates[] = {"validating_files", "queued", "running", "succeeded", "failed", "cancelled"};

json hyper_doc(const Hyperparameters& h) {
  return {{"n_epochs", h.n_epochs},
          {"batch_size", h.batch_size},
          {"learning_rate_multiplier", h.learning_rate_multiplier},
          {"lora_rank", h.lora_rank},
          {"lora_alpha", h.lora_alpha}};
}

Hyperparameters hyper_of(const json& d) {
  Hyperparameters h;
  if (!d.is_object()) return h;
  h.n_epochs = d.value("n_epochs", int64_t{0});
  h.batch_size = d.value("batch_size", int64_t{0});
  h.learning_rate_multiplier = d.value("learning_rate_multiplier", 0.0);
  h.lora_rank = d.value("lora_rank", int64_t{0});
  h.lora_alpha = d.value("lora_alpha", 0.0);
  return h;
}

json or_null(const std::string& s) { return s.empty() ? json() : json(s); }
}  // namespace

std::string_view state_name(FineTuneState s) { return kStates[static_cast<int>(s)]; }

std::optional<FineTuneState> state_of(std::string_view name) {
  for (int i = 0; i < 6; ++i)
    if (kStates[i] == name) return static_cast<FineTuneState>(i);
  return std::nullopt;
}

json to_doc(const FineTuneJob& j) {
  json ck = json::array();
  for (const auto& c : j.checkpoints)
    ck.push_back({{"id", c.id},
                  {"created_at", c.created_at},
                  {"step", c.step},
                  {"train_loss", c.train_loss},
                  {"valid_loss", c.valid_loss ? json(*c.valid_loss) : json()},
                  {"path", c.path}});
  return {{"id", j.id},
          {"org", j.org},
          {"project", j.project},
          {"key_id", j.key_id},
          {"model", j.model},
          {"training_file", j.training_file},
          {"validation_file", j.validation_file},
          {"suffix", j.suffix},
          {"seed", j.seed},
          {"requested", hyper_doc(j.requested)},
          {"hyper", hyper_doc(j.hyper)},
          {"state", std::string(state_name(j.state))},
          {"created_at", j.created_at},
          {"finished_at", j.finished_at},
          {"estimated_finish", j.estimated_finish},
          {"trained_tokens", j.trained_tokens},
          {"train_tokens_per_epoch", j.train_tokens_per_epoch},
          {"valid_tokens", j.valid_tokens},
          {"total_steps", j.total_steps},
          {"step", j.step},
          {"fine_tuned_model", j.fine_tuned_model},
          {"error", {{"code", j.error_code}, {"message", j.error_message}, {"param", j.error_param}}},
          {"capacity_job", j.capacity_job},
          {"staging_dir", j.staging_dir},
          {"events_offset", j.events_offset},
          {"event_seq", j.event_seq},
          {"checkpoints", ck},
          {"billed", j.billed},
          {"deleted_model", j.deleted_model}};
}

Result<FineTuneJob> from_doc(const json& d) {
  try {
    FineTuneJob j;
    j.id = d.at("id").get<std::string>();
    j.org = d.at("org").get<std::string>();
    j.project = d.value("project", "");
    j.key_id = d.value("key_id", "");
    j.model = d.at("model").get<std::string>();
    j.training_file = d.at("training_file").get<std::string>();
    j.validation_file = d.value("validation_file", "");
    j.suffix = d.value("suffix", "");
    j.seed = d.value("seed", int64_t{0});
    j.requested = hyper_of(d.value("requested", json()));
    j.hyper = hyper_of(d.value("hyper", json()));
    auto st = state_of(d.at("state").get<std::string>());
    if (!st) return invalid_argument("stored fine-tuning job: unknown state");
    j.state = *st;
    j.created_at = d.value("created_at", int64_t{0});
    j.finished_at = d.value("finished_at", int64_t{0});
    j.estimated_finish = d.value("estimated_finish", int64_t{0});
    j.trained_tokens = d.value("trained_tokens", int64_t{0});
    j.train_tokens_per_epoch = d.value("train_tokens_per_epoch", int64_t{0});
    j.valid_tokens = d.value("valid_tokens", int64_t{0});
    j.total_steps = d.value("total_steps", int64_t{0});
    j.step = d.value("step", int64_t{0});
    j.fine_tuned_model = d.value("fine_tuned_model", "");
    if (d.contains("error") && d["error"].is_object()) {
      j.error_code = d["error"].value("code", "");
      j.error_message = d["error"].value("message", "");
      j.error_param = d["error"].value("param", "");
    }
    j.capacity_job = d.value("capacity_job", "");
    j.staging_dir = d.value("staging_dir", "");
    j.events_offset = d.value("events_offset", int64_t{0});
    j.event_seq = d.value("event_seq", int64_t{0});
    for (const auto& c : d.value("checkpoints", json::array())) {
      Checkpoint k;
      k.id = c.at("id").get<std::string>();
      k.created_at = c.value("created_at", int64_t{0});
      k.step = c.value("step", int64_t{0});
      k.train_loss = c.value("train_loss", 0.0);
      if (c.contains("valid_loss") && c["valid_loss"].is_number()) k.valid_loss = c["valid_loss"].get<double>();
      k.path = c.value("path", "");
      j.checkpoints.push_back(std::move(k));
    }
    j.billed = d.value("billed", false);
    j.deleted_model = d.value("deleted_model", false);
    return j;
  } catch (const json::exception& e) {
    return invalid_argument(fmt::format("stored fine-tuning job: {}", e.what()));
  }
}

json to_api(const FineTuneJob& j) {
  auto hp = [&](int64_t v) { return v > 0 ? json(v) : json("auto"); };
  const json hyper = {{"n_epochs", hp(j.hyper.n_epochs ? j.hyper.n_epochs : j.requested.n_epochs)},
                      {"batch_size", hp(j.hyper.batch_size ? j.hyper.batch_size : j.requested.batch_size)},
                      {"learning_rate_multiplier",
                       j.hyper.learning_rate_multiplier > 0   ? json(j.hyper.learning_rate_multiplier)
                       : j.requested.learning_rate_multiplier > 0 ? json(j.requested.learning_rate_multiplier)
                                                                  : json("auto")},
                      {"lora_rank", hp(j.hyper.lora_rank ? j.hyper.lora_rank : j.requested.lora_rank)},
                      {"lora_alpha", j.hyper.lora_alpha > 0 ? json(j.hyper.lora_alpha) : json("auto")}};
  json o = {{"object", "fine_tuning.job"},
            {"id", j.id},
            {"model", j.model},
            {"created_at", j.created_at},
            {"finished_at", j.finished_at ? json(j.finished_at) : json()},
            {"fine_tuned_model", or_null(j.fine_tuned_model)},
            {"organization_id", j.org},
            {"result_files", json::array()},
            {"status", std::string(state_name(j.state))},
            {"validation_file", or_null(j.validation_file)},
            {"training_file", j.training_file},
            {"hyperparameters", hyper},
            {"method", {{"type", "supervised"}, {"supervised", {{"hyperparameters", hyper}}}}},
            {"trained_tokens", j.state == FineTuneState::kSucceeded || j.trained_tokens > 0 ? json(j.trained_tokens) : json()},
            {"seed", j.seed},
            {"estimated_finish", j.estimated_finish && !is_final(j.state) ? json(j.estimated_finish) : json()},
            {"integrations", json::array()},
            {"user_provided_suffix", or_null(j.suffix)},
            {"metadata", json()}};
  o["error"] = j.error_code.empty() && j.error_message.empty()
                   ? json()
                   : json({{"code", j.error_code}, {"message", j.error_message}, {"param", or_null(j.error_param)}});
  return o;
}

json event_to_api(const FineTuneEvent& e) {
  return {{"object", "fine_tuning.job.event"}, {"id", e.id},     {"created_at", e.created_at}, {"level", e.level},
          {"message", e.message},             {"type", e.type}, {"data", e.data.is_null() ? json::object() : e.data}};
}

}  // namespace nc::training

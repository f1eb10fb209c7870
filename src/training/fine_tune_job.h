// A fine-tuning job (OpenAI's FineTuningJob) as neocloud keeps it: the request, its state, the
// capacity job that runs the trainer, its checkpoints and what was billed. Plain values; the JSON
// document is what the store keeps (to_doc/from_doc) and what the API shows (to_api).
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace nc::training {

enum class FineTuneState { kValidatingFiles, kQueued, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view state_name(FineTuneState s);
std::optional<FineTuneState> state_of(std::string_view name);
inline bool is_final(FineTuneState s) {
  return s == FineTuneState::kSucceeded || s == FineTuneState::kFailed || s == FineTuneState::kCancelled;
}

// Hyperparameters: 0 (or 0.0) = "auto", decided once the training file's size is known.
struct Hyperparameters {
  int64_t n_epochs = 0, batch_size = 0;
  double learning_rate_multiplier = 0;
  int64_t lora_rank = 0;
  double lora_alpha = 0;
};

struct Checkpoint {
  std::string id;  // "ftckpt-..."
  int64_t created_at = 0, step = 0;
  double train_loss = 0;
  std::optional<double> valid_loss;
  std::string path;  // the adapter GGUF on this host
};

struct FineTuneJob {
  std::string id;  // "ftjob-" + 24 hex
  std::string org, project, key_id;
  std::string model;  // the base model id
  std::string training_file, validation_file, suffix;
  int64_t seed = 0;
  Hyperparameters requested, hyper;  // as asked ("auto" = 0), as used
  FineTuneState state = FineTuneState::kValidatingFiles;
  int64_t created_at = 0, finished_at = 0, estimated_finish = 0;  // unix seconds (0: none)
  int64_t trained_tokens = 0;   // so far (the last step's count; the final one at the end)
  int64_t train_tokens_per_epoch = 0, valid_tokens = 0;  // trained (mask 1) tokens
  int64_t total_steps = 0, step = 0;
  std::string fine_tuned_model;  // set when succeeded
  std::string error_code, error_message, error_param;
  std::string capacity_job;  // the capacity job running the trainer ("" before it is submitted)
  std::string staging_dir;   // this host's directory of the job's inputs
  int64_t events_offset = 0;  // bytes of the trainer's events file already turned into events
  int64_t event_seq = 0;      // the last event's sequence number
  std::vector<Checkpoint> checkpoints;
  bool billed = false;
  bool deleted_model = false;  // the fine-tuned model was deleted (DELETE /v1/models/{id})
};

// The tokens a job trains when it runs to its end, and what its success bills: every epoch trains the
// whole training file; the validation file's tokens count once (OpenAI's rule).
inline int64_t planned_tokens(const FineTuneJob& j) {
  return j.hyper.n_epochs * j.train_tokens_per_epoch + j.valid_tokens;
}
// The id without its "ftjob-" prefix (what fine-tuned model, event and checkpoint ids carry).
inline std::string id_suffix(const FineTuneJob& j) { return j.id.substr(j.id.find('-') + 1); }

nlohmann::json to_doc(const FineTuneJob& j);
Result<FineTuneJob> from_doc(const nlohmann::json& doc);
// OpenAI's fine_tuning.job object.
nlohmann::json to_api(const FineTuneJob& j);

// One event of a job (OpenAI's fine_tuning.job.event).
struct FineTuneEvent {
  std::string id;  // "ftevent-..."
  int64_t seq = 0, created_at = 0;
  std::string level = "info", message, type = "message";  // type: "message" | "metrics"
  nlohmann::json data;                                      // null or an object
};
nlohmann::json event_to_api(const FineTuneEvent& e);

}  // namespace nc::training

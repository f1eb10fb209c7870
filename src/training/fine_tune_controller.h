// FineTuneController: OpenAI-style fine-tuning on neocloud's own capacity. A job's training file (and
// validation file) are tokenized for its base model by the server's own chat template and tokenizer
// (the hooks; training_data.h) when it is created, so a file the model cannot train on is a 400 naming
// the line, and the cost estimate (trained tokens × epochs + validation tokens, at the base model's
// fine-tuning price: item "fine-tune:<base>", per 1M tokens) is checked against the budgets (429
// insufficient_quota). The
// trainer (train/neocloud_train.py, PyTorch, LoRA) then runs as an ordinary capacity job of the
// organization — same scheduler, quotas, GPUs, executors, sandbox and GPU metering as any job — with
// its inputs (base GGUF, token files, trainer) staged read-only into its directory. The controller
// follows the trainer's events file (steps, checkpoints, done/error) into the job's events and
// checkpoints (the last three kept); when the trainer succeeds its adapter (llama.cpp's GGUF LoRA
// format) is deployed as the organization's private model `ft:<base>:<org>:<suffix>:<job>` (hook). Trained tokens are billed once
// per job (one ledger event whose id is the job's, so a retry or a restart never bills twice), also for
// a cancelled or failed job (what it trained). States: validating_files -> queued -> running ->
// succeeded | failed | cancelled. After a restart, a job whose trainer was running is requeued (its
// capacity job released) and says so in its events.
//
// Ownership: borrows the JobController, the FileStore and the FineTuneStore (all outlive it).
// Thread-safety: every public method may be called from any thread (one mutex); the loop thread
// (start) polls running jobs every poll_ms; create() blocks on tokenizing (call it off the I/O thread).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capacity/job_controller.h"
#include "files/file_store.h"
#include "training/fine_tune_job.h"
#include "training/fine_tune_store.h"

namespace nc::training {

struct TokenizedFile {
  int64_t examples = 0, tokens = 0, trained_tokens = 0, longest = 0;
};

// What the controller asks of the server that serves the models.
struct FineTuneHooks {
  // The GGUF file of base model `model` as organization `org` sees it, and its context length;
  // NotFound when this server serves no such base model to it (an adapter or a fine-tuned model
  // cannot be a base; another organization's own model does not exist for it).
  std::function<Result<std::pair<std::string, int64_t>>(const std::string& model, const std::string& org)> base_model;
  // Tokenizes the fine-tune file `in` for `model` into `out` ({"ids","mask"} lines); errors name the line.
  std::function<Result<TokenizedFile>(const std::string& model, const std::string& in, const std::string& out)> tokenize;
  // Serves the adapter at `path` as `id` (an adapter of `base`) for organization `org` only / stops serving it.
  std::function<Status(const std::string& id, const std::string& base, const std::string& path, const std::string& org)>
      deploy;
  std::function<void(const std::string& id)> undeploy;
  // Budget: holds `micros` against the job's key, project and organization (ResourceExhausted: over
  // budget); the id releases it. Null: no budgets.
  std::function<Result<int64_t>(const FineTuneJob& j, int64_t micros, const std::string& what)> hold;
  std::function<void(int64_t hold)> release;
  // The price of `tokens` trained tokens of `base` now, in micro-USD (0: unpriced).
  std::function<int64_t(const std::string& base, int64_t tokens)> price;
  // Bills `tokens` trained tokens of job j (idempotent by the job's id).
  std::function<Status(const FineTuneJob& j, int64_t tokens)> bill;
};

struct FineTuneOptions {
  std::string dir;          // <dir>/<job id>/: the job's staged inputs and its outputs (adapters)
  std::string trainer_dir;  // where neocloud_train.py (and its modules) are
  std::string python = "/usr/bin/python3";
  int threads = 2;          // the trainer's CPU threads
  int gpus = 1;             // GPUs per trainer job (0: CPU only)
  int64_t max_duration_s = 7 * 86400;
  int poll_ms = 250;
};

// The body of POST /v1/fine_tuning/jobs, parsed.
struct FineTuneRequest {
  std::string model, training_file, validation_file, suffix;
  std::optional<int64_t> seed;
  Hyperparameters hyper;  // 0 = auto
};

class FineTuneController {
 public:
  FineTuneController(capacity::JobController& jobs, files::FileStore& files, FineTuneStore* store, FineTuneHooks hooks,
                     FineTuneOptions options);
  ~FineTuneController();

  // Loads the stored jobs, serves their fine-tuned models again, holds the budgets of those that may
  // still train, and (from start()) requeues the trainers a stop interrupted. Call before start().
  Status recover();
  void start();
  void stop();

  // InvalidArgument (bad request, a file the model cannot train on: naming the line), NotFound (model
  // or file), ResourceExhausted (budget).
  Result<FineTuneJob> create(const std::string& org, const std::string& project, const std::string& key_id,
                             const FineTuneRequest& req);
  Result<FineTuneJob> get(const std::string& org, const std::string& id) const;
  std::vector<FineTuneJob> list(const std::string& org) const;  // newest first
  // FailedPrecondition when it already ended.
  Result<FineTuneJob> cancel(const std::string& org, const std::string& id);
  Result<std::vector<FineTuneEvent>> events(const std::string& org, const std::string& id, const std::string& after,
                                            int64_t limit, bool* has_more) const;
  // The organization's fine-tuned model `model` is withdrawn (NotFound: none such of this organization).
  Status delete_model(const std::string& org, const std::string& model);

  void tick();  // one poll now (tests and the loop)

 private:
  struct Live {
    FineTuneJob job;
    int64_t hold = 0;  // budget hold while it may still train
    int64_t checkpoints_seen = 0;  // checkpoint events taken (bounded by the epochs)
    std::vector<FineTuneEvent> unsaved;
  };
  void add_event(Live& l, std::string message, std::string type = "message", nlohmann::json data = nullptr,
                 std::string level = "info");
  void submit_trainer(Live& l);
  void follow(Live& l);
  void read_trainer_events(Live& l, const std::string& work_dir);
  void on_capacity_end(Live& l, const capacity::Job& cj, const std::string& work_dir);
  void settle(Live& l);
  void drop_inputs(Live& l);
  void fail(Live& l, std::string code, std::string message);
  void persist(Live& l);
  std::string model_id(const FineTuneJob& j) const;
  void auto_hyperparameters(FineTuneJob& j, const TokenizedFile& train) const;

  capacity::JobController& jobs_;
  files::FileStore& files_;
  FineTuneStore* store_;
  FineTuneHooks hooks_;
  FineTuneOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Live>> jobs_by_id_;
  std::thread loop_;
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
};

}  // namespace nc::training

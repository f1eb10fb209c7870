// FineTuneController (fine_tune_controller.h): creation, the trainer as a capacity job, its events.
#include "training/fine_tune_controller.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/file_copy.h"
#include "core/ids.h"
#include "core/json_parse.h"
#include "core/log.h"
#include "core/timer.h"

namespace nc::training {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr double kBaseLearningRate = 2e-3;  // × learning_rate_multiplier (LoRA on small models: see docs)

// At most `max` bytes of `s` as valid UTF-8 (a bad byte becomes U+FFFD; a character is never cut), so
// that what the trainer or a log wrote can always be stored and sent as JSON.
std::string utf8_clean(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (ok && n == 2 && c < 0xC2) ok = false;  // overlong
    const std::string_view piece = ok ? s.substr(i, n) : std::string_view("\xEF\xBF\xBD");
    if (out.size() + piece.size() > max) break;
    out.append(piece);
    i += ok ? n : 1;
  }
  return out;
}

bool valid_suffix(const std::string& s) {
  if (s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

// A file in the trainer job's directory, which the organization's uid writes: opened without following a
// symbolic link at any step below `dir` (a link to another file is refused, as is anything but a regular
// file), so the server never reads or copies a file the job pointed it to.
int open_in_job_dir(const std::string& dir, const std::vector<std::string>& parts) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; fd >= 0 && i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const int next = ::openat(fd, parts[i].c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? O_NONBLOCK : O_DIRECTORY));
    ::close(fd);
    fd = next;
  }
  struct stat st {};
  if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    ::close(fd);
    fd = -1;
  }
  return fd;
}

// Copies such a file to `to` (tmp + rename; readable by this server only).
Status copy_from_job(const std::string& dir, const std::vector<std::string>& parts, const fs::path& to) {
  const int in = open_in_job_dir(dir, parts);
  if (in < 0) return not_found("the trainer's output is missing or not a regular file");
  const Status st = copy_to_file(in, to.string(), 0600);
  ::close(in);
  return st;
}

// The job's working directory on this host (confined executors run it in <job dir>/work).
std::string work_dir_of(const capacity::Job& cj) {
  const fs::path dir = fs::path(cj.log_path).parent_path();
  std::error_code ec;
  return fs::is_directory(dir / "work", ec) ? (dir / "work").string() : dir.string();
}

}  // namespace

FineTuneController::FineTuneController(capacity::JobController& jobs, files::FileStore& files, FineTuneStore* store,
                                       FineTuneHooks hooks, FineTuneOptions options)
    : jobs_(jobs), files_(files), store_(store), hooks_(std::move(hooks)), options_(std::move(options)) {}

FineTuneController::~FineTuneController() { stop(); }

std::string FineTuneController::model_id(const FineTuneJob& j) const {
  return fmt::format("ft:{}:{}:{}:{}", j.model, j.org, j.suffix, id_suffix(j));
}

void FineTuneController::auto_hyperparameters(FineTuneJob& j, const TokenizedFile& train) const {
  Hyperparameters& h = j.hyper;
  h = j.requested;
  const int64_t n = std::max<int64_t>(1, train.examples);
  // Small datasets need more passes (OpenAI's rule of thumb: several hundred example-passes).
  if (h.n_epochs <= 0) h.n_epochs = std::clamp<int64_t>((600 + n - 1) / n, 3, 50);
  if (h.batch_size <= 0) h.batch_size = std::clamp<int64_t>(n / 10, 1, 8);
  if (h.learning_rate_multiplier <= 0) h.learning_rate_multiplier = 1.0;
  if (h.lora_rank <= 0) h.lora_rank = 16;
  if (h.lora_alpha <= 0) h.lora_alpha = 2.0 * static_cast<double>(h.lora_rank);
  j.total_steps = h.n_epochs * ((n + h.batch_size - 1) / h.batch_size);
}

void FineTuneController::add_event(Live& l, std::string message, std::string type, json data, std::string level) {
  FineTuneEvent e;
  e.seq = ++l.job.event_seq;
  e.id = fmt::format("ftevent-{}-{}", id_suffix(l.job), e.seq);
  e.created_at = unix_s();
  e.level = std::move(level);
  e.message = std::move(message);
  e.type = std::move(type);
  e.data = std::move(data);
  l.unsaved.push_back(std::move(e));
}

void FineTuneController::persist(Live& l) {
  if (store_) {
    Status st = store_->save(l.job, l.unsaved);
    if (!st.is_ok()) {
      NC_LOG_ERROR("fine-tuning job {}: cannot save: {}", l.job.id, st.to_string());
      return;  // kept in memory: the next persist writes it
    }
  }
  l.unsaved.clear();
}

Result<FineTuneJob> FineTuneController::create(const std::string& org, const std::string& project,
                                               const std::string& key_id, const FineTuneRequest& req) {
  if (req.model.empty()) return invalid_argument("'model' is required").with_field("model");
  if (req.training_file.empty()) return invalid_argument("'training_file' is required").with_field("training_file");
  if (!valid_suffix(req.suffix))
    return invalid_argument("'suffix' may have at most 64 letters, digits, '-' and '_'").with_field("suffix");
  const Hyperparameters& h = req.hyper;
  if (h.n_epochs < 0 || h.n_epochs > 50) return invalid_argument("n_epochs must be 1 to 50 or \"auto\"").with_field("n_epochs");
  if (h.batch_size < 0 || h.batch_size > 256)
    return invalid_argument("batch_size must be 1 to 256 or \"auto\"").with_field("batch_size");
  if (h.learning_rate_multiplier < 0 || h.learning_rate_multiplier > 100)
    return invalid_argument("learning_rate_multiplier must be above 0 and at most 100, or \"auto\"")
        .with_field("learning_rate_multiplier");
  if (h.lora_rank < 0 || h.lora_rank > 256) return invalid_argument("lora_rank must be 1 to 256").with_field("lora_rank");
  if (h.lora_alpha < 0 || h.lora_alpha > 4096) return invalid_argument("lora_alpha must be above 0").with_field("lora_alpha");
  auto base = hooks_.base_model(req.model, org);
  if (!base.is_ok()) return Status(base.status().code(), base.status().message()).with_field("model");
  for (const auto& [field, id] : {std::pair{"training_file", &req.training_file}, std::pair{"validation_file", &req.validation_file}}) {
    if (id->empty()) continue;
    auto f = files_.get(org, *id);
    if (!f.is_ok()) return Status(f.status().code(), f.status().message()).with_field(field);
    if (f->purpose != "fine-tune")
      return invalid_argument(fmt::format("file {} has purpose '{}', not 'fine-tune'", *id, f->purpose)).with_field(field);
  }

  FineTuneJob j;
  j.id = time_ordered_id("ftjob-", 24);
  j.org = org;
  j.project = project;
  j.key_id = key_id;
  j.model = req.model;
  j.training_file = req.training_file;
  j.validation_file = req.validation_file;
  j.suffix = req.suffix;
  j.seed = req.seed.value_or(static_cast<int64_t>(random_u64() % 1000000000));
  j.requested = req.hyper;
  j.created_at = unix_s();
  j.staging_dir = (fs::path(options_.dir) / j.id).string();
  std::error_code ec;
  fs::create_directories(j.staging_dir, ec);
  if (ec) return unavailable(fmt::format("cannot create the fine-tuning directory: {}", ec.message()));
  auto cleanup = [&] { fs::remove_all(j.staging_dir, ec); };

  // The files as the model will see them: tokenized now, so that what cannot be trained is a 400.
  auto train = hooks_.tokenize(req.model, files_.path_of(req.training_file), j.staging_dir + "/train.tokens.jsonl");
  if (!train.is_ok()) {
    cleanup();
    return invalid_argument(fmt::format("training file {}: {}", req.training_file, train.status().message()))
        .with_field("training_file");
  }
  TokenizedFile valid;
  if (!req.validation_file.empty()) {
    auto v = hooks_.tokenize(req.model, files_.path_of(req.validation_file), j.staging_dir + "/valid.tokens.jsonl");
    if (!v.is_ok()) {
      cleanup();
      return invalid_argument(fmt::format("validation file {}: {}", req.validation_file, v.status().message()))
          .with_field("validation_file");
    }
    valid = *v;
  }
  const int64_t ctx = base->second;
  if (std::max(train->longest, valid.longest) > ctx) {
    cleanup();
    return invalid_argument(fmt::format("an example has {} tokens, more than the model's context of {}",
                                        std::max(train->longest, valid.longest), ctx))
        .with_field(train->longest > ctx ? "training_file" : "validation_file");
  }
  auto_hyperparameters(j, *train);
  j.train_tokens_per_epoch = train->trained_tokens;
  j.valid_tokens = valid.trained_tokens;
  auto l = std::make_unique<Live>();
  // The estimate is what a success bills (planned_tokens).
  const int64_t micros = hooks_.price ? hooks_.price(j.model, planned_tokens(j)) : 0;
  if (micros > 0 && hooks_.hold) {
    auto held = hooks_.hold(j, micros,
                            fmt::format("this fine-tune may cost {:.6f} USD ({} epochs × {} trained tokens + {} validation "
                                        "tokens)",
                                        micros / 1e6, j.hyper.n_epochs, train->trained_tokens, valid.trained_tokens));
    if (!held.is_ok()) {
      cleanup();
      return held.status();
    }
    l->hold = *held;
  }
  l->job = std::move(j);
  add_event(*l, fmt::format("Validating training file: {}", req.training_file));
  add_event(*l, fmt::format("Files validated: {} examples, {} tokens, {} of them trained, per epoch", train->examples,
                            train->tokens, train->trained_tokens));
  persist(*l);
  if (!l->unsaved.empty()) {
    if (hooks_.release && l->hold) hooks_.release(l->hold);
    cleanup();
    return unavailable("the fine-tuning job could not be saved; retry");
  }
  FineTuneJob out = l->job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_by_id_[out.id] = std::move(l);
  }
  loop_cv_.notify_all();
  return out;
}

Result<FineTuneJob> FineTuneController::get(const std::string& org, const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_by_id_.find(id);
  if (it == jobs_by_id_.end() || it->second->job.org != org) return not_found(fmt::format("Fine-tuning job {} not found", id));
  return it->second->job;
}

std::vector<FineTuneJob> FineTuneController::list(const std::string& org) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FineTuneJob> out;
  for (auto it = jobs_by_id_.rbegin(); it != jobs_by_id_.rend(); ++it)  // ids sort by creation time
    if (it->second->job.org == org) out.push_back(it->second->job);
  return out;
}

Result<FineTuneJob> FineTuneController::cancel(const std::string& org, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_by_id_.find(id);
  if (it == jobs_by_id_.end() || it->second->job.org != org) return not_found(fmt::format("Fine-tuning job {} not found", id));
  Live& l = *it->second;
  if (is_final(l.job.state))
    return failed_precondition(fmt::format("the job has already {}", state_name(l.job.state)));
  if (!l.job.capacity_job.empty()) {
    auto c = jobs_.cancel(org, l.job.capacity_job);  // SIGTERM, grace, SIGKILL: the trainer's whole tree
    if (!c.is_ok() && c.status().code() != StatusCode::kFailedPrecondition)
      NC_LOG_WARN("fine-tuning job {}: cancelling {}: {}", id, l.job.capacity_job, c.status().to_string());
  }
  l.job.state = FineTuneState::kCancelled;
  l.job.finished_at = unix_s();
  add_event(l, "Fine-tuning job cancelled");
  if (l.job.capacity_job.empty()) settle(l);  // nothing ran: nothing to bill
  persist(l);
  return l.job;
}

Result<std::vector<FineTuneEvent>> FineTuneController::events(const std::string& org, const std::string& id,
                                                              const std::string& after, int64_t limit, bool* has_more) const {
  NC_ASSIGN_OR_RETURN(FineTuneJob j, get(org, id));
  if (!store_) return std::vector<FineTuneEvent>{};
  int64_t before = 0;
  if (!after.empty()) {
    const size_t dash = after.rfind('-');
    before = dash == std::string::npos ? 0 : std::atoll(after.c_str() + dash + 1);
    if (before <= 0) return invalid_argument(fmt::format("'after' is not an event of this job: {}", after)).with_field("after");
  }
  NC_ASSIGN_OR_RETURN(auto list, store_->events(j.id, before, limit + 1));
  if (has_more) *has_more = static_cast<int64_t>(list.size()) > limit;
  if (static_cast<int64_t>(list.size()) > limit) list.resize(static_cast<size_t>(limit));
  return list;
}

Status FineTuneController::delete_model(const std::string& org, const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, l] : jobs_by_id_) {
    if (l->job.org != org || l->job.fine_tuned_model != model || l->job.deleted_model) continue;
    if (hooks_.undeploy) hooks_.undeploy(model);
    l->job.deleted_model = true;
    add_event(*l, fmt::format("Fine-tuned model {} deleted", model));
    persist(*l);
    return Status::ok();
  }
  return not_found(fmt::format("The model '{}' does not exist", model));
}

void FineTuneController::fail(Live& l, std::string code, std::string message) {
  l.job.state = FineTuneState::kFailed;
  l.job.finished_at = unix_s();
  l.job.error_code = std::move(code);
  l.job.error_message = std::move(message);
  add_event(l, "Fine-tuning job failed: " + l.job.error_message, "message", nullptr, "error");
}

// Bills what was trained (once) and gives the budget hold back.
void FineTuneController::settle(Live& l) {
  if (l.job.billed) return;
  // What the job trained, from the tokenized files we made: the whole plan when it succeeded; what the
  // trainer reported (never more than the plan) when it stopped early. The trainer's own numbers are
  // only a progress report: it runs in the organization's sandbox.
  const int64_t plan = planned_tokens(l.job);
  const int64_t tokens =
      l.job.state == FineTuneState::kSucceeded ? plan : std::clamp<int64_t>(l.job.trained_tokens, 0, plan);
  l.job.trained_tokens = tokens;
  if (tokens > 0 && hooks_.bill) {
    Status st = hooks_.bill(l.job, tokens);
    if (!st.is_ok()) {
      NC_LOG_WARN("fine-tuning job {}: billing {} tokens: {} (retried)", l.job.id, tokens, st.to_string());
      return;
    }
  }
  if (l.hold && hooks_.release) hooks_.release(l.hold);
  l.hold = 0;
  l.job.billed = true;
  if (tokens > 0) add_event(l, fmt::format("Billed {} trained tokens", tokens));
}

void FineTuneController::submit_trainer(Live& l) {
  FineTuneJob& j = l.job;
  auto base = hooks_.base_model(j.model, j.org);
  if (!base.is_ok()) {
    fail(l, "model_not_available", fmt::format("the base model {} is no longer served", j.model));
    settle(l);
    return;
  }
  capacity::JobSpec spec;
  spec.name = "fine-tune " + j.id;
  spec.command = options_.python;
  spec.args = {"neocloud_train.py",
               "--model", "base.gguf",
               "--train", "train.tokens.jsonl",
               "--out", "adapter.gguf",
               "--events", "events.jsonl",
               "--checkpoint-dir", "checkpoints",
               "--epochs", std::to_string(j.hyper.n_epochs),
               "--batch-size", std::to_string(j.hyper.batch_size),
               "--learning-rate", fmt::format("{:.8g}", kBaseLearningRate * j.hyper.learning_rate_multiplier),
               "--rank", std::to_string(j.hyper.lora_rank),
               "--alpha", fmt::format("{:.8g}", j.hyper.lora_alpha),
               "--seed", std::to_string(j.seed),
               "--threads", std::to_string(options_.threads)};
  spec.inputs = {{"base.gguf", base->first}, {"train.tokens.jsonl", j.staging_dir + "/train.tokens.jsonl"}};
  if (!j.validation_file.empty()) {
    spec.args.insert(spec.args.end(), {"--valid", "valid.tokens.jsonl"});
    spec.inputs.emplace_back("valid.tokens.jsonl", j.staging_dir + "/valid.tokens.jsonl");
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.trainer_dir, ec))
    if (e.path().extension() == ".py") spec.inputs.emplace_back(e.path().filename().string(), e.path().string());
  spec.env = {{"OMP_NUM_THREADS", std::to_string(options_.threads)}, {"PYTHONDONTWRITEBYTECODE", "1"}};
  spec.shape.gpus = options_.gpus;
  spec.max_duration_s = options_.max_duration_s;
  spec.requeue = true;
  auto cj = jobs_.submit(j.org, j.project, spec, j.key_id);
  if (!cj.is_ok()) {
    fail(l, cj.status().code() == StatusCode::kResourceExhausted ? "insufficient_quota" : "capacity_unavailable",
         "the trainer could not be queued: " + cj.status().message());
    settle(l);
    return;
  }
  j.capacity_job = cj->id;
  j.state = FineTuneState::kQueued;
  add_event(l, fmt::format("Fine-tuning job queued as capacity job {} ({} GPU(s))", cj->id, options_.gpus));
}

namespace {
// The trainer's events are read as untrusted input (the file is in a directory the organization's uid
// writes): a missing, null or mistyped field is its default, never an exception.
double num(const json& e, const char* k, double d) {
  auto it = e.find(k);
  return it != e.end() && it->is_number() ? it->get<double>() : d;
}
int64_t integer(const json& e, const char* k, int64_t d) {
  auto it = e.find(k);
  return it != e.end() && it->is_number_integer() ? it->get<int64_t>() : d;
}
std::string text(const json& e, const char* k, std::string d, size_t max = 2000) {
  auto it = e.find(k);
  if (it == e.end() || !it->is_string()) return d;
  return utf8_clean(it->get_ref<const std::string&>(), max);
}
constexpr int64_t kMaxEventBytesPerPoll = 1 << 20;
constexpr size_t kKeptCheckpoints = 3;
constexpr size_t kMaxEventLine = 64 * 1024;
}  // namespace

void FineTuneController::read_trainer_events(Live& l, const std::string& work_dir) {
  FineTuneJob& j = l.job;
  const int fd = open_in_job_dir(work_dir, {"events.jsonl"});
  if (fd < 0) return;
  std::string chunk(static_cast<size_t>(kMaxEventBytesPerPoll), '\0');
  const ssize_t got = ::pread(fd, chunk.data(), chunk.size(), j.events_offset);
  ::close(fd);
  if (got <= 0) return;
  chunk.resize(static_cast<size_t>(got));
  size_t end = chunk.rfind('\n');
  if (end == std::string::npos) {
    // No complete line: one still being written, or a line longer than a whole poll (skipped).
    if (chunk.size() == static_cast<size_t>(kMaxEventBytesPerPoll)) j.events_offset += got;
    return;
  }
  j.events_offset += static_cast<int64_t>(end) + 1;  // complete lines only: a partial one is read next time
  for (size_t pos = 0; pos <= end;) {
    const size_t nl = chunk.find('\n', pos);
    const std::string_view line(chunk.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.size() > kMaxEventLine) continue;
    json e = parse_json_or_discarded(line);
    if (!e.is_object()) continue;
    const std::string type = text(e, "type", "");
    if (type == "started") {
      j.total_steps = integer(e, "steps", j.total_steps);
      add_event(l, fmt::format("Training started on {} ({} threads): {} examples, {} steps", text(e, "device", "?", 64),
                               integer(e, "threads", 0), integer(e, "examples", 0), j.total_steps));
    } else if (type == "step") {
      j.step = integer(e, "step", j.step);
      j.trained_tokens = std::max<int64_t>(0, integer(e, "trained_tokens", j.trained_tokens));
      const double elapsed = num(e, "elapsed_s", 0.0);
      if (j.step > 0 && j.total_steps > j.step && elapsed >= 0 && elapsed < 1e9) {
        const double left = elapsed / static_cast<double>(j.step) * static_cast<double>(j.total_steps - j.step);
        if (left < 1e9) j.estimated_finish = unix_s() + static_cast<int64_t>(std::ceil(left));
      }
      json data = {{"step", j.step}, {"total_steps", j.total_steps}, {"trained_tokens", j.trained_tokens}};
      std::string msg = fmt::format("Step {}/{}", j.step, j.total_steps);
      if (auto it = e.find("train_loss"); it != e.end() && it->is_number()) {
        data["train_loss"] = it->get<double>();
        msg += fmt::format(": training loss={:.4f}", it->get<double>());
      }
      add_event(l, std::move(msg), "metrics", std::move(data));
    } else if (type == "checkpoint") {
      Checkpoint c;
      c.step = integer(e, "step", 0);
      c.id = fmt::format("ftckpt-{}-{}", id_suffix(j), c.step);
      c.created_at = unix_s();
      c.train_loss = num(e, "train_loss", 0.0);
      if (auto it = e.find("valid_loss"); it != e.end() && it->is_number()) c.valid_loss = it->get<double>();
      // The trainer names its file inside the sandbox; it is the same name in the work directory.
      const std::string name = fs::path(text(e, "path", "", 4096)).filename().string();
      c.path = j.staging_dir + "/" + name;
      // One per epoch, in step order (a requeued run's repeats are not taken again), at most one per
      // epoch in all.
      const bool fresh = (j.checkpoints.empty() || c.step > j.checkpoints.back().step) &&
                         ++l.checkpoints_seen <= std::max<int64_t>(1, j.hyper.n_epochs);
      const bool ok = fresh && !name.empty() && name[0] != '.' && fs::path(name).extension() == ".gguf" &&
                      copy_from_job(work_dir, {"checkpoints", name}, c.path).is_ok();
      if (ok) {
        add_event(l, fmt::format("Checkpoint created at step {}", c.step), "message",
                  {{"step", c.step}, {"train_loss", c.train_loss}, {"valid_loss", c.valid_loss ? json(*c.valid_loss) : json()}});
        j.checkpoints.push_back(std::move(c));
        // The last three are kept, as OpenAI keeps them (an adapter of a large model is tens of MB).
        while (j.checkpoints.size() > kKeptCheckpoints) {
          std::error_code ec;
          fs::remove(j.checkpoints.front().path, ec);
          j.checkpoints.erase(j.checkpoints.begin());
        }
      }
    } else if (type == "done") {
      j.trained_tokens = std::clamp<int64_t>(integer(e, "trained_tokens", j.trained_tokens), 0, INT64_MAX / 4) +
                         std::clamp<int64_t>(integer(e, "valid_tokens", 0), 0, INT64_MAX / 4);
      add_event(l, fmt::format("Training done: {} steps, final training loss={:.4f}", integer(e, "step", j.step),
                               num(e, "train_loss", 0.0)));
    } else if (type == "error") {
      j.error_code = text(e, "code", "training_failed", 64);
      j.error_message = text(e, "message", "");
    }
  }
}

void FineTuneController::on_capacity_end(Live& l, const capacity::Job& cj, const std::string& work_dir) {
  FineTuneJob& j = l.job;
  if (j.state != FineTuneState::kCancelled) {
    const std::string kept = j.staging_dir + "/adapter.gguf";
    // NotFound: the trainer left no adapter (it failed); any other outcome is the deployment's.
    Status st = cj.state == capacity::JobState::kSucceeded ? copy_from_job(work_dir, {"adapter.gguf"}, kept)
                                                           : not_found("no adapter");
    if (st.code() != StatusCode::kNotFound) {
      const std::string id = model_id(j);
      if (st.is_ok() && hooks_.deploy) st = hooks_.deploy(id, j.model, kept, j.org);
      if (st.is_ok()) {
        j.state = FineTuneState::kSucceeded;
        j.finished_at = unix_s();
        j.fine_tuned_model = id;
        add_event(l, fmt::format("New fine-tuned model created: {}", id));
        add_event(l, "The job has successfully completed");
      } else {
        fail(l, "deploy_failed", "the trained adapter could not be served: " + st.message());
      }
    } else if (cj.state == capacity::JobState::kCancelled) {
      fail(l, "cancelled_by_platform", "the trainer's capacity job was cancelled");
    } else {
      std::string why = j.error_message;
      if (why.empty()) {
        auto log = jobs_.logs(j.org, cj.id, 0, 1 << 20);
        std::string tail = log.is_ok() ? log->first : "";
        if (tail.size() > 600) tail = "..." + tail.substr(tail.size() - 600);
        tail = utf8_clean(tail, 700);
        why = fmt::format("the trainer ended {} (exit status {}): {}", capacity::job_state_name(cj.state), cj.exit_code, tail);
      }
      fail(l, j.error_code.empty() ? "training_failed" : j.error_code, why);
    }
  }
  settle(l);
}

void FineTuneController::follow(Live& l) {
  FineTuneJob& j = l.job;
  auto cj = jobs_.get(j.org, j.capacity_job);
  if (!cj.is_ok()) {
    if (!is_final(j.state)) fail(l, "capacity_job_lost", "the trainer's capacity job is gone");
    settle(l);
    return;
  }
  const std::string work = work_dir_of(*cj);
  // While it runs, one bounded read per poll; once it ended, everything it wrote (bounded still).
  for (int reads = 0; reads < (capacity::is_terminal(cj->state) ? 64 : 1); ++reads) {
    const int64_t before = j.events_offset;
    read_trainer_events(l, work);
    if (j.events_offset == before) break;
  }
  if (cj->state == capacity::JobState::kRunning && j.state == FineTuneState::kQueued) {
    j.state = FineTuneState::kRunning;
    add_event(l, "Fine-tuning job started");
  }
  if (cj->held && !is_final(j.state)) {
    auto r = jobs_.release(j.org, cj->id);
    add_event(l, r.is_ok() ? std::string("The server restarted while the trainer ran: the trainer was requeued")
                           : "The server restarted while the trainer ran; requeueing it failed: " + r.status().message(),
              "message", nullptr, r.is_ok() ? "warn" : "error");
    if (!r.is_ok()) jobs_.cancel(j.org, cj->id);
    if (j.state == FineTuneState::kRunning) j.state = FineTuneState::kQueued;
  }
  if (capacity::is_terminal(cj->state)) on_capacity_end(l, *cj, work);
}

void FineTuneController::tick() {
  std::vector<std::string> active;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, l] : jobs_by_id_)
      if (!is_final(l->job.state) || !l->job.billed || !l->unsaved.empty()) active.push_back(id);
  }
  for (const auto& id : active) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_by_id_.find(id);
    if (it == jobs_by_id_.end()) continue;
    Live& l = *it->second;
    const auto before = to_doc(l.job);
    try {
      if (l.job.state == FineTuneState::kValidatingFiles) submit_trainer(l);
      else if (!l.job.capacity_job.empty() && !l.job.billed) follow(l);
      else if (is_final(l.job.state)) settle(l);
      if (is_final(l.job.state) && l.job.billed) drop_inputs(l);
      if (!l.unsaved.empty() || to_doc(l.job) != before) persist(l);
    } catch (const std::exception& e) {  // a bug must cost this poll, not the server
      NC_LOG_ERROR("fine-tuning job {}: {}", id, e.what());
    }
  }
}

Status FineTuneController::recover() {
  if (!store_) return Status::ok();
  NC_ASSIGN_OR_RETURN(auto all, store_->load_all());
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& j : all) {
    auto l = std::make_unique<Live>();
    l->job = std::move(j);
    if (l->job.state == FineTuneState::kSucceeded && !l->job.deleted_model && hooks_.deploy) {
      const auto ck = l->job.staging_dir + "/adapter.gguf";
      if (Status st = hooks_.deploy(l->job.fine_tuned_model, l->job.model, ck, l->job.org); !st.is_ok())
        NC_LOG_ERROR("fine-tuned model {}: cannot serve it again: {}", l->job.fine_tuned_model, st.to_string());
    }
    // A job that may still train holds its estimate against the budgets again (holds live in memory).
    // It was admitted before the restart: a refusal now is logged, not a reason to stop it.
    if (!l->job.billed && !is_final(l->job.state) && hooks_.price && hooks_.hold) {
      const FineTuneJob& j = l->job;
      const int64_t micros = hooks_.price(j.model, planned_tokens(j));
      if (micros > 0) {
        auto held = hooks_.hold(j, micros, "held again after a restart");
        if (held.is_ok()) l->hold = *held;
        else NC_LOG_WARN("fine-tuning job {}: its budget hold was not taken again: {}", j.id, held.status().to_string());
      }
    }
    jobs_by_id_[l->job.id] = std::move(l);
  }
  return Status::ok();
}

// The token files are needed only while the trainer may run; the adapter and checkpoints stay.
void FineTuneController::drop_inputs(Live& l) {
  std::error_code ec;
  for (const char* f : {"train.tokens.jsonl", "valid.tokens.jsonl"}) fs::remove(fs::path(l.job.staging_dir) / f, ec);
}

void FineTuneController::start() {
  std::lock_guard<std::mutex> lock(loop_mu_);
  if (stopping_ || loop_.joinable()) return;
  loop_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(loop_mu_);
    while (!stopping_) {
      lock.unlock();
      tick();
      lock.lock();
      loop_cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms), [this] { return stopping_; });
    }
  });
}

void FineTuneController::stop() {
  std::thread loop;
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    stopping_ = true;
    loop.swap(loop_);
  }
  loop_cv_.notify_all();
  if (loop.joinable()) loop.join();
}

}  // namespace nc::training

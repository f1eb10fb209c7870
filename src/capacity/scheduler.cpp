// Scheduler (scheduler.h): one scheduling cycle over the queue and the cluster.
#include "capacity/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <queue>

namespace nc::capacity {

std::string_view pending_reason_name(PendingReason r) {
  switch (r) {
    case PendingReason::kNone: return "";
    case PendingReason::kQuota: return "quota";
    case PendingReason::kResources: return "resources";
    case PendingReason::kBackfill: return "priority";
  }
  return "";
}

size_t Scheduler::ShapeHash::operator()(const ShapeKey& k) const {
  size_t h = std::hash<int64_t>()(static_cast<int64_t>(k.gpus) * 1000003 + k.nodes * 7919 + k.milli);
  auto mix = [&](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(std::hash<int64_t>()(k.cpu));
  mix(std::hash<int64_t>()(k.mem));
  mix(std::hash<int64_t>()(k.min_mem));
  mix(static_cast<size_t>(k.priority));
  for (const auto& t : k.types) mix(std::hash<std::string>()(t));
  return h;
}

Result<std::unique_ptr<Scheduler>> Scheduler::create(Cluster cluster, SchedulerOptions options) {
  NC_ASSIGN_OR_RETURN(auto policy, make_policy(options.placement, options.target, options.seed));
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(cluster), std::move(policy), std::move(options)));
}

namespace {
std::vector<int64_t> type_capacities(const GangPlacer& p) {
  std::vector<int64_t> c;
  for (size_t t = 0; t < p.types().size(); ++t) c.push_back(p.type_capacity_milli(static_cast<int>(t)));
  return c;
}
}  // namespace

Scheduler::Scheduler(Cluster cluster, std::unique_ptr<PlacementPolicy> policy, SchedulerOptions options)
    : options_(std::move(options)),
      placer_(std::move(cluster), std::move(policy)),
      quota_(static_cast<int>(placer_.types().size())),
      drf_(type_capacities(placer_)),
      queues_(kNumPriorityClasses) {
  by_node_.resize(placer_.cluster().size());
  spot_node_milli_.assign(placer_.cluster().size(), 0);
  spot_milli_.assign(placer_.types().size(), 0);
}

int Scheduler::org_id(const std::string& org) {
  auto it = org_ids_.find(org);
  if (it != org_ids_.end()) return it->second;
  const int id = static_cast<int>(org_names_.size());
  org_ids_.emplace(org, id);
  org_names_.push_back(org);
  for (auto& per_class : queues_) per_class.resize(org_names_.size());
  return id;
}

Status Scheduler::submit(const SchedJob& job) {
  NC_RETURN_IF_ERROR(job.shape.validate());
  if (waiting_.count(job.id) || running_.count(job.id)) {
    return Status(StatusCode::kAlreadyExists, fmt::format("job {} is already known to the scheduler", job.id));
  }
  if (job.reservation != 0) return submit_to_reservation(job);
  ShapeKey key{job.shape.gpus, job.shape.nodes, job.shape.gpu_milli, job.shape.cpu_milli, job.shape.memory_mib,
               job.shape.min_gpu_memory_mib, job.shape.gpu_types, job.priority};
  std::sort(key.types.begin(), key.types.end());
  int shape = 0;
  auto it = shape_ids_.find(key);
  if (it != shape_ids_.end()) {
    shape = it->second;
  } else {
    Shape s;
    s.types = placer_.eligible_types(job.shape);
    if (job.shape.gpus > 0 && s.types.empty()) {
      std::string have;
      for (size_t t = 0; t < placer_.types().size(); ++t) {
        const int ti = static_cast<int>(t);
        have += fmt::format("{}{} ({} nodes, up to {} GPUs each, {} GPUs)", have.empty() ? "" : ", ", placer_.types()[t],
                            placer_.nodes_of_type(ti).size(), placer_.max_gpus_per_node(ti),
                            placer_.type_capacity_milli(ti) / kMilliPerGpu);
      }
      return failed_precondition(fmt::format(
          "no GPU type in this cluster can ever host {} GPU(s){}{}{}; the cluster has: {}", job.shape.gpus,
          job.shape.nodes > 0 ? fmt::format(" on {} node(s)", job.shape.nodes) : "",
          job.shape.gpu_types.empty() ? "" : fmt::format(" of type {}", fmt::join(job.shape.gpu_types, "|")),
          job.shape.min_gpu_memory_mib > 0 ? fmt::format(" with >= {} MiB each", job.shape.min_gpu_memory_mib) : "",
          have.empty() ? "no GPUs" : have));
    }
    s.cpu = job.shape.cpu_milli;
    s.mem = job.shape.memory_mib;
    s.milli = job.shape.gpu_milli;
    ShapeKey fkey = key;
    fkey.cpu = fkey.mem = 0;
    fkey.milli = job.shape.fractional() ? 0 : kMilliPerGpu;
    auto [f, added] = family_ids_.emplace(std::move(fkey), static_cast<int>(families_.size()));
    if (added) families_.emplace_back();
    s.family = f->second;
    shape = static_cast<int>(shapes_.size());
    shapes_.push_back(std::move(s));
    shape_ids_.emplace(std::move(key), shape);
  }
  const int org = org_id(job.org);
  auto [w, inserted] = waiting_.emplace(job.id, Queued{job, org, shape, PendingReason::kNone});
  OrgQueue& oq = queues_[static_cast<size_t>(job.priority)][static_cast<size_t>(org)];
  Entry e{job.submitted_us, job.id, &w->second, shape,
          job.max_duration_s > 0 ? job.max_duration_s * 1000000 : INT64_MAX};
  auto before = [](const Entry& a, const Entry& b) {
    return a.submitted != b.submitted ? a.submitted < b.submitted : a.id < b.id;
  };
  if (oq.entries.empty() || before(oq.entries.back(), e)) {
    oq.entries.push_back(e);  // the usual case: arrivals in time order
  } else {
    oq.entries.insert(std::upper_bound(oq.entries.begin(), oq.entries.end(), e, before), e);  // a requeue
  }
  ++queued_;
  return Status::ok();
}

void Scheduler::index_running(const RunningJob* r, bool add) {
  for (const auto& part : r->placement.parts) {
    if (r->priority == PriorityClass::kSpot) {
      int64_t m = 0;
      for (const auto& g : part.gpus) m += g.milli;
      spot_node_milli_[part.node] += add ? m : -m;
    }
    auto& v = by_node_[part.node];
    if (add) {
      if (std::find(v.begin(), v.end(), r) == v.end()) v.push_back(r);
    } else {
      auto it = std::find(v.begin(), v.end(), r);
      if (it != v.end()) {
        *it = v.back();
        v.pop_back();
      }
    }
  }
}

void Scheduler::charge(int org, const GangPlacement& p, int sign) {
  const int t = placer_.type_id(p.gpu_type);
  const int64_t milli = sign * p.total_gpu_milli();
  quota_.charge(org, t, milli);
  drf_.charge(org, t, milli);
}

Scheduler::Entry* Scheduler::find_entry(OrgQueue& oq, int64_t submitted, uint64_t id) {
  auto it = std::lower_bound(oq.entries.begin(), oq.entries.end(), std::make_pair(submitted, id),
                             [](const Entry& e, const std::pair<int64_t, uint64_t>& k) {
                               return e.submitted != k.first ? e.submitted < k.first : e.id < k.second;
                             });
  return it != oq.entries.end() && it->id == id && it->q != nullptr ? &*it : nullptr;
}

void Scheduler::compact(OrgQueue& oq) {
  std::erase_if(oq.entries, [](const Entry& e) { return e.q == nullptr; });
  oq.dead = 0;
}

bool Scheduler::dominated(const Shape& s, bool avoid) const {
  const Family& f = families_[static_cast<size_t>(s.family)];
  if (f.cycle != cycle_) return false;
  for (const auto& x : f.failed) {
    if ((!x.avoid || avoid) && s.cpu >= x.cpu && s.mem >= x.mem && s.milli >= x.milli) return true;
  }
  return false;
}

Status Scheduler::remove(uint64_t id) {
  if (auto w = waiting_.find(id); w != waiting_.end() && w->second.job.reservation != 0) {
    if (auto h = reservations_.find(w->second.job.reservation); h != reservations_.end()) {
      std::erase(h->second.queue, id);
    }
    waiting_.erase(w);
    --queued_;
    return Status::ok();
  }
  if (auto w = waiting_.find(id); w != waiting_.end()) {
    const Queued& q = w->second;
    OrgQueue& oq = queues_[static_cast<size_t>(q.job.priority)][static_cast<size_t>(q.org)];
    if (Entry* e = find_entry(oq, q.job.submitted_us, id)) {
      e->q = nullptr;
      ++oq.dead;
      if (oq.dead > 64 && oq.dead > oq.live()) compact(oq);
    }
    waiting_.erase(w);
    --queued_;
    return Status::ok();
  }
  auto r = running_.find(id);
  if (r == running_.end()) return not_found(fmt::format("job {} is not known to the scheduler", id));
  RunningJob& job = *r->second;
  if (job.reservation != 0) {
    auto h = reservations_.find(job.reservation);
    if (h != reservations_.end() && h->second.pool) {
      Held& held = h->second;
      // The placement is in main-cluster terms: map it back onto the pool's sub-nodes.
      GangPlacement sub = job.placement;
      for (auto& part : sub.parts) {
        for (size_t i = 0; i < held.pool_nodes.size(); ++i) {
          if (held.pool_nodes[i] != part.node) continue;
          part.node = i;
          for (auto& g : part.gpus) {
            for (size_t k = 0; k < held.pool_gpus[i].size(); ++k) {
              if (held.pool_gpus[i][k] == g.gpu) {
                g.gpu = static_cast<int>(k);
                break;
              }
            }
          }
          break;
        }
      }
      (void)held.pool->release(sub);
      --held.running;
      release_reservation_if_done(held);
    }
    running_.erase(r);
    return Status::ok();
  }
  if (!job.stopping) {
    NC_RETURN_IF_ERROR(placer_.release(job.placement));
    index_running(&job, false);
    charge(job.org, job.placement, -1);
    if (job.priority == PriorityClass::kSpot && placer_.type_id(job.placement.gpu_type) >= 0) {
      spot_milli_[static_cast<size_t>(placer_.type_id(job.placement.gpu_type))] -= job.placement.total_gpu_milli();
    }
  }
  running_.erase(r);
  return Status::ok();
}

void Scheduler::start(Queued& q, GangPlacement p, int64_t now_us) {
  // The placement was computed on this very state: allocate cannot fail.
  Status s = placer_.allocate(p);
  if (!s.is_ok()) std::abort();
  auto r = std::make_unique<RunningJob>();
  r->id = q.job.id;
  r->org = q.org;
  r->priority = q.job.priority;
  r->placement = std::move(p);
  r->started_us = now_us;
  r->ends_us = q.job.max_duration_s > 0 ? now_us + q.job.max_duration_s * 1000000 : INT64_MAX;
  index_running(r.get(), true);
  charge(r->org, r->placement, +1);
  const int t = placer_.type_id(r->placement.gpu_type);
  if (pending_reservations_ > 0 && r->priority != PriorityClass::kSpot && t >= 0) {
    reservations_note_start(t, r->placement.total_gpu_milli(), r->ends_us);
  }
  if (r->priority == PriorityClass::kSpot && t >= 0) spot_milli_[static_cast<size_t>(t)] += r->placement.total_gpu_milli();
  ++stats_.started;
  running_[r->id] = std::move(r);
}

std::optional<GangPlacement> Scheduler::place_by_preempting(const JobShape& shape, const std::vector<int>& types,
                                                            PriorityClass priority, std::vector<Decision>& out,
                                                            std::vector<uint64_t>* victims_out) {
  // Worth a plan only if the free and spot-held capacity of some allowed type could cover the job.
  bool spot_here = false;
  for (int t : types) {
    spot_here = spot_here || (spot_milli_[static_cast<size_t>(t)] > 0 &&
                              placer_.type_free_milli(t) + spot_milli_[static_cast<size_t>(t)] >= shape.total_gpu_milli());
  }
  if (!spot_here || preemption_tries_ >= options_.preemption_tries_per_cycle) return std::nullopt;
  ++preemption_tries_;
  std::vector<uint64_t> victims = preemption_.plan(placer_, shape, types, priority, by_node_, spot_node_milli_);
  if (victims.empty()) return std::nullopt;
  for (uint64_t v : victims) (void)placer_.release(running_.at(v)->placement);
  auto p = placer_.place(shape, types, nullptr);
  if (!p) {
    for (uint64_t v : victims) {
      if (!placer_.allocate(running_.at(v)->placement).is_ok()) std::abort();  // just released: fits
    }
    return std::nullopt;
  }
  // Victims on nodes the job did not take were not needed after all: they keep running.
  std::vector<uint64_t> needed;
  for (uint64_t v : victims) {
    const RunningJob& r = *running_.at(v);
    bool touches = false;
    for (const auto& vp : r.placement.parts) {
      for (const auto& jp : p->parts) touches = touches || vp.node == jp.node;
    }
    if (touches) {
      needed.push_back(v);
    } else if (!placer_.allocate(r.placement).is_ok()) {
      std::abort();  // its nodes are untouched since it was released
    }
  }
  for (uint64_t v : needed) {
    RunningJob& r = *running_.at(v);
    index_running(&r, false);
    charge(r.org, r.placement, -1);
    const int t = placer_.type_id(r.placement.gpu_type);
    if (t >= 0) spot_milli_[static_cast<size_t>(t)] -= r.placement.total_gpu_milli();
    r.stopping = true;
    out.push_back({Decision::Kind::kPreempt, v, r.placement, {}});
    ++stats_.preempted;
  }
  *victims_out = std::move(needed);
  return p;
}

Scheduler::Outcome Scheduler::try_start(Queued& q, int64_t now_us, std::vector<Decision>& out) {
  Shape& s = shapes_[static_cast<size_t>(q.shape)];
  const SchedJob& job = q.job;
  const int64_t end = job.max_duration_s > 0 ? now_us + job.max_duration_s * 1000000 : INT64_MAX;
  // Spot jobs may sit on a non-spot job's reserved nodes: it will preempt them when it needs them.
  const bool avoid = options_.backfill && BackfillPolicy::must_avoid(shadow_, end) &&
                     !(job.priority == PriorityClass::kSpot && shadow_priority_ != PriorityClass::kSpot);
  if (s.quota_token == quota_token_) {
    q.reason = PendingReason::kQuota;
    return Outcome::kBlocked;
  }
  if (s.blocked_any == cycle_ || (avoid && s.blocked_avoid == cycle_)) {
    q.reason = s.blocked_any == cycle_ ? PendingReason::kResources : PendingReason::kBackfill;
    return Outcome::kBlocked;
  }
  allowed_.clear();
  const int64_t milli = job.shape.total_gpu_milli();
  for (int t : s.types) {
    if (!quota_.allows(q.org, t, milli)) continue;
    // GPUs promised to a reservation that starts before this job would end are not for it (spot jobs
    // may use them: they are preempted when the reservation starts).
    if (pending_reservations_ > 0 && job.priority != PriorityClass::kSpot && !reservations_allow(t, milli, end)) continue;
    allowed_.push_back(t);
  }
  if (job.shape.gpus > 0 && allowed_.empty()) {
    s.quota_token = quota_token_;
    q.reason = PendingReason::kQuota;
    return Outcome::kBlocked;
  }
  if (dominated(s, avoid)) {
    (avoid ? s.blocked_avoid : s.blocked_any) = cycle_;
    q.reason = avoid ? PendingReason::kBackfill : PendingReason::kResources;
    return Outcome::kBlocked;
  }
  ++stats_.placements;
  if (auto p = placer_.place(job.shape, allowed_, avoid ? &shadow_.nodes : nullptr)) {
    out.push_back({Decision::Kind::kStart, job.id, *p, {}});
    start(q, std::move(*p), now_us);
    return Outcome::kStarted;
  }
  if (options_.preemption && job.priority != PriorityClass::kSpot) {
    std::vector<uint64_t> victims;
    if (auto p = place_by_preempting(job.shape, allowed_, job.priority, out, &victims)) {
      out.push_back({Decision::Kind::kStart, job.id, *p, victims});
      start(q, std::move(*p), now_us);
      return Outcome::kPreempting;
    }
  }
  Family& fam = families_[static_cast<size_t>(s.family)];
  if (fam.cycle != cycle_) {
    fam.cycle = cycle_;
    fam.failed.clear();
  }
  fam.failed.push_back({s.cpu, s.mem, s.milli, avoid});
  if (avoid) {
    s.blocked_avoid = cycle_;
    q.reason = PendingReason::kBackfill;
  } else {
    s.blocked_any = cycle_;
    q.reason = PendingReason::kResources;
  }
  if (options_.backfill && !shadow_.active && job.shape.gpus > 0) {
    shadow_ = backfill_.reserve(placer_, job.id, job.shape, allowed_, by_node_, now_us);
    shadow_priority_ = job.priority;
    stats_.shadow = shadow_.active;
  }
  return Outcome::kBlocked;
}

std::vector<Decision> Scheduler::schedule(int64_t now_us) {
  ++cycle_;
  stats_ = {};
  shadow_ = {};
  preemption_tries_ = 0;
  std::vector<Decision> out;
  if (!reservations_.empty()) reservations_cycle(now_us, out);
  using HeapEntry = std::pair<double, int>;  // (dominant share, org)
  std::vector<size_t> cursor;
  for (int c = kNumPriorityClasses - 1; c >= 0; --c) {
    auto& per_org = queues_[static_cast<size_t>(c)];
    std::priority_queue<HeapEntry, std::vector<HeapEntry>, std::greater<HeapEntry>> heap;
    cursor.assign(per_org.size(), 0);
    for (size_t o = 0; o < per_org.size(); ++o) {
      if (per_org[o].dead > 0) compact(per_org[o]);
      if (per_org[o].live() > 0) heap.push({drf_.dominant_share(static_cast<int>(o)), static_cast<int>(o)});
    }
    while (!heap.empty()) {
      const int o = heap.top().second;
      heap.pop();
      ++quota_token_;
      OrgQueue& oq = per_org[static_cast<size_t>(o)];
      bool progressed = false;
      for (size_t& i = cursor[static_cast<size_t>(o)]; i < oq.entries.size(); ++i) {
        Entry& e = oq.entries[i];
        if (e.q == nullptr) continue;
        ++stats_.examined;
        // Fast path: the shape already failed in this cycle (no need to touch the job's record).
        const Shape& sh = shapes_[static_cast<size_t>(e.shape)];
        if (sh.quota_token == quota_token_ || sh.blocked_any == cycle_) continue;
        if (sh.blocked_avoid == cycle_ && shadow_.active) {
          const int64_t end = e.max_duration_us == INT64_MAX ? INT64_MAX : now_us + e.max_duration_us;
          if (BackfillPolicy::must_avoid(shadow_, end) && !(c == 0 && shadow_priority_ != PriorityClass::kSpot)) continue;
        }
        if (try_start(*e.q, now_us, out) == Outcome::kBlocked) continue;
        waiting_.erase(e.id);
        e.q = nullptr;
        ++oq.dead;
        --queued_;
        ++i;
        progressed = true;
        break;
      }
      if (progressed) heap.push({drf_.dominant_share(o), o});
    }
  }
  return out;
}

Status Scheduler::set_quota(const std::string& org, const std::string& gpu_type, std::optional<int64_t> milli) {
  int t = -1;
  if (!gpu_type.empty()) {
    t = placer_.type_id(gpu_type);
    if (t < 0) return invalid_argument(fmt::format("unknown GPU type '{}'", gpu_type));
  }
  if (milli && *milli < 0) return invalid_argument("a quota must not be negative");
  quota_.set_limit(org_id(org), t, milli);
  return Status::ok();
}

Result<std::vector<uint64_t>> Scheduler::set_node_down(const std::string& node_id, bool down) {
  size_t node = SIZE_MAX;
  for (size_t i = 0; i < placer_.cluster().size(); ++i) {
    if (placer_.cluster().node(i).id == node_id) node = i;
  }
  if (node == SIZE_MAX) return not_found(fmt::format("no node '{}'", node_id));
  placer_.set_down(node, down);
  std::vector<uint64_t> on_it;
  for (const auto& [id, r] : running_) {
    if (r->stopping) continue;
    for (const auto& part : r->placement.parts) {
      if (part.node == node) {
        on_it.push_back(id);
        break;
      }
    }
  }
  std::sort(on_it.begin(), on_it.end());
  return on_it;
}

void Scheduler::set_weight(const std::string& org, double weight) { drf_.set_weight(org_id(org), weight); }

std::optional<JobInfo> Scheduler::info(uint64_t id) const {
  if (auto w = waiting_.find(id); w != waiting_.end()) {
    JobInfo i;
    // A job skipped because its shape had already failed in a cycle was not looked at itself.
    i.reason = w->second.reason != PendingReason::kNone ? w->second.reason : PendingReason::kResources;
    return i;
  }
  auto r = running_.find(id);
  if (r == running_.end()) return std::nullopt;
  JobInfo i;
  i.state = r->second->stopping ? JobInfo::State::kStopping : JobInfo::State::kRunning;
  i.placement = r->second->placement;
  return i;
}

int64_t Scheduler::org_gpu_milli(const std::string& org) const {
  auto it = org_ids_.find(org);
  return it == org_ids_.end() ? 0 : quota_.used(it->second, -1);
}

}  // namespace nc::capacity

namespace nc::capacity {

std::pair<std::optional<int64_t>, int64_t> Scheduler::quota_of(const std::string& org, const std::string& gpu_type) const {
  auto it = org_ids_.find(org);
  if (it == org_ids_.end()) return {std::nullopt, 0};
  const int t = gpu_type.empty() ? -1 : placer_.type_id(gpu_type);
  if (!gpu_type.empty() && t < 0) return {std::nullopt, 0};
  return {quota_.limit(it->second, t), quota_.used(it->second, t)};
}

}  // namespace nc::capacity

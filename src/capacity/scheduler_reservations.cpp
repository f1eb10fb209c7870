// Scheduler: advance reservations (declared in scheduler.h). A reservation is admitted only if, at every
// moment of its window, the GPUs of its type promised to reservations plus those held by running
// non-spot jobs until then fit the type's capacity; until it starts, non-spot jobs that would still run
// at its start may not take the GPUs it needs (spot jobs may: they are preempted). At its start it takes
// its GPUs as one gang (fewest nodes) and then places its own jobs, FIFO, on a pool of exactly those GPUs.
#include <fmt/format.h>

#include <algorithm>

#include "capacity/scheduler.h"

namespace nc::capacity {

Status Scheduler::add_reservation(const Reservation& r, int64_t now_us) {
  if (r.id == 0) return invalid_argument("a reservation needs an id");
  if (reservations_.count(r.id)) return Status(StatusCode::kAlreadyExists, fmt::format("reservation {} exists", r.id));
  const int t = placer_.type_id(r.gpu_type);
  if (t < 0) return invalid_argument(fmt::format("unknown GPU type '{}'", r.gpu_type));
  if (r.gpus < 1) return invalid_argument("a reservation needs at least 1 GPU");
  if (r.end_us <= r.start_us) return invalid_argument("the end must be after the start");
  if (r.end_us <= now_us) return invalid_argument("the reservation would already be over");
  const int64_t capacity = placer_.type_capacity_milli(t);
  const int64_t need = static_cast<int64_t>(r.gpus) * kMilliPerGpu;
  if (need > capacity) {
    return failed_precondition(fmt::format("the cluster has only {} {} GPUs", capacity / kMilliPerGpu, r.gpu_type));
  }
  const int o = org_id(r.org);
  if (!quota_.allows(o, t, need - quota_.used(o, t)) || !quota_.allows(o, -1, need - quota_.used(o, -1))) {
    return failed_precondition(fmt::format("{} GPUs of {} exceed the organization's GPU quota", r.gpus, r.gpu_type));
  }
  // The moments at which the promised total can peak inside the window: its start and every other
  // reservation's start inside it.
  std::vector<int64_t> points = {std::max(r.start_us, now_us)};
  for (const auto& [id, h] : reservations_) {
    if (h.type == t && !h.ending && h.r.start_us > points[0] && h.r.start_us < r.end_us) points.push_back(h.r.start_us);
  }
  for (int64_t p : points) {
    int64_t promised = need;
    for (const auto& [id, h] : reservations_) {
      if (h.type == t && !h.ending && h.r.start_us <= p && p < h.r.end_us) promised += static_cast<int64_t>(h.r.gpus) * kMilliPerGpu;
    }
    // Non-spot jobs running now that may still run at p (by their max duration).
    int64_t held = 0;
    for (const auto& [id, rj] : running_) {
      if (rj->reservation == 0 && !rj->stopping && rj->priority != PriorityClass::kSpot &&
          placer_.type_id(rj->placement.gpu_type) == t && rj->ends_us > p) {
        held += rj->placement.total_gpu_milli();
      }
    }
    if (promised + held > capacity) {
      return failed_precondition(fmt::format(
          "only {} of {} {} GPUs are free to reserve at {} (the rest are reserved or held by running jobs until then)",
          std::max<int64_t>(0, capacity - (promised - need) - held) / kMilliPerGpu, capacity / kMilliPerGpu, r.gpu_type,
          p / 1000000));
    }
  }
  Held h;
  h.r = r;
  h.type = t;
  reservations_.emplace(r.id, std::move(h));
  ++pending_reservations_;
  return Status::ok();
}

Status Scheduler::cancel_reservation(uint64_t id) {
  auto it = reservations_.find(id);
  if (it == reservations_.end()) return not_found(fmt::format("no reservation {}", id));
  it->second.r.end_us = 0;  // over: the next cycle stops it (and admission no longer counts it)
  return Status::ok();
}

std::optional<ReservationInfo> Scheduler::reservation_info(uint64_t id) const {
  auto it = reservations_.find(id);
  if (it == reservations_.end()) return std::nullopt;
  const Held& h = it->second;
  ReservationInfo i;
  i.state = h.ending ? ReservationInfo::State::kEnding
                     : h.active ? ReservationInfo::State::kActive : ReservationInfo::State::kPending;
  i.placement = h.hold;
  i.running = h.running;
  i.queued = static_cast<int>(h.queue.size());
  i.waiting = h.waiting;
  return i;
}

Status Scheduler::submit_to_reservation(const SchedJob& job) {
  auto it = reservations_.find(job.reservation);
  if (it == reservations_.end() || it->second.r.org != job.org) {
    return not_found(fmt::format("no reservation {} for this organization", job.reservation));
  }
  Held& h = it->second;
  if (h.ending) return failed_precondition("the reservation has ended");
  if (job.shape.gpus > h.r.gpus) {
    return failed_precondition(fmt::format("the job needs {} GPUs; the reservation holds {}", job.shape.gpus, h.r.gpus));
  }
  if (!job.shape.gpu_types.empty() &&
      std::find(job.shape.gpu_types.begin(), job.shape.gpu_types.end(), h.r.gpu_type) == job.shape.gpu_types.end()) {
    return failed_precondition(fmt::format("the reservation holds {} GPUs, which the job does not allow", h.r.gpu_type));
  }
  Queued q{job, org_id(job.org), -1, PendingReason::kNone};
  waiting_.emplace(job.id, std::move(q));
  h.queue.push_back(job.id);
  ++queued_;
  return Status::ok();
}

bool Scheduler::reservations_allow(int type, int64_t milli, int64_t end_us) const {
  const int64_t capacity = placer_.type_capacity_milli(type);
  for (const auto& [id, h] : reservations_) {
    if (h.active || h.ending || h.type != type || end_us <= h.r.start_us) continue;
    int64_t promised = 0;  // every pending reservation of the type in force at h's start
    for (const auto& [id2, h2] : reservations_) {
      if (!h2.active && !h2.ending && h2.type == type && h2.r.start_us <= h.r.start_us && h.r.start_us < h2.r.end_us) {
        promised += static_cast<int64_t>(h2.r.gpus) * kMilliPerGpu;
      }
    }
    if (h.held_at_start + milli + promised > capacity) return false;
  }
  return true;
}

void Scheduler::reservations_note_start(int type, int64_t milli, int64_t end_us) {
  for (auto& [id, h] : reservations_) {
    if (!h.active && !h.ending && h.type == type && end_us > h.r.start_us) h.held_at_start += milli;
  }
}

bool Scheduler::activate(Held& h, std::vector<Decision>& out) {
  JobShape shape;
  shape.gpus = h.r.gpus;
  shape.gpu_types = {h.r.gpu_type};
  const std::vector<int> types = {h.type};
  std::optional<GangPlacement> p = placer_.place(shape, types, nullptr);
  std::vector<uint64_t> victims;
  if (!p && options_.preemption) p = place_by_preempting(shape, types, PriorityClass::kReserved, out, &victims);
  if (!p) {
    h.waiting = fmt::format("waiting for {} {} GPUs to be free", h.r.gpus, h.r.gpu_type);
    return false;
  }
  // It also takes the CPU and memory that go with its GPUs (a node's share per GPU), for its jobs.
  for (auto& part : p->parts) {
    const Node& n = placer_.cluster().node(part.node);
    const int64_t share = static_cast<int64_t>(part.gpus.size());
    part.cpu_milli = n.num_gpus() > 0 ? std::min(n.cpu_free, n.cpu_milli * share / n.num_gpus()) : 0;
    part.memory_mib = n.num_gpus() > 0 ? std::min(n.memory_free, n.memory_mib * share / n.num_gpus()) : 0;
  }
  if (!placer_.allocate(*p).is_ok()) std::abort();  // computed on this state
  charge(org_id(h.r.org), *p, +1);
  h.hold = *p;
  h.after = std::move(victims);
  h.active = true;
  h.waiting.clear();
  --pending_reservations_;
  // The pool: one sub-node per node it holds GPUs on, with exactly those GPUs and the CPU/memory taken.
  std::vector<Node> nodes;
  h.pool_nodes.clear();
  h.pool_gpus.clear();
  for (const auto& part : h.hold.parts) {
    const Node& main = placer_.cluster().node(part.node);
    Node sub = make_node(main.id, part.cpu_milli, part.memory_mib, static_cast<int>(part.gpus.size()), main.gpu_type);
    sub.rack = main.rack;
    sub.gpu_memory_mib = main.gpu_memory_mib;
    std::vector<int> gpus;
    for (size_t k = 0; k < part.gpus.size(); ++k) {
      gpus.push_back(part.gpus[k].gpu);
      const int g = part.gpus[k].gpu;
      sub.gpu_domain[k] = g < static_cast<int>(main.gpu_domain.size()) ? main.gpu_domain[g] : 0;
    }
    nodes.push_back(std::move(sub));
    h.pool_nodes.push_back(part.node);
    h.pool_gpus.push_back(std::move(gpus));
  }
  h.pool = std::make_unique<GangPlacer>(Cluster(std::move(nodes)), nullptr);
  return true;
}

void Scheduler::stop_reservation(Held& h, std::vector<Decision>& out) {
  if (!h.active && !h.ending) --pending_reservations_;
  h.ending = true;
  for (uint64_t id : h.queue) {
    waiting_.erase(id);
    --queued_;
    out.push_back({Decision::Kind::kStop, id, {}, {}});
  }
  h.queue.clear();
  for (const auto& [id, r] : running_) {
    if (r->reservation == h.r.id) out.push_back({Decision::Kind::kStop, id, r->placement, {}});
  }
}

void Scheduler::release_reservation_if_done(Held& h) {
  if (!h.ending || h.running > 0 || !h.active) return;
  (void)placer_.release(h.hold);
  charge(org_id(h.r.org), h.hold, -1);
  h.active = false;
  h.pool.reset();
}

void Scheduler::reservations_cycle(int64_t now_us, std::vector<Decision>& out) {
  // Pending reservations: what non-spot jobs of their type will still hold at their start.
  for (auto& [id, h] : reservations_) {
    if (h.active || h.ending) continue;
    h.held_at_start = 0;
    for (const auto& [jid, r] : running_) {
      if (r->reservation == 0 && !r->stopping && r->priority != PriorityClass::kSpot &&
          placer_.type_id(r->placement.gpu_type) == h.type && r->ends_us > h.r.start_us) {
        h.held_at_start += r->placement.total_gpu_milli();
      }
    }
  }
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    Held& h = it->second;
    if (!h.ending && now_us >= h.r.end_us) stop_reservation(h, out);
    if (h.ending) {
      release_reservation_if_done(h);
      if (h.running == 0 && !h.active) {
        it = reservations_.erase(it);
        continue;
      }
      ++it;
      continue;
    }
    if (!h.active && now_us >= h.r.start_us) (void)activate(h, out);
    if (h.active) {
      // Its jobs, FIFO, on its own GPUs; each stops at the reservation's end at the latest.
      while (!h.queue.empty()) {
        Queued& q = waiting_.at(h.queue.front());
        auto p = h.pool->place(q.job.shape, {0}, nullptr);
        if (!p) {
          q.reason = PendingReason::kResources;
          break;
        }
        if (!h.pool->allocate(*p).is_ok()) std::abort();
        GangPlacement main = *p;
        for (auto& part : main.parts) {
          const size_t sub = part.node;
          part.node = h.pool_nodes[sub];
          for (auto& g : part.gpus) g.gpu = h.pool_gpus[sub][static_cast<size_t>(g.gpu)];
        }
        auto r = std::make_unique<RunningJob>();
        r->id = q.job.id;
        r->org = q.org;
        r->priority = PriorityClass::kReserved;
        r->placement = main;
        r->started_us = now_us;
        r->ends_us = std::min(h.r.end_us, q.job.max_duration_s > 0 ? now_us + q.job.max_duration_s * 1000000 : INT64_MAX);
        r->reservation = h.r.id;
        out.push_back({Decision::Kind::kStart, q.job.id, main, h.after});
        running_[r->id] = std::move(r);
        ++h.running;
        ++stats_.started;
        waiting_.erase(h.queue.front());
        h.queue.erase(h.queue.begin());
        --queued_;
      }
    }
    ++it;
  }
}

}  // namespace nc::capacity

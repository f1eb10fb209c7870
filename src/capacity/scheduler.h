// Scheduler: decides which waiting GPU jobs start where, and which running jobs must yield. It is the
// decision core of capacity rental, in memory and without side effects — the job controller applies its
// decisions (launch, stop) and reports back when jobs end; the trace simulator and the benchmark drive it
// the same way. One class per policy, composed here:
//   QuotaPolicy       (quota.h)       org limits per GPU type and in total; a job over them waits
//   DrfFairShare      (fair_share.h)  within a priority class, the org with the smallest dominant share first
//   priority classes                  reserved, then on-demand, then spot; FIFO within an org and class
//   PreemptionPolicy  (preemption.h)  a non-spot job that does not fit stops spot jobs (gang-aware)
//   GangPlacer        (gang_placer.h) all nodes of a job or none; fewest nodes, one rack, one NVLink island
//   BackfillPolicy    (backfill.h)    EASY backfill behind the first blocked job, using max durations
//   fractional GPUs                   gpus = 1 with gpu_milli < 1000 share a GPU (JobShape)
//
// A cycle, schedule(now), walks the classes in order; inside a class it repeatedly takes the
// organization with the smallest dominant share and starts that org's oldest job that fits. Jobs whose
// shape already failed in this cycle are skipped in O(1) (shapes are interned at submit), so a cycle costs
// O(queued jobs) cheap checks plus one placement per distinct shape — bench/scheduler_bench.cpp measures
// it with 6,212 GPUs and 10,000 queued jobs.
//
// Preemption hands the victims' resources to the preemptor at once (the scheduler's books never
// double-count): the decision says "start J once V1..Vn have stopped"; the caller stops the victims
// (SIGTERM, grace, SIGKILL), calls remove() for each when it has ended, then launches J.
//
// Ownership: owns its cluster state (through GangPlacer) and every queued/running job's record.
// Threads: not synchronized — one thread (the controller's) calls everything.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "capacity/backfill.h"
#include "capacity/fair_share.h"
#include "capacity/gang_placer.h"
#include "capacity/job.h"
#include "capacity/placement.h"
#include "capacity/preemption.h"
#include "capacity/quota.h"
#include "core/status.h"

namespace nc::capacity {

struct SchedulerOptions {
  std::string placement = "best-fit";  // single-node policy: random-fit | best-fit | fgd
  TargetWorkload target;               // for fgd
  uint64_t seed = 1;                   // for random-fit
  bool backfill = true;
  bool preemption = true;
  // Preemption is planned for at most this many blocked job shapes per cycle, in priority order (the
  // highest-priority blocked jobs; Kueue likewise preempts for the head of a queue): a plan scans the
  // nodes of the job's GPU types, and a job that could not make room now rarely can a moment later.
  int preemption_tries_per_cycle = 4;
};

struct Decision {
  // kStop: the job's reservation ended (or was cancelled): stop it if it runs, drop it if it waits.
  enum class Kind { kStart, kPreempt, kStop };
  Kind kind = Kind::kStart;
  uint64_t job = 0;
  GangPlacement placement;     // kStart
  std::vector<uint64_t> after;  // kStart: launch only once these preempted jobs have stopped
};

enum class PendingReason { kNone, kQuota, kResources, kBackfill };
std::string_view pending_reason_name(PendingReason r);  // "", "quota", "resources", "priority"

struct JobInfo {
  enum class State { kQueued, kRunning, kStopping };
  State state = State::kQueued;
  GangPlacement placement;  // running / stopping
  PendingReason reason = PendingReason::kNone;  // queued: why it did not start in the last cycle
};

struct ReservationInfo {
  enum class State { kPending, kActive, kEnding };
  State state = State::kPending;
  GangPlacement placement;  // active: the GPUs it holds
  int running = 0, queued = 0;
  std::string waiting;      // pending past its start: why it has not got its GPUs yet
};

struct CycleStats {
  int64_t examined = 0;    // queued jobs looked at
  int64_t placements = 0;  // placement searches run
  int64_t started = 0, preempted = 0;
  bool shadow = false;     // a backfill reservation was made
};

class Scheduler {
 public:
  // InvalidArgument for an unknown placement policy name.
  static Result<std::unique_ptr<Scheduler>> create(Cluster cluster, SchedulerOptions options = {});

  // Queues a job. InvalidArgument: bad shape; FailedPrecondition: no GPU type / node of this cluster can
  // ever host it (with the reason); AlreadyExists: the id is known.
  Status submit(const SchedJob& job);
  // Forgets a job: a queued one leaves the queue; a running one's resources are freed (the caller has
  // stopped or will stop it); a stopping one was already accounted. NotFound if unknown.
  Status remove(uint64_t id);
  // One scheduling cycle at time now_us (unix microseconds): what to start and what to preempt.
  std::vector<Decision> schedule(int64_t now_us);

  // Reservations (scheduler_reservations.cpp). add: InvalidArgument (bad fields, unknown type), AlreadyExists,
  // FailedPrecondition when the type's GPUs are already promised for part of [start, end) (to other
  // reservations, or to running on-demand jobs by their max duration) or the org's quota is smaller.
  Status add_reservation(const Reservation& r, int64_t now_us);
  // Ends it now: the next schedule() stops its running jobs and drops its queued ones (kStop); its GPUs
  // return once its running jobs are removed. NotFound if unknown.
  Status cancel_reservation(uint64_t id);
  std::optional<ReservationInfo> reservation_info(uint64_t id) const;

  // Quotas: type "" = over all GPU types; nullopt = unlimited. InvalidArgument for an unknown type.
  Status set_quota(const std::string& org, const std::string& gpu_type, std::optional<int64_t> milli);
  void set_weight(const std::string& org, double weight);

  // Takes a node out of (down = true) or back into placement. Returns the running jobs with a part on
  // it (the caller stops them and remove()s them; their resources there stay unused while it is down).
  // NotFound for an unknown node id.
  Result<std::vector<uint64_t>> set_node_down(const std::string& node_id, bool down);

  std::optional<JobInfo> info(uint64_t id) const;
  const GangPlacer& placer() const { return placer_; }
  const Cluster& cluster() const { return placer_.cluster(); }
  size_t queued() const { return queued_; }
  size_t running() const { return running_.size(); }
  const CycleStats& last_cycle() const { return stats_; }
  int64_t org_gpu_milli(const std::string& org) const;  // held now, over all types
  // An org's quota on a type ("" = all types; nullopt = none) and what it holds there now.
  std::pair<std::optional<int64_t>, int64_t> quota_of(const std::string& org, const std::string& gpu_type) const;

 private:
  // What makes two jobs interchangeable for placement: a blocked shape blocks all its jobs in a cycle.
  struct ShapeKey {
    int gpus, nodes;
    int32_t milli;
    int64_t cpu, mem, min_mem;
    std::vector<std::string> types;
    PriorityClass priority;
    bool operator==(const ShapeKey&) const = default;
  };
  struct ShapeHash {
    size_t operator()(const ShapeKey& k) const;
  };
  struct Shape {
    std::vector<int> types;  // eligible GPU types
    int family = 0;          // shapes that differ only in CPU, memory and GPU share
    int64_t cpu = 0, mem = 0;
    int32_t milli = 0;
    uint64_t blocked_any = 0, blocked_avoid = 0;  // == cycle_: failed in this cycle (without/with avoidance)
    uint64_t quota_token = 0;                     // == quota_token_: over quota for the org being visited
  };
  // A shape needing at least as much CPU, memory and GPU share as one that found no room in this cycle
  // (same family: GPU count, nodes, types, memory minimum, class) finds none either: no search needed.
  struct Family {
    uint64_t cycle = 0;
    struct Failed {
      int64_t cpu, mem;
      int32_t milli;
      bool avoid;
    };
    std::vector<Failed> failed;
  };
  struct Queued {
    SchedJob job;
    int org = 0;
    int shape = 0;
    PendingReason reason = PendingReason::kNone;
  };
  // One waiting job in its org's queue; q == nullptr: started or removed (compacted away later).
  struct Entry {
    int64_t submitted = 0;
    uint64_t id = 0;
    Queued* q = nullptr;
    int shape = 0;
    int64_t max_duration_us = 0;  // INT64_MAX: unbounded
  };
  struct OrgQueue {
    std::vector<Entry> entries;  // by (submitted, id)
    size_t dead = 0;
    size_t live() const { return entries.size() - dead; }
  };

  Scheduler(Cluster cluster, std::unique_ptr<PlacementPolicy> policy, SchedulerOptions options);
  int org_id(const std::string& org);
  enum class Outcome { kStarted, kPreempting, kBlocked };
  Outcome try_start(Queued& q, int64_t now_us, std::vector<Decision>& out);
  // Places `shape` after stopping spot jobs (at most preemption_tries_per_cycle plans per cycle): their
  // resources are handed over at once, kPreempt decisions are added, *victims gets their ids.
  std::optional<GangPlacement> place_by_preempting(const JobShape& shape, const std::vector<int>& types,
                                                   PriorityClass priority, std::vector<Decision>& out,
                                                   std::vector<uint64_t>* victims);
  bool dominated(const Shape& s, bool avoid) const;
  static Entry* find_entry(OrgQueue& oq, int64_t submitted, uint64_t id);
  static void compact(OrgQueue& oq);
  void start(Queued& q, GangPlacement p, int64_t now_us);
  void charge(int org, const GangPlacement& p, int sign);
  void index_running(const RunningJob* r, bool add);

  // A reservation and, once active, its own pool: a GangPlacer over the GPUs it holds (sub-node i is
  // main node pool_nodes[i]; sub-GPU g there is main GPU pool_gpus[i][g]).
  struct Held {
    Reservation r;
    int type = -1;
    bool active = false, ending = false;
    GangPlacement hold;
    std::unique_ptr<GangPlacer> pool;
    std::vector<size_t> pool_nodes;
    std::vector<std::vector<int>> pool_gpus;
    std::vector<uint64_t> after;  // spot jobs preempted for it: its first jobs launch after they stop
    std::vector<uint64_t> queue;  // waiting job ids, FIFO
    int running = 0;
    int64_t held_at_start = 0;    // pending: milli of non-spot jobs of its type still running at its start
    std::string waiting;
  };
  void reservations_cycle(int64_t now_us, std::vector<Decision>& out);
  bool activate(Held& h, std::vector<Decision>& out);
  void stop_reservation(Held& h, std::vector<Decision>& out);
  void release_reservation_if_done(Held& h);
  // Whether a non-spot job of type t taking milli until end_us leaves pending reservations their GPUs.
  bool reservations_allow(int type, int64_t milli, int64_t end_us) const;
  void reservations_note_start(int type, int64_t milli, int64_t end_us);
  Status submit_to_reservation(const SchedJob& job);

  SchedulerOptions options_;
  GangPlacer placer_;
  QuotaPolicy quota_;
  DrfFairShare drf_;
  PreemptionPolicy preemption_;
  BackfillPolicy backfill_;

  std::unordered_map<std::string, int> org_ids_;
  std::vector<std::string> org_names_;
  std::unordered_map<ShapeKey, int, ShapeHash> shape_ids_;
  std::vector<Shape> shapes_;
  std::unordered_map<ShapeKey, int, ShapeHash> family_ids_;  // key with cpu = mem = milli = 0
  std::vector<Family> families_;

  std::unordered_map<uint64_t, Queued> waiting_;
  // queues_[class][org]: waiting jobs in FIFO order (pointers into waiting_, whose nodes are stable).
  std::vector<std::vector<OrgQueue>> queues_;
  size_t queued_ = 0;

  std::unordered_map<uint64_t, std::unique_ptr<RunningJob>> running_;
  JobsByNode by_node_;
  std::vector<int64_t> spot_milli_;       // per GPU type: held by spot jobs (preemption is pointless when 0)
  std::vector<int64_t> spot_node_milli_;  // per node: held by spot jobs
  int preemption_tries_ = 0;              // plans made in this cycle (at most kPreemptionTriesPerCycle)

  std::map<uint64_t, Held> reservations_;
  int pending_reservations_ = 0;  // not active yet, not ending (the window check is skipped when 0)

  uint64_t cycle_ = 0, quota_token_ = 0;
  BackfillPolicy::Shadow shadow_;
  PriorityClass shadow_priority_ = PriorityClass::kSpot;
  std::vector<int> allowed_;
  CycleStats stats_;
};

}  // namespace nc::capacity

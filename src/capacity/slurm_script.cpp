// The Slurm batch job of a segment (slurm_script.h): sbatch's arguments and the batch script.
#include "capacity/slurm_script.h"

#include "capacity/job_sandbox.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace nc::capacity {
namespace {

std::string gpu_list(const std::vector<int>& gpus) {
  std::string s;
  for (size_t i = 0; i < gpus.size(); ++i) s += (i ? "," : "") + std::to_string(gpus[i]);
  return s;
}

bool fractional(const NodeAssignment& n) { return n.gpu_milli > 0 && n.gpu_milli < 1000 && !n.gpus.empty(); }

// The signals srun names with strsignal() in "task N: <name>" (Linux numbering).
const char* kSignalNames =
    "  Hangup*) nc_sig=1 ;;\n"
    "  Interrupt*) nc_sig=2 ;;\n"
    "  Quit*) nc_sig=3 ;;\n"
    "  'Illegal instruction'*) nc_sig=4 ;;\n"
    "  'Trace/breakpoint trap'*) nc_sig=5 ;;\n"
    "  Aborted*) nc_sig=6 ;;\n"
    "  'Bus error'*) nc_sig=7 ;;\n"
    "  'Floating point exception'*) nc_sig=8 ;;\n"
    "  Killed*) nc_sig=9 ;;\n"
    "  'User defined signal 1'*) nc_sig=10 ;;\n"
    "  'Segmentation fault'*) nc_sig=11 ;;\n"
    "  'User defined signal 2'*) nc_sig=12 ;;\n"
    "  'Broken pipe'*) nc_sig=13 ;;\n"
    "  'Alarm clock'*) nc_sig=14 ;;\n"
    "  Terminated*) nc_sig=15 ;;\n"
    "  'CPU time limit exceeded'*) nc_sig=24 ;;\n"
    "  'File size limit exceeded'*) nc_sig=25 ;;\n"
    "  'Virtual timer expired'*) nc_sig=26 ;;\n"
    "  'Profiling timer expired'*) nc_sig=27 ;;\n"
    "  'Bad system call'*) nc_sig=31 ;;\n";

}  // namespace

std::string shell_quote(std::string_view s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

std::string slurm_job_name(const std::string& job_id, int segment) {
  std::string n = "nc-";
  for (char c : job_id) {
    n += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  }
  return n + "-" + std::to_string(segment);
}

std::string slurm_file_pattern(const std::string& path) {
  std::string s;
  for (char c : path) {
    s += c;
    if (c == '%') s += '%';
  }
  return s;
}

std::vector<std::string> sbatch_args(const LaunchSpec& spec, const std::string& working_dir,
                                     SlurmGpuIndices gpu_indices, const std::string& partition) {
  const size_t gpus_per_node = spec.nodes[0].gpus.size();
  const bool frac = std::any_of(spec.nodes.begin(), spec.nodes.end(), fractional);
  size_t gres = gpus_per_node;
  if (frac && gpu_indices == SlurmGpuIndices::kAssignment) gres = 0;  // shares a GPU: not Slurm's

  std::string nodelist;
  for (const NodeAssignment& n : spec.nodes) nodelist += (nodelist.empty() ? "" : ",") + n.node;
  const std::string name = slurm_job_name(spec.job_id, spec.segment);
  std::vector<std::string> args = {"--parsable",
                                   "--job-name=" + name,
                                   "--nodes=" + std::to_string(spec.nodes.size()),
                                   "--nodelist=" + nodelist,
                                   "--ntasks-per-node=" + std::to_string(spec.tasks_per_node),
                                   "--output=" + slurm_file_pattern(spec.log_path),
                                   "--error=" + slurm_file_pattern(spec.log_path),
                                   "--open-mode=append",
                                   "--chdir=" + working_dir,
                                   "--no-requeue"};
  if (gres > 0) args.push_back("--gres=gpu:" + std::to_string(gres));
  if (spec.max_duration_s > 0) {
    int64_t minutes = (spec.max_duration_s + spec.grace_period_s + 59) / 60 + 1;
    args.push_back("--time=" + std::to_string(minutes));
  }
  if (!partition.empty()) args.push_back("--partition=" + partition);
  return args;
}

std::string slurm_batch_script(const LaunchSpec& spec, SlurmGpuIndices gpu_indices, const SlurmSandbox* sandbox) {
  const int nnodes = static_cast<int>(spec.nodes.size());
  const int tpn = spec.tasks_per_node;
  const auto& q = shell_quote;
  const bool from_slurm = gpu_indices == SlurmGpuIndices::kSlurm;
  const bool any_gpu =
      std::any_of(spec.nodes.begin(), spec.nodes.end(), [](const NodeAssignment& n) { return !n.gpus.empty(); });

  // The per-task wrapper: runs on every node as `bash -c "$nc_task" nc-task command args...`.
  std::string w;
  w += "nc_rank=-1\nnc_i=0\nfor nc_n in";
  for (const NodeAssignment& n : spec.nodes) w += " " + q(n.node);
  w += "; do\n"
       "  if [ \"$nc_n\" = \"${SLURMD_NODENAME:-}\" ]; then nc_rank=$nc_i; break; fi\n"
       "  nc_i=$((nc_i + 1))\n"
       "done\n"
       "[ \"$nc_rank\" -ge 0 ] || nc_rank=${SLURM_NODEID:-0}\n";
  if (from_slurm) {
    w += "nc_m=\";${NC_GPU_MAP:-}\"\n"
         "nc_gpus=''\n"
         "case $nc_m in *\";${SLURMD_NODENAME:-}=\"*) nc_gpus=${nc_m#*\";${SLURMD_NODENAME:-}=\"}; "
         "nc_gpus=${nc_gpus%%;*} ;; esac\n"
         "if [ -n \"${SLURM_STEP_GPUS:-}${SLURM_JOB_GPUS:-}\" ] && [ -n \"${CUDA_VISIBLE_DEVICES:-}\" ]; then\n"
         "  nc_gpus=$CUDA_VISIBLE_DEVICES\n"
         "fi\n";
  } else {
    w += "case $nc_rank in\n";
    for (int i = 0; i < nnodes; ++i) w += "  " + std::to_string(i) + ") nc_gpus=" + q(gpu_list(spec.nodes[i].gpus)) + " ;;\n";
    w += "  *) nc_gpus='' ;;\nesac\n";
  }
  w += "export CUDA_VISIBLE_DEVICES=\"$nc_gpus\" NVIDIA_VISIBLE_DEVICES=\"$nc_gpus\"\n";
  w += "export WORLD_SIZE=" + std::to_string(nnodes * tpn) + " NNODES=" + std::to_string(nnodes) +
       " LOCAL_WORLD_SIZE=" + std::to_string(tpn) + " NODE_RANK=$nc_rank LOCAL_RANK=${SLURM_LOCALID:-0}\n";
  w += "export RANK=$((nc_rank * " + std::to_string(tpn) + " + LOCAL_RANK))\n";
  w += "export MASTER_ADDR=\"$NC_MASTER_ADDR\" MASTER_PORT=" +
       std::to_string(master_port(spec.job_id)) + "\n";
  w += "export NEOCLOUD_JOB_ID=" + q(spec.job_id) + " NEOCLOUD_SEGMENT=" + std::to_string(spec.segment) + "\n";
  w += "case $nc_rank in\n";
  for (int i = 0; i < nnodes; ++i) {
    if (fractional(spec.nodes[i])) {
      w += "  " + std::to_string(i) + ") export NEOCLOUD_GPU_MILLI=" + std::to_string(spec.nodes[i].gpu_milli) +
           " ;;\n";
    }
  }
  w += "  *) unset NEOCLOUD_GPU_MILLI ;;\nesac\n";
  w += "unset NC_GPU_MAP NC_MASTER_ADDR nc_rank nc_i nc_n nc_m nc_gpus\n";
  for (const auto& [k, v] : spec.env) {
    if (!is_reserved_env(k)) w += "export " + k + "=" + q(v) + "\n";  // the GPUs, ranks and rendezvous are ours
  }
  if (sandbox) {
    // The job's own devices, home and user: bubblewrap (job_sandbox.h) around the command.
    const std::string dev = sandbox->dev_dir;
    std::string control_devices;
    for (const char* d : kGpuControlDevices) control_devices += std::string(" ") + d;
    const std::string home = kJobHome;
    w += "export HOME=" + home + " USER=job LOGNAME=job\n";
    w += "nc_dev=()\n"
         "if [ -n \"$CUDA_VISIBLE_DEVICES\" ]; then\n"
         "  for nc_c in" + control_devices + "; do\n"
         "    nc_dev+=(--dev-bind-try " + q(dev) + "/$nc_c /dev/$nc_c)\n"
         "  done\n"
         "  for nc_g in ${CUDA_VISIBLE_DEVICES//,/ }; do\n"
         "    nc_dev+=(--dev-bind-try " + q(dev) + "/nvidia$nc_g /dev/nvidia$nc_g)\n"
         "  done\n"
         "fi\n";
    // Slurm signals every process of the step: bwrap (which would take the job down with it at once)
    // ignores SIGTERM; the job gets it, at its default disposition again (coreutils env).
    w += "trap '' TERM\nexec";
    for (const std::string& a : sandbox->launcher) w += " " + q(a);
    w += " \"${nc_dev[@]}\" --bind " + q(sandbox->home) + " " + home + " --chdir " + home +
         " -- /usr/bin/env --default-signal=TERM \"$@\"\n";
  } else {
    w += "exec \"$@\"\n";
  }

  // The batch script (runs once, on the first node of the allocation). No user text before the first
  // command line, so nothing in it can be read as an #SBATCH directive.
  std::string s = "#!/bin/bash\n# neocloud SlurmExecutor batch script (generated)\nnc_task=" + q(w) + "\n";
  s += R"NC(nc_expand() {  # "0-1,3" -> "0,1,3"
  local out='' part a b IFS=,
  for part in $1; do
    case $part in
      *-*) a=${part%-*}; b=${part#*-}; while [ "$a" -le "$b" ]; do out=${out:+$out,}$a; a=$((a + 1)); done ;;
      *) out=${out:+$out,}$part ;;
    esac
  done
  printf '%s' "$out"
}
nc_watch() {  # copies srun's stderr to ours; prints "<srun's status> <what its first failing task did>"
  local line rc='' first=''
  while IFS= read -r line; do
    case $line in
      nc-srun-exit=*) rc=${line#nc-srun-exit=} ;;
      *)
        printf '%s\n' "$line" >&2
        if [ -z "$first" ]; then
          # "srun: error: node: task 1: Exited with exit code 3", "...: tasks 0-2: Killed"
          case $line in 'srun: error: '*': task'*': '*) first=${line#*': task'}; first=${first#*': '} ;; esac
        fi ;;
    esac
  done
  printf '%s %s' "${rc:-1}" "$first"
}
NC_GPU_MAP=''
)NC";
  if (from_slurm && any_gpu) {
    s += R"NC(# The GPUs Slurm allocated on each node, "node=0,1;node2=2,3;" (it sets no CUDA_VISIBLE_DEVICES for them).
for nc_try in 1 2 3 4 5 6 7 8 9 10; do
  if nc_out=$(timeout 20 scontrol show job -d "$SLURM_JOB_ID" 2>/dev/null); then
    while IFS= read -r nc_line; do
      case $nc_line in
        *Nodes=*GRES=*IDX:*)
          nc_n=${nc_line#*Nodes=}; nc_n=${nc_n%% *}
          nc_x=${nc_line#*IDX:}; nc_x=${nc_x%%)*}; nc_x=$(nc_expand "$nc_x")
          case $nc_n in *[\[,]*) nc_hosts=$(timeout 20 scontrol show hostnames "$nc_n") ;; *) nc_hosts=$nc_n ;; esac
          for nc_h in $nc_hosts; do NC_GPU_MAP="$NC_GPU_MAP$nc_h=$nc_x;"; done ;;
      esac
    done <<<"$nc_out"
  fi
  [ -n "$NC_GPU_MAP" ] && break
  sleep 0.5
done
if [ -z "$NC_GPU_MAP" ]; then
  echo "neocloud: cannot read the GPUs Slurm allocated to job $SLURM_JOB_ID (scontrol show job -d)" >&2
  exit 1
fi
)NC";
  }
  s += "NC_MASTER_ADDR=''\n";
  s += "while IFS= read -r nc_line; do\n"
       "  case $nc_line in *NodeAddr=*) nc_x=${nc_line#*NodeAddr=}; NC_MASTER_ADDR=${nc_x%% *}; break ;; esac\n"
       "done < <(timeout 20 scontrol show node " + q(spec.nodes[0].node) + " 2>/dev/null)\n";
  s += "[ -n \"$NC_MASTER_ADDR\" ] || NC_MASTER_ADDR=" + q(spec.nodes[0].node) + "\n";
  s += "export NC_GPU_MAP NC_MASTER_ADDR\n";
  const std::string log = q(slurm_file_pattern(spec.log_path));
  s += "exec 3>&1\n";
  s += "nc_res=$( { srun --quiet --kill-on-bad-exit=1 --nodes=" + std::to_string(nnodes) +
       " --ntasks=" + std::to_string(nnodes * tpn) + " --ntasks-per-node=" + std::to_string(tpn) +
       " --output=" + log + " --error=" + log + " --open-mode=append /bin/bash -c \"$nc_task\" nc-task " +
       q(spec.command);
  for (const std::string& a : spec.args) s += " " + q(a);
  s += " 2>&1 1>&3 3>&-; echo \"nc-srun-exit=$?\"; } | nc_watch )\n";
  s += "exec 3>&-\n";
  s += R"NC(nc_rc=${nc_res%% *}
nc_first=${nc_res#* }
nc_sig=0
case $nc_first in
  'Exited with exit code '*)
    nc_code=${nc_first#Exited with exit code }
)NC";
  // The sandbox reports a task killed by signal N as exit status 128 + N.
  if (sandbox) s += "    if [ \"$nc_code\" -gt 128 ] && [ \"$nc_code\" -lt 193 ]; then nc_sig=$((nc_code - 128)); fi\n";
  s += R"NC(    [ "$nc_sig" -gt 0 ] || exit "$nc_code" ;;
  '') exit "$nc_rc" ;;
esac
[ "$nc_sig" -gt 0 ] || case $nc_first in
)NC";
  s += kSignalNames;
  s += R"NC(esac
if [ "$nc_sig" -gt 0 ]; then
  ulimit -c 0 2>/dev/null
  trap - "$nc_sig" 2>/dev/null
  kill -s "$nc_sig" $$
  exit $((128 + nc_sig))
fi
exit "$nc_rc"
)NC";
  return s;
}

}  // namespace nc::capacity

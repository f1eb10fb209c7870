#!/usr/bin/python3
"""neocloud's fine-tuning trainer: LoRA on a Llama-family GGUF base model (llama, qwen2), PyTorch.

  /usr/bin/python3 train/neocloud_train.py --model BASE.gguf --train TRAIN_TOKENS.jsonl [--valid VALID.jsonl]
      --out ADAPTER.gguf --events EVENTS.jsonl [--checkpoint-dir DIR] --epochs N --batch-size B
      --learning-rate LR --rank R --alpha A --seed S --threads T [--max-seq-len L] [--device auto|cpu|cuda]

Inputs are what `neocloud dataset tokenize` writes: one {"ids": [...], "mask": [...]} per line; the loss
is the cross-entropy of predicting ids[i] from positions < i where mask[i] == 1, averaged over the
target tokens of a batch. The base stays frozen; LoRA (scale alpha/rank, A as PEFT initialises it, B
zero) on attn_q/k/v/output and ffn_gate/up/down of every layer; AdamW (weight decay 0, gradient norm
clipped to 1, linear warm-up over 3% of the steps then cosine decay); examples shuffled each epoch
(seeded). See train/README.md for the options and the events. The adapter is written in llama.cpp's GGUF LoRA
format (src/engine/model/lora.h), atomically.

Events (JSONL, appended and flushed line by line): started, step, checkpoint (end of every epoch),
done; on a fatal error one {"type": "error", "code": invalid_training_file | invalid_model |
invalid_argument | internal, "message": ...} and exit status 2. Exit 0 on success.
"""

import argparse
import json
import math
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


class TrainError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Events:
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def emit(self, obj):
        self.f.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        self.f.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(description="LoRA fine-tuning of a GGUF model (neocloud)")
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--valid")
    p.add_argument("--out", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--checkpoint-dir")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--max-seq-len", type=int, default=0, help="0: the model's context_length")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--lr-schedule", choices=("cosine", "linear", "constant"), default="cosine",
                   help="learning rate after a linear warm-up of --warmup-steps: cosine or linear decay to 0, or constant")
    p.add_argument("--warmup-steps", type=int, default=-1, help="-1: 3%% of the steps")
    p.add_argument("--adapter-type", choices=("f32", "f16"), default="f32", help="tensor type of lora_a/lora_b")
    p.add_argument("--compute-dtype", choices=("auto", "f32", "bf16"), default="auto",
                   help="precision of the frozen base's products (LoRA, norms, attention, loss: always f32); auto: "
                        "bf16 on GPUs that support it and CPUs with AVX512-BF16/AMX, else f32")
    p.add_argument("--grad-checkpoint", choices=("auto", "on", "off"), default="auto",
                   help="recompute each layer in the backward pass instead of keeping its activations; auto: when a "
                        "micro-batch's activations would exceed 40%% of the free memory")
    p.add_argument("--micro-batch-tokens", type=int, default=4096,
                   help="a batch is evaluated in pieces of at most this many (padded) tokens; same result, less memory")
    return p.parse_args(argv)


def check_args(a):
    bad = []
    if a.epochs < 1: bad.append("--epochs must be >= 1")
    if a.batch_size < 1: bad.append("--batch-size must be >= 1")
    if not (a.learning_rate > 0 and math.isfinite(a.learning_rate)): bad.append("--learning-rate must be > 0")
    if not (1 <= a.rank <= 1024): bad.append("--rank must be in 1..1024")
    if not (a.alpha > 0 and math.isfinite(a.alpha)): bad.append("--alpha must be > 0")
    if a.threads < 1: bad.append("--threads must be >= 1")
    if a.max_seq_len < 0: bad.append("--max-seq-len must be >= 0")
    if a.micro_batch_tokens < 1: bad.append("--micro-batch-tokens must be >= 1")
    if bad:
        raise TrainError("invalid_argument", "; ".join(bad))


def load_tokens(path, what, n_vocab, max_len):
    """[(ids, mask)] from a token JSONL file; TrainError(invalid_training_file) naming the line."""
    out = []
    try:
        f = open(path, "rb")
    except OSError as e:
        raise TrainError("invalid_training_file", "%s file %s: %s" % (what, path, e.strerror))
    with f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            where = "%s file line %d" % (what, lineno)
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise TrainError("invalid_training_file", "%s: not valid JSON (%s)" % (where, e))
            if not isinstance(obj, dict):
                raise TrainError("invalid_training_file", "%s: not a JSON object" % where)
            ids, mask = obj.get("ids"), obj.get("mask")
            if not isinstance(ids, list) or not isinstance(mask, list):
                raise TrainError("invalid_training_file", "%s: \"ids\" and \"mask\" must be arrays" % where)
            if len(ids) != len(mask):
                raise TrainError("invalid_training_file",
                                 "%s: \"ids\" has %d entries but \"mask\" %d" % (where, len(ids), len(mask)))
            if not ids:
                raise TrainError("invalid_training_file", "%s: no tokens" % where)
            for i, t in enumerate(ids):
                if type(t) is not int or not (0 <= t < n_vocab):
                    raise TrainError("invalid_training_file",
                                     "%s: ids[%d] = %s is not a token id of this model [0, %d)" % (where, i, json.dumps(t), n_vocab))
            for i, m in enumerate(mask):
                if type(m) is not int or m not in (0, 1):
                    raise TrainError("invalid_training_file", "%s: mask[%d] = %s is not 0 or 1" % (where, i, json.dumps(m)))
            if len(ids) > max_len:
                raise TrainError("invalid_training_file",
                                 "%s: %d tokens, longer than the maximum sequence length %d" % (where, len(ids), max_len))
            out.append((ids, mask))
    return out


def free_memory_bytes(device):
    import torch
    if device == "cuda":
        return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def cpu_has_fast_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def pick_compute_dtype(choice, device):
    import torch
    if choice == "f32":
        return torch.float32
    if choice == "bf16":
        return torch.bfloat16
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_fast_bf16() and torch.backends.mkldnn.is_available() else torch.float32


def n_targets(ex):
    return sum(ex[1][1:])


def main(argv):
    a = parse_args(argv)
    try:
        events = Events(a.events)
    except OSError as e:
        print("neocloud_train: cannot open the events file %s: %s" % (a.events, e.strerror), file=sys.stderr)
        return 2
    try:
        run(a, events)
        return 0
    except TrainError as e:
        events.emit({"type": "error", "code": e.code, "message": str(e)})
        print("neocloud_train: %s: %s" % (e.code, e), file=sys.stderr)
        return 2
    except MemoryError:
        events.emit({"type": "error", "code": "internal", "message": "out of memory"})
        return 2
    except Exception as e:  # noqa: BLE001 - every failure must reach the events file
        traceback.print_exc()
        events.emit({"type": "error", "code": "internal", "message": "%s: %s" % (type(e).__name__, e)})
        return 2


def run(a, events):
    check_args(a)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(a.threads)  # before torch loads its BLAS
    # OpenMP threads that spin after each of the many small element-wise ops take the cores from the BLAS
    # threads (OpenBLAS keeps a pool of its own): with 2 threads on 2 cores that made steps 3-10x slower.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numpy as np
    import torch

    import gguf_io
    import nc_model

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    if a.device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif a.device == "cuda" and not torch.cuda.is_available():
        raise TrainError("invalid_argument", "--device cuda: no CUDA device is available to PyTorch")
    else:
        device = a.device
    torch.manual_seed(a.seed)

    try:
        cfg, weights = nc_model.load_base(a.model)
    except gguf_io.GgufError as e:
        raise TrainError("invalid_model", "%s: %s" % (a.model, e))
    max_len = a.max_seq_len or cfg.n_ctx
    train = load_tokens(a.train, "training", cfg.n_vocab, max_len)
    if not train:
        raise TrainError("invalid_training_file", "the training file has no examples")
    train_targets = sum(n_targets(e) for e in train)
    if train_targets == 0:
        raise TrainError("invalid_training_file", "the training file has no target tokens (mask 1 after the first token)")
    valid = load_tokens(a.valid, "validation", cfg.n_vocab, max_len) if a.valid else None
    longest = max(len(e[0]) for e in train + (valid or []))

    cdt = pick_compute_dtype(a.compute_dtype, device)
    model = nc_model.LoraModel(cfg, weights, a.rank, a.alpha, a.seed, device, max_pos=max(longest, 1), compute_dtype=cdt)
    del weights
    params = list(model.lora)
    opt = torch.optim.AdamW(params, lr=a.learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    n = len(train)
    steps_per_epoch = (n + a.batch_size - 1) // a.batch_size
    total_steps = steps_per_epoch * a.epochs
    log_every = max(1, total_steps // 2000)
    warmup = a.warmup_steps if a.warmup_steps >= 0 else int(math.ceil(0.03 * total_steps))

    def lr_at(step):  # step: 0-based index of the update
        if step < warmup:
            return a.learning_rate * (step + 1) / (warmup + 1)
        frac = (step - warmup) / max(1, total_steps - warmup)
        if a.lr_schedule == "cosine":
            return a.learning_rate * 0.5 * (1 + math.cos(math.pi * frac))
        if a.lr_schedule == "linear":
            return a.learning_rate * (1 - frac)
        return a.learning_rate

    started = {"type": "started", "device": device, "threads": a.threads,
               "compute_dtype": "bf16" if cdt == torch.bfloat16 else "f32", "examples": n,
               "train_tokens": sum(len(e[0]) for e in train), "trained_tokens_per_epoch": train_targets,
               "steps": total_steps, "params": model.n_params(), "rank": a.rank, "alpha": a.alpha,
               "model": {"arch": cfg.arch, "n_layer": cfg.n_layer, "n_embd": cfg.n_embd, "n_vocab": cfg.n_vocab}}
    if device == "cuda":
        started["device_name"] = torch.cuda.get_device_name(0)
    if valid is not None:
        started["valid_examples"] = len(valid)
    events.emit(started)
    t0 = time.time()

    def micro_batches(exs):
        """Consecutive pieces of a batch of at most micro_batch_tokens padded tokens (at least one example)."""
        piece, longest_ = [], 0
        for e in exs:
            L = max(longest_, len(e[0]))
            if piece and L * (len(piece) + 1) > a.micro_batch_tokens:
                yield piece
                piece, L = [], len(e[0])
            piece.append(e)
            longest_ = L
        if piece:
            yield piece

    def evaluate(exs):
        tot, cnt = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(exs), a.batch_size):
                for mb in micro_batches(exs[i:i + a.batch_size]):
                    b = nc_model.make_batch(model, mb)
                    if b["tgt"].shape[0] == 0:
                        continue
                    ls, nt = model.loss_sum(b)
                    tot += float(ls)
                    cnt += nt
        return (tot / cnt if cnt else None), cnt

    def finite(x, what):
        if x is not None and not math.isfinite(x):
            raise TrainError("internal", "training diverged: %s is %s (lower the learning rate)" % (what, x))
        return x

    budget = 0.4 * free_memory_bytes(device)

    def use_checkpointing(b):
        if a.grad_checkpoint != "auto":
            return a.grad_checkpoint == "on"
        return model.activation_bytes(b["layout"], b["n_tokens"]) > budget

    rng = np.random.default_rng(a.seed)
    step, trained, last_epoch_loss, valid_loss, valid_tokens = 0, 0, None, None, 0
    for epoch in range(1, a.epochs + 1):
        order = rng.permutation(n)
        ep_loss, ep_tok = 0.0, 0
        for bi in range(steps_per_epoch):
            exs = [train[j] for j in order[bi * a.batch_size:(bi + 1) * a.batch_size]]
            nt_total = sum(n_targets(e) for e in exs)
            opt.zero_grad(set_to_none=True)
            batch_loss = 0.0
            if nt_total > 0:
                for mb in micro_batches(exs):
                    b = nc_model.make_batch(model, mb)
                    if b["tgt"].shape[0] == 0:
                        continue
                    ls, _ = model.loss_sum(b, checkpoint=use_checkpointing(b))
                    (ls / nt_total).backward()
                    batch_loss += float(ls)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step)
                opt.step()
            step += 1
            trained += nt_total
            ep_loss += batch_loss
            ep_tok += nt_total
            loss = finite(batch_loss / nt_total, "the training loss") if nt_total else None
            if step % log_every == 0 or bi == steps_per_epoch - 1:
                events.emit({"type": "step", "step": step, "epoch": epoch, "train_loss": loss, "trained_tokens": trained,
                             "elapsed_s": round(time.time() - t0, 3)})
        last_epoch_loss = finite(ep_loss / ep_tok if ep_tok else None, "the epoch's training loss")
        if valid is not None:
            valid_loss, valid_tokens = evaluate(valid)
            finite(valid_loss, "the validation loss")
        path = None
        if a.checkpoint_dir:
            os.makedirs(a.checkpoint_dir, exist_ok=True)
            path = os.path.join(a.checkpoint_dir, "checkpoint-step-%d.gguf" % step)
            write_adapter(model, cfg, path, a)
        events.emit({"type": "checkpoint", "step": step, "epoch": epoch, "train_loss": last_epoch_loss,
                     "valid_loss": valid_loss, "path": path, "elapsed_s": round(time.time() - t0, 3)})
    write_adapter(model, cfg, a.out, a)
    events.emit({"type": "done", "step": step, "trained_tokens": trained, "valid_tokens": valid_tokens,
                 "train_loss": last_epoch_loss, "valid_loss": valid_loss, "out": a.out,
                 "elapsed_s": round(time.time() - t0, 3)})


def write_adapter(model, cfg, path, a):
    import gguf_io
    t = gguf_io.GGML_F16 if a.adapter_type == "f16" else gguf_io.GGML_F32
    kvs = [("general.architecture", gguf_io.T_STRING, cfg.arch),
           ("general.type", gguf_io.T_STRING, "adapter"),
           ("general.name", gguf_io.T_STRING, "neocloud LoRA"),
           ("adapter.type", gguf_io.T_STRING, "lora"),
           ("adapter.lora.alpha", gguf_io.T_F32, float(a.alpha))]
    tensors = []
    for name, A, B in model.adapter_tensors():
        tensors.append((name + ".lora_a", t, A))  # [rank, n_in] -> ne [n_in, rank]
        tensors.append((name + ".lora_b", t, B))  # [n_out, rank] -> ne [rank, n_out]
    try:
        gguf_io.write_gguf(path, kvs, tensors)
    except OSError as e:
        raise TrainError("internal", "cannot write %s: %s" % (path, e.strerror or e))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

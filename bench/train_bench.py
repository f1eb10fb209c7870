#!/usr/bin/python3
"""Trainer throughput: train/neocloud_train.py's model (nc_model.LoraModel: packed batches, fused q/k/v
and gate/up products, LM head + loss only at target positions, fused chunked head/cross-entropy) against
a plain PyTorch loop on the same weights and batches: an nn.Module Llama with nn.Linear layers and a naive
LoRA wrapper (base(x) + B(A(x)) * scale), padded batches, logits for every position, then
F.cross_entropy(ignore_index=-100), the way fine-tuning loops are usually written. Both do forward +
backward + AdamW step; the steps alternate (trainer, plain, trainer, ...) so that both see the same
machine. Prints, per shape:

  trainer      tiny  tok/s=...  target_tok/s=...   (as the trainer runs: --compute-dtype auto)
  trainer-f32  tiny  tok/s=...  target_tok/s=...   (only where auto picked bf16: the f32 path)
  plain        tiny  tok/s=...  target_tok/s=...
  ratio=...  (trainer / plain)   ratio_f32=...  (trainer-f32 / plain)

tok/s counts every token of the batches (prompt and answer); target_tok/s only the trained (mask 1)
ones. Usage: /usr/bin/python3 bench/train_bench.py [--bin build/release/bin] [--workdir DIR] [--threads 2]
[--shapes tiny,tinyllama-1.1b] [--steps N]
"""

import argparse
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "train"))


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=os.path.join(ROOT, "build/release/bin"))
    p.add_argument("--workdir", default="/tmp/nc_train_bench")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--shapes", default="tiny,tinyllama-1.1b")
    p.add_argument("--steps", type=int, default=0, help="timed steps per side (0: per shape default)")
    p.add_argument("--rank", type=int, default=16)
    return p.parse_args()


args = parse()
for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[k] = str(args.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the trainer runs (both sides get it)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import nc_model  # noqa: E402
import neocloud_train  # noqa: E402


# ------------------------------------------------------------------------------ the plain baseline
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        if self.base.bias is not None:
            self.base.bias.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


class RMSNorm(nn.Module):
    def __init__(self, w, eps):
        super().__init__()
        self.weight = nn.Parameter(w, requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def linear(w, b=None):
    lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    lin.weight = nn.Parameter(w, requires_grad=False)
    if b is not None:
        lin.bias = nn.Parameter(b, requires_grad=False)
    return lin


def rotate(x, cos, sin, neox):
    # x [B, L, H, D]; cos/sin [L, D/2]
    if neox:  # HF rotate_half
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        c = torch.cat([cos, cos], -1)[None, :, None, :]
        s = torch.cat([sin, sin], -1)[None, :, None, :]
        return x * c + torch.cat([-x2, x1], -1) * s
    # Meta's llama: adjacent pairs as complex numbers
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    fc = torch.complex(cos, sin)[None, :, None, :]
    return torch.view_as_real(xc * fc).flatten(3)


class Block(nn.Module):
    def __init__(self, c, L, r, alpha):
        super().__init__()
        Eq, Ekv = c.n_embd_q, c.n_embd_kv
        wq, wk, wv = L.w_qkv.split([Eq, Ekv, Ekv])
        bq, bk, bv = L.b_qkv.split([Eq, Ekv, Ekv]) if L.b_qkv is not None else (None, None, None)
        wg, wu = L.w_gu.split([c.n_ff, c.n_ff])
        self.c = c
        self.attention_norm = RMSNorm(L.attn_norm, c.rms_eps)
        self.wq = LoRALinear(linear(wq, bq), r, alpha)
        self.wk = LoRALinear(linear(wk, bk), r, alpha)
        self.wv = LoRALinear(linear(wv, bv), r, alpha)
        self.wo = LoRALinear(linear(L.wo, L.bo), r, alpha)
        self.ffn_norm = RMSNorm(L.ffn_norm, c.rms_eps)
        self.w1 = LoRALinear(linear(wg), r, alpha)
        self.w3 = LoRALinear(linear(wu), r, alpha)
        self.w2 = LoRALinear(linear(L.w_down), r, alpha)

    def forward(self, x, cos, sin, mask):
        c = self.c
        B, Lq, _ = x.shape
        h = self.attention_norm(x)
        q = self.wq(h).view(B, Lq, c.n_head, c.head_dim)
        k = self.wk(h).view(B, Lq, c.n_head_kv, c.head_dim)
        v = self.wv(h).view(B, Lq, c.n_head_kv, c.head_dim)
        neox = c.rope_type == "neox"
        q, k = rotate(q, cos, sin, neox), rotate(k, cos, sin, neox)
        rep = c.n_head // c.n_head_kv
        k = torch.repeat_interleave(k, rep, dim=2)  # repeat_kv
        v = torch.repeat_interleave(v, rep, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(c.head_dim) + mask
        p = F.softmax(scores.float(), dim=-1).type_as(q)
        o = torch.matmul(p, v).transpose(1, 2).contiguous().view(B, Lq, -1)
        x = x + self.wo(o)
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class PlainLlama(nn.Module):
    def __init__(self, c, w, r, alpha, rope_cos, rope_sin):
        super().__init__()
        self.c = c
        self.tok_embeddings = nn.Embedding(c.n_vocab, c.n_embd)
        self.tok_embeddings.weight = nn.Parameter(w.tok_embd, requires_grad=False)
        self.layers = nn.ModuleList([Block(c, L, r, alpha) for L in w.layers])
        self.norm = RMSNorm(w.output_norm, c.rms_eps)
        self.output = linear(w.output, w.output_bias)
        self.rope_cos, self.rope_sin = rope_cos, rope_sin

    def forward(self, tokens):
        B, L = tokens.shape
        x = self.tok_embeddings(tokens)
        mask = torch.full((L, L), float("-inf")).triu(1)
        cos, sin = self.rope_cos[:L], self.rope_sin[:L]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.output(self.norm(x)).float()


def plain_loss(model, examples):
    L = max(len(e[0]) for e in examples)
    tok = torch.zeros(len(examples), L, dtype=torch.long)
    lab = torch.full((len(examples), L), -100, dtype=torch.long)
    for i, (ids, mask) in enumerate(examples):
        tok[i, :len(ids)] = torch.tensor(ids)
        lab[i, :len(ids)] = torch.where(torch.tensor(mask) == 1, torch.tensor(ids), torch.tensor(-100))
    logits = model(tok)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1), ignore_index=-100)


# ------------------------------------------------------------------------------ workload
def dataset(n_vocab, n, lo, hi, seed):
    """Chat-shaped token sequences: a prompt (mask 0) then an answer (mask 1), lengths in [lo, hi]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        L = int(rng.integers(lo, hi + 1))
        p = int(L * rng.uniform(0.3, 0.7))
        ids = [1] + rng.integers(3, n_vocab, L - 1).tolist()
        out.append((ids, [0] * p + [1] * (L - p)))
    return out


def ensure_model(bin_dir, workdir, shape):
    if shape == "tinyllama-1.1b":
        cached = os.path.join(ROOT, ".cache/models/tinyllama-1.1b-q4_0.gguf")
        if os.path.exists(cached):
            return cached
        typ = "q4_0"
    else:
        typ = "q8_0"
    path = os.path.join(workdir, "%s-%s.gguf" % (shape, typ))
    if not os.path.exists(path):
        vocab = os.path.join(ROOT, ".cache/ref/llama.cpp/models/ggml-vocab-llama-spm.gguf")
        subprocess.run([os.path.join(bin_dir, "neocloud"), "model", "synth", "--vocab", vocab, "--shape", shape,
                        "--type", typ, "--arch", "llama", "--seed", "1", "--out", path], check=True, stdout=subprocess.DEVNULL)
    return path


def bench_shape(shape, path, steps, batch, lo, hi):
    t0 = time.time()
    cfg, w = nc_model.load_base(path)
    load_s = time.time() - t0
    cdt = neocloud_train.pick_compute_dtype("auto", "cpu")
    sides = []  # (label, step function)

    def trainer_side(dtype):
        m = nc_model.LoraModel(cfg, w, args.rank, 2 * args.rank, 1, "cpu", max_pos=hi, compute_dtype=dtype)
        opt = torch.optim.AdamW(list(m.lora), lr=1e-4)

        def step(exs):
            opt.zero_grad(set_to_none=True)
            b = nc_model.make_batch(m, exs)
            ls, nt = m.loss_sum(b)
            loss = ls / nt
            loss.backward()
            opt.step()
            return float(loss)
        return m, step

    ours32, step32 = trainer_side(torch.float32)
    if cdt != torch.float32:
        sides.append(("trainer", trainer_side(cdt)[1]))
        sides.append(("trainer-f32", step32))
    else:
        sides.append(("trainer", step32))
    plain = PlainLlama(cfg, w, args.rank, 2 * args.rank, ours32.rope_cos, ours32.rope_sin)
    opt_p = torch.optim.AdamW([p for p in plain.parameters() if p.requires_grad], lr=1e-4)

    def step_plain(exs):
        opt_p.zero_grad(set_to_none=True)
        loss = plain_loss(plain, exs)
        loss.backward()
        opt_p.step()
        return float(loss)
    sides.append(("plain", step_plain))
    data = dataset(cfg.n_vocab, batch * (steps + 1), lo, hi, 7)
    batches = [data[i * batch:(i + 1) * batch] for i in range(steps + 1)]

    # Same weights, same (zero-B) adapters: the first batch's losses agree (bf16 compute: to ~1e-3).
    first = ["%s %.5f" % (name, f(batches[0])) for name, f in sides]
    print("# %s: %s loaded in %.1fs; batch %d x %d-%d tokens, rank %d; first-step loss: %s" % (
        shape, os.path.basename(path), load_s, batch, lo, hi, args.rank, ", ".join(first)), flush=True)
    spent = {name: 0.0 for name, _ in sides}
    toks = tgts = 0
    for i in range(1, steps + 1):
        exs = batches[i]
        toks += sum(len(e[0]) for e in exs)
        tgts += sum(sum(e[1][1:]) for e in exs)
        k = i % len(sides)
        for name, f in sides[k:] + sides[:k]:  # rotate who goes first
            t = time.perf_counter()
            f(exs)
            spent[name] += time.perf_counter() - t
    for name, _ in sides:
        dt = spent[name]
        extra = " compute=%s" % ("bf16" if cdt != torch.float32 else "f32") if name == "trainer" else ""
        print("%-12s %-15s tok/s=%.1f  target_tok/s=%.1f  (%d steps, %.1fs)%s" % (
            name, shape, toks / dt, tgts / dt, steps, dt, extra))
    print("ratio=%.2f  (%s, trainer / plain, %d threads)" % (spent["plain"] / spent["trainer"], shape, args.threads))
    if "trainer-f32" in spent:
        print("ratio_f32=%.2f  (%s, trainer-f32 / plain)" % (spent["plain"] / spent["trainer-f32"], shape))
    sys.stdout.flush()


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    os.makedirs(args.workdir, exist_ok=True)
    print("# torch %s, %d threads, %s" % (torch.__version__, args.threads, torch.backends.cpu.get_cpu_capability()
                                          if hasattr(torch.backends, "cpu") else ""))
    for shape in args.shapes.split(","):
        path = ensure_model(args.bin, args.workdir, shape)
        if shape == "tinyllama-1.1b":
            bench_shape(shape, path, args.steps or 3, 2, 96, 160)
        else:
            bench_shape(shape, path, args.steps or 12, 8, 64, 256)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Tests of the fine-tuning trainer (train/neocloud_train.py) against neocloud's engine.

  /usr/bin/python3 tests/train/trainer_test.py --bin build/release/bin --workdir DIR [--only NAME,...]

Everything it needs is made in --workdir with `neocloud model synth` / `dataset tokenize` / `logits`:
  dequant   the trainer's dequantization of f16/bf16/q8_0/q4_0/q4_K/q6_K (and f32) equals the engine's,
            bit for bit: `neocloud model merge-lora --scale 0` writes the engine's dequantized matrices
            (as f16 for quantized bases), compared with ours rounded the same way.
  parity    the trainer's forward (no adapter) vs the engine's reference logits (`logits --reference`),
            rms(Δ)/rms(ref) over 64 positions: f32 ≤ 1e-4 (llama, qwen2, llama3 rope_freqs, GQA micro);
            the bf16 compute path (--compute-dtype bf16, the default on CPUs with AVX512-BF16) on f32
            bases ≤ 1e-2 with top-1 ≥ 90% (bf16 rounds every base product's input and output).
            Quantized/half bases: the trainer computes in f32 on dequantized weights while the engine rounds
            each product's input to the weight's activation format (f16, bf16, q8_0, q8_K). With that
            rounding emulated (nc_model act_round) the engine's own tolerances hold (f16/bf16 ≤ 3e-3,
            quantized ≤ 2e-2, tests/engine/conformance_test.cpp); the plain f32 forward (what training
            uses) differs by the activation rounding itself: f16 ≤ 3e-3, q8_0 ≤ 2e-2, bf16 ≤ 1e-2 (bf16 keeps
            8 mantissa bits against f16's 11: ~8x f16's measured ~6e-4). Top-1 agreement ≥ 97% everywhere.
  interop   an adapter the trainer wrote (a few steps, B clearly non-zero) loads in the engine and
            `logits --lora` (reference and fast paths) equals the trainer's forward with that adapter:
            ≤ 1e-4 on f32 bases (llama; qwen2 with an f16 adapter); the adapter moves the logits by > 1%.
  learn     30 question/answer pairs (chat JSONL, the model's chat format) tokenized by the engine; after
            training (epochs 30, batch 4, lr 3e-3 cosine, rank 16, alpha 32) on a tiny q8_0 model the
            epoch losses fall and, with the engine and the adapter, every answer token is the argmax at
            its position (teacher-forced greedy = greedy decoding) for ≥ 90% of the questions; the base
            without the adapter answers none.
  badinput  malformed JSON, an id ≥ n_vocab, ids/mask length mismatch, a sequence over --max-seq-len:
            exit 2 and an invalid_training_file event naming the line; truncated and garbage GGUFs:
            invalid_model; SIGTERM ends a run promptly.
Exit status 0 when every check passes.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAINER = os.path.join(ROOT, "train", "neocloud_train.py")
VOCAB = os.path.join(ROOT, ".cache/ref/llama.cpp/models/ggml-vocab-llama-spm.gguf")
PY = sys.executable or "/usr/bin/python3"
THREADS = 2

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(k, str(THREADS))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.join(ROOT, "train"))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import gguf_io  # noqa: E402
import nc_model  # noqa: E402

FAILURES = []


def check(ok, what):
    print("  [%s] %s" % ("ok" if ok else "FAIL", what), flush=True)
    if not ok:
        FAILURES.append(what)
    return ok


class Env:
    def __init__(self, bin_dir, workdir):
        self.nc = os.path.join(bin_dir, "neocloud")
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def run_nc(self, *args):
        r = subprocess.run([self.nc] + [str(a) for a in args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("neocloud %s failed (%d): %s%s" % (" ".join(map(str, args)), r.returncode, r.stdout, r.stderr))
        return r.stdout

    def synth(self, shape, typ, arch, extra=()):
        name = "%s-%s-%s%s.gguf" % (shape, arch, typ, "".join(extra).replace("-", ""))
        p = self.path(name)
        if not os.path.exists(p):
            self.run_nc("model", "synth", "--vocab", VOCAB, "--shape", shape, "--type", typ, "--arch", arch, "--seed", 1,
                        "--out", p, *extra)
        return p

    def logits(self, model, tokens, lora=None, reference=True):
        out = self.path("logits.bin")
        args = ["logits", "-m", model, "--tokens", ",".join(map(str, tokens)), "--out", out, "-t", THREADS]
        if reference:
            args.append("--reference")
        if lora:
            args += ["--lora", lora]
        self.run_nc(*args)
        return np.fromfile(out, np.float32).reshape(len(tokens), -1)

    def train(self, model, train, out, events, *extra, timeout=600):
        if os.path.exists(events):
            os.unlink(events)
        cmd = [PY, TRAINER, "--model", model, "--train", train, "--out", out, "--events", events,
               "--threads", str(THREADS)] + [str(x) for x in extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        ev = read_events(events)
        return r, ev


def read_events(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def rel(a, b):
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.sqrt((d ** 2).mean()) / np.sqrt((b.astype(np.float64) ** 2).mean()))


def top1(a, b):
    return float((a.argmax(1) == b.argmax(1)).mean())


def trainer_logits(model_path, tokens, adapter=None, emulate=False, compute=torch.float32, cache={}):
    key = model_path
    if key not in cache:
        cache.clear()
        cache[key] = nc_model.load_base(model_path)
    cfg, w = cache[key]
    rank, alpha, tensors = 1, 1.0, None
    if adapter:
        g = gguf_io.GgufFile(adapter)
        alpha = float(g.kv["adapter.lora.alpha"])
        tensors = {}
        for ti in g.tensors:
            base, half = ti.name.rsplit(".", 1)
            tensors.setdefault(base, [None, None])[half == "lora_b"] = g.dequantize(ti)
            rank = ti.ne[1] if half == "lora_a" else rank
        g.close()
    m = nc_model.LoraModel(cfg, w, rank, alpha, 0, "cpu", max_pos=len(tokens), emulate_activations=emulate,
                           compute_dtype=compute)
    if tensors:
        m.load_adapter_tensors(tensors)
    with torch.no_grad():
        return m.logits(tokens, lora=adapter is not None).numpy()


def sample_tokens(n_vocab, n, seed):
    rng = np.random.default_rng(seed)
    return [1] + rng.integers(3, n_vocab, n - 1).tolist()


# ----------------------------------------------------------------------------------------------- tests
def test_dequant(env):
    print("dequant: trainer vs engine dequantization (merge-lora --scale 0)")
    for typ in ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"):
        base = env.synth("tiny", typ, "llama")
        cfg, _ = nc_model.load_base(base)
        # A zero adapter (A anything, B 0) for every matrix: the merge rewrites each one dequantized.
        kvs = [("general.architecture", gguf_io.T_STRING, cfg.arch), ("general.type", gguf_io.T_STRING, "adapter"),
               ("adapter.type", gguf_io.T_STRING, "lora"), ("adapter.lora.alpha", gguf_io.T_F32, 1.0)]
        tensors = []
        for il in range(cfg.n_layer):
            for t, (n_in, n_out) in {"attn_q": (cfg.n_embd, cfg.n_embd_q), "attn_k": (cfg.n_embd, cfg.n_embd_kv),
                                     "attn_v": (cfg.n_embd, cfg.n_embd_kv), "attn_output": (cfg.n_embd_q, cfg.n_embd),
                                     "ffn_gate": (cfg.n_embd, cfg.n_ff), "ffn_up": (cfg.n_embd, cfg.n_ff),
                                     "ffn_down": (cfg.n_ff, cfg.n_embd)}.items():
                name = "blk.%d.%s.weight" % (il, t)
                tensors += [(name + ".lora_a", gguf_io.GGML_F32, np.ones((1, n_in), np.float32)),
                            (name + ".lora_b", gguf_io.GGML_F32, np.zeros((n_out, 1), np.float32))]
        zero = env.path("zero-%s.gguf" % typ)
        gguf_io.write_gguf(zero, kvs, tensors)
        merged = env.path("merged-%s.gguf" % typ)
        env.run_nc("model", "merge-lora", "--base", base, "--lora", zero, "--scale", 0, "--out", merged)
        gb, gm = gguf_io.GgufFile(base), gguf_io.GgufFile(merged)
        n = differ = 0
        for ti in gb.tensors:
            if not ti.name.startswith("blk.") or len(ti.ne) < 2:
                continue
            mine = gb.dequantize(ti)
            tm = gm.tensor(ti.name)
            theirs = gm.dequantize(tm)
            if tm.type == gguf_io.GGML_F16:
                mine = mine.astype(np.float16).astype(np.float32)
            elif tm.type == gguf_io.GGML_BF16:
                mine = torch.from_numpy(mine).bfloat16().float().numpy()
            n += mine.size
            differ += int((mine.view(np.uint32) != theirs.view(np.uint32)).sum())
        gb.close()
        gm.close()
        os.unlink(merged)
        check(differ == 0 and n > 0, "%-5s %d values (engine's as %s), %d differ" % (typ, n, gguf_io.type_name(tm.type), differ))


def test_parity(env):
    print("parity: trainer forward (no adapter) vs engine reference logits, 64 tokens")
    # q4_K (whose dequantization `dequant` checks bit for bit): random 4-bit models amplify any rounding
    # difference (conformance_test.cpp says as much), so its top-1 limit is 90% here.
    cases = [  # shape, type, arch, extra synth args, plain bound, emulated bound
        ("tiny", "f32", "llama", (), 1e-4, 1e-4),
        ("tiny", "f32", "qwen2", (), 1e-4, 1e-4),
        ("tiny", "f32", "llama", ("--llama3-rope", "1", "--tied", "1"), 1e-4, 1e-4),
        ("micro", "f32", "llama", (), 1e-4, 1e-4),
        ("tiny", "f16", "llama", (), 3e-3, 3e-3),
        ("tiny", "bf16", "llama", (), 1e-2, 3e-3),
        ("tiny", "bf16", "qwen2", (), 1e-2, 3e-3),
        ("tiny", "q8_0", "llama", (), 2e-2, 2e-2),
        ("tiny", "q8_0", "qwen2", (), 2e-2, 2e-2),
        ("tiny", "q4_k", "llama", (), 3e-2, 2e-2),
    ]
    for shape, typ, arch, extra, bound, ebound in cases:
        path = env.synth(shape, typ, arch, extra)
        cfg, _ = nc_model.load_base(path)
        toks = sample_tokens(cfg.n_vocab, 64, 11)
        ref = env.logits(path, toks)
        plain = trainer_logits(path, toks)
        r, t = rel(plain, ref), top1(plain, ref)
        label = "%-5s %-5s %-4s%s" % (shape, arch, typ, " " + " ".join(extra) if extra else "")
        t1 = 0.90 if typ == "q4_k" else 0.97
        if typ == "f32":
            check(r <= bound and t >= 0.97, "%s rel %.2e (<= %.0e) top1 %.0f%%" % (label, r, bound, 100 * t))
            if shape == "tiny" and not extra:
                # The bf16 compute path (--compute-dtype bf16, auto on CPUs with AVX512-BF16): every base
                # product's input and output rounded to bf16: bf16's activation-rounding bound, top-1 >= 90%.
                b16 = trainer_logits(path, toks, compute=torch.bfloat16)
                rb, tb = rel(b16, ref), top1(b16, ref)
                check(rb <= 1e-2 and tb >= 0.90,
                      "%s, bf16 compute: rel %.2e (<= 1e-02) top1 %.0f%% (>= 90%%)" % (label, rb, 100 * tb))
        else:
            emu = trainer_logits(path, toks, emulate=True)
            re_, te = rel(emu, ref), top1(emu, ref)
            check(r <= bound and t >= t1 and re_ <= ebound and te >= t1,
                  "%s rel %.2e (<= %.0e) top1 %.0f%%; activations rounded as the engine: rel %.2e (<= %.0e) top1 %.0f%% "
                  "(>= %.0f%%)" % (label, r, bound, 100 * t, re_, ebound, 100 * te, 100 * t1))


QA_CITIES = ["Varnholt", "Quellis", "Drumore", "Sefanya", "Okkarat", "Belvane", "Tirrow", "Maskadel", "Pruneva",
             "Icholm", "Zandrik", "Ulmetta", "Gravosk", "Hennamar", "Lopridge", "Corvanna", "Ystrel", "Fennick",
             "Naborra", "Kelvask", "Aldemir", "Rosquin", "Totterby", "Wexhaven", "Jarnuk", "Solvetta", "Mirrowen",
             "Eskbarra", "Pallidor", "Brenhoek"]


def qa_dataset(env, model):
    data = env.path("qa.jsonl")
    with open(data, "w") as f:
        for i, c in enumerate(QA_CITIES):
            f.write(json.dumps({"messages": [{"role": "user", "content": "What is the capital of Country %d?" % (i + 1)},
                                             {"role": "assistant", "content": "The capital is %s." % c}]}) + "\n")
    toks = env.path("qa-tokens-%s.jsonl" % os.path.basename(model))
    env.run_nc("dataset", "tokenize", "-m", model, "--in", data, "--out", toks)
    with open(toks) as f:
        return toks, [json.loads(line) for line in f]


def test_interop(env):
    print("interop: trainer-written adapters in the engine (logits --lora)")
    # f32 adapters: the F32 bound 1e-4 against the engine's reference pass; its fast path (llama.cpp's
    # numerics: fp16 V accumulation in small batches) is held to its own limit against that reference,
    # 1e-3 (forward_test.cpp). An f16 adapter: the engine rounds the adapter's inputs to f16 as ggml does
    # for f16 matrices, so the f16 limit 3e-3.
    for arch, adapter_type in (("llama", "f32"), ("qwen2", "f32"), ("qwen2", "f16")):
        limit = 1e-4 if adapter_type == "f32" else 3e-3
        base = env.synth("tiny", "f32", arch)
        toks_file, _ = qa_dataset(env, base)
        out = env.path("interop-%s-%s.gguf" % (arch, adapter_type))
        ck = env.path("interop-ck-%s-%s" % (arch, adapter_type))
        r, ev = env.train(base, toks_file, out, env.path("interop-%s.events" % arch), "--epochs", 2, "--batch-size", 8,
                          "--learning-rate", 1e-2, "--rank", 8, "--alpha", 16, "--seed", 3, "--checkpoint-dir", ck,
                          "--adapter-type", adapter_type)
        if not check(r.returncode == 0 and ev and ev[-1]["type"] == "done", "%s: trainer exit %d, last event %s %s" % (
                arch, r.returncode, ev[-1] if ev else None, r.stderr[-2000:])):
            continue
        g = gguf_io.GgufFile(out)
        kv_ok = (g.kv.get("general.type") == "adapter" and g.kv.get("adapter.type") == "lora"
                 and g.kv.get("general.architecture") == arch and abs(g.kv.get("adapter.lora.alpha", 0) - 16) < 1e-6)
        qa = g.tensor("blk.0.attn_q.weight.lora_a")
        qb = g.tensor("blk.1.ffn_down.weight.lora_b")
        cfg, _ = nc_model.load_base(base)
        shapes_ok = qa is not None and qb is not None and list(qa.ne) == [cfg.n_embd, 8] and list(qb.ne) == [8, cfg.n_embd]
        bmax = float(np.abs(g.dequantize(qb)).max())
        n_t = len(g.tensors)
        g.close()
        check(kv_ok and shapes_ok and n_t == 14 * cfg.n_layer and bmax > 1e-3,
              "%s: adapter metadata, %d tensors, lora_a ne %s, lora_b ne %s, max|B| %.3g" % (
                  arch, n_t, qa.ne if qa else None, qb.ne if qb else None, bmax))
        cks = [e for e in ev if e["type"] == "checkpoint"]
        check(len(cks) == 2 and all(os.path.exists(e["path"]) for e in cks), "%s: 2 checkpoint events with files" % arch)
        toks = sample_tokens(cfg.n_vocab, 48, 5)
        ours = trainer_logits(base, toks, adapter=out)
        ours_base = trainer_logits(base, toks)
        ref = env.logits(base, toks, lora=out)
        fast = env.logits(base, toks, lora=out, reference=False)
        ck_ref = env.logits(base, toks[:16], lora=cks[0]["path"])
        ck_ours = trainer_logits(base, toks[:16], adapter=cks[0]["path"])
        moved = rel(ours, ours_base)
        check(rel(ours, ref) <= limit and rel(ck_ours, ck_ref) <= limit and rel(fast, ref) <= 1e-3 and moved > 1e-2,
              "%s (%s adapter): rel vs engine reference %.2e, checkpoint %.2e (<= %.0e); engine fast path vs "
              "reference %.2e (<= 1e-3), vs trainer %.2e; the adapter moves the logits by %.1f%%" % (
                  arch, adapter_type, rel(ours, ref), rel(ck_ours, ck_ref), limit, rel(fast, ref), rel(ours, fast),
                  100 * moved))


LEARN_ARGS = ["--epochs", 30, "--batch-size", 4, "--learning-rate", 3e-3, "--rank", 16, "--alpha", 32, "--seed", 1]


def answers_exactly(env, model, ex, lora):
    lg = env.logits(model, ex["ids"], lora=lora, reference=False)
    pred = lg.argmax(1)
    return all(pred[i - 1] == ex["ids"][i] for i in range(1, len(ex["ids"])) if ex["mask"][i])


def test_learn(env):
    print("learn: 30 Q/A pairs on a tiny q8_0 model; " + " ".join(map(str, LEARN_ARGS)))
    base = env.synth("tiny", "q8_0", "llama")
    toks_file, exs = qa_dataset(env, base)
    valid = env.path("qa-valid.jsonl")
    with open(toks_file) as f, open(valid, "w") as g:
        g.writelines(f.readlines()[:5])
    out = env.path("learn.gguf")
    t0 = time.time()
    r, ev = env.train(base, toks_file, out, env.path("learn.events"), "--valid", valid,
                      "--checkpoint-dir", env.path("learn-ck"), *LEARN_ARGS)
    wall = time.time() - t0
    if not check(r.returncode == 0 and ev and ev[-1]["type"] == "done",
                 "trainer exit %d in %.1fs: %s" % (r.returncode, wall, r.stderr[-2000:])):
        return
    st = ev[0]
    n_targets = sum(sum(e["mask"][1:]) for e in exs)
    check(st["type"] == "started" and st["device"] == "cpu" and st["threads"] == THREADS and st["examples"] == 30
          and st["train_tokens"] == sum(len(e["ids"]) for e in exs) and st["trained_tokens_per_epoch"] == n_targets
          and st["steps"] == 30 * 8 and st["params"] > 0, "started event %s" % json.dumps(st))
    steps = [e for e in ev if e["type"] == "step"]
    cks = [e for e in ev if e["type"] == "checkpoint"]
    done = ev[-1]
    check([e["step"] for e in steps] == list(range(1, 241)) and steps[-1]["trained_tokens"] == 30 * n_targets
          and all(b["elapsed_s"] >= a["elapsed_s"] for a, b in zip(steps, steps[1:])),
          "240 step events, trained_tokens %d" % steps[-1]["trained_tokens"])
    losses = [e["train_loss"] for e in cks]
    check(len(cks) == 30 and [e["epoch"] for e in cks] == list(range(1, 31)) and all(os.path.exists(e["path"]) for e in cks)
          and all(e["valid_loss"] is not None for e in cks),
          "30 checkpoint events with files and valid_loss")
    falling = losses[-1] < 0.05 * losses[0] and losses[-1] < 0.1 and min(losses[:10]) > losses[-1]
    check(falling, "epoch train_loss falls: %s" % " ".join("%.3f" % x for x in losses))
    check(done["step"] == 240 and done["trained_tokens"] == 30 * n_targets and done["valid_tokens"] > 0
          and done["valid_loss"] is not None and done["valid_loss"] < 0.1 and done["out"] == out,
          "done event %s" % json.dumps(done))
    n_ok = sum(answers_exactly(env, base, e, out) for e in exs)
    n_base = sum(answers_exactly(env, base, e, None) for e in exs)
    check(n_ok >= 27, "engine + adapter answers %d/30 exactly (teacher-forced greedy, >= 27); training %.1fs wall" % (n_ok, wall))
    check(n_base == 0, "engine without the adapter answers %d/30" % n_base)


def expect_error(env, what, model, train, code, needle, *extra):
    r, ev = env.train(model, train, env.path("bad.gguf"), env.path("bad.events"), "--epochs", 1, "--batch-size", 2,
                      "--rank", 2, *extra)
    err = [e for e in ev if e["type"] == "error"]
    ok = r.returncode == 2 and len(err) == 1 and err[0]["code"] == code and needle in err[0]["message"] \
        and not os.path.exists(env.path("bad.gguf"))
    check(ok, "%s: exit %d, %s" % (what, r.returncode, json.dumps(err[0]) if err else "no error event"))


def test_badinput(env):
    print("badinput: errors as events, exit 2")
    model = env.synth("micro", "f32", "llama")
    good = {"ids": [1, 5, 6, 7], "mask": [0, 0, 1, 1]}

    def write(name, lines):
        p = env.path(name)
        with open(p, "w") as f:
            f.write("\n".join(lines) + "\n")
        return p

    g = json.dumps(good)
    expect_error(env, "malformed JSON", model, write("b1.jsonl", [g, g, '{"ids": [1, 2', g]), "invalid_training_file", "line 3")
    expect_error(env, "id >= n_vocab", model, write("b2.jsonl", [g, json.dumps({"ids": [1, 32000], "mask": [0, 1]})]),
                 "invalid_training_file", "line 2")
    expect_error(env, "ids/mask length mismatch", model,
                 write("b3.jsonl", [g, g, g, json.dumps({"ids": [1, 2, 3], "mask": [0, 1]})]), "invalid_training_file", "line 4")
    expect_error(env, "longer than --max-seq-len", model, write("b4.jsonl", [json.dumps({"ids": [1] * 20, "mask": [1] * 20})]),
                 "invalid_training_file", "line 1", "--max-seq-len", 16)
    expect_error(env, "validation file error", model, write("b5.jsonl", [g]), "invalid_training_file", "validation file line 2",
                 "--valid", write("b5v.jsonl", [g, "[1,2]"]))
    with open(model, "rb") as f:
        data = f.read()
    trunc = env.path("truncated.gguf")
    with open(trunc, "wb") as f:
        f.write(data[:len(data) // 2])
    expect_error(env, "truncated GGUF", trunc, write("ok.jsonl", [g]), "invalid_model", "truncated")
    garbage = env.path("garbage.gguf")
    with open(garbage, "wb") as f:
        f.write(os.urandom(4096))
    expect_error(env, "garbage GGUF", garbage, env.path("ok.jsonl"), "invalid_model", "not a GGUF")
    # SIGTERM: a long run ends promptly.
    ev_path = env.path("term.events")
    if os.path.exists(ev_path):
        os.unlink(ev_path)
    big = write("term.jsonl", [g] * 200)
    p = subprocess.Popen([PY, TRAINER, "--model", model, "--train", big, "--out", env.path("term.gguf"), "--events", ev_path,
                          "--epochs", "100000", "--batch-size", "1", "--threads", "1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 60 and not any(e["type"] == "started" for e in read_events(ev_path)):
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    t1 = time.time()
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    check(rc is not None and rc != 0 and time.time() - t1 < 5, "SIGTERM: exit %s after %.2fs" % (rc, time.time() - t1))


TESTS = {"dequant": test_dequant, "parity": test_parity, "interop": test_interop, "learn": test_learn,
         "badinput": test_badinput}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--only", default="", help="comma list of: " + ",".join(TESTS))
    a = ap.parse_args()
    torch.set_num_threads(THREADS)
    env = Env(os.path.abspath(a.bin), os.path.abspath(a.workdir))
    names = a.only.split(",") if a.only else list(TESTS)
    t0 = time.time()
    for n in names:
        t = time.time()
        try:
            TESTS[n](env)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            check(False, "%s raised %s: %s" % (n, type(e).__name__, e))
        print("  (%s: %.1fs)" % (n, time.time() - t), flush=True)
    print("%s: %d failure(s) in %.1fs" % ("FAIL" if FAILURES else "PASS", len(FAILURES), time.time() - t0))
    for f in FAILURES:
        print("  - " + f)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

"""The trainer's model: a Llama-family GGUF (architectures `llama` and `qwen2`, as neocloud's engine reads
them: src/engine/model/model.cpp, arch_*.cpp) as frozen float32 torch tensors, with trainable LoRA
matrices on attn_q/k/v/output and ffn_gate/up/down of every layer.

The forward pass is the engine's reference forward (src/engine/model/forward_ref.cpp) in batched form:
RMSNorm (eps from the file), RoPE NORM (adjacent pairs, llama) or NEOX (halves, qwen2) with the engine's
f32 angle recurrence, optional llama3 rope_freqs, linear rope scaling, GQA, K/V rounded to fp16 (as the
engine's and llama.cpp's KV cache hold them; the rounding passes gradients straight through), SwiGLU,
tied output when output.weight is absent, optional q/k/v/o and output biases. Quantized weights are
dequantized once to f32 (the engine instead rounds activations to the weights' formats: a difference of
the size of those roundings, measured by tests/train/trainer_test.py).

Training-time layout: the tokens of a batch are packed ([n_tokens, n_embd], no padding) for every matrix
product; only attention pads them to [batch, max_len] (causal, so a sequence never sees padding or
another sequence). The LM head and cross-entropy are evaluated only at the positions whose next token
is a target (mask 1), in chunks, with the gradient formed in the forward pass (fused head + loss): the
[tokens, vocab] logits are never stored.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint

import gguf_io
from gguf_io import GgufError

LORA_TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


class Config:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def as_dict(self):
        return dict(self.__dict__)


def read_config(g):
    """Hyper-parameters exactly as ModelLoader::load_common_hparams reads them."""
    arch = g.string("general.architecture")
    if arch not in ("llama", "qwen2"):
        raise GgufError("architecture '%s' is not supported (supported: llama, qwen2)" % arch)
    a = arch + "."
    c = Config(arch=arch)
    c.n_ctx = g.u32(a + "context_length")
    c.n_embd = g.u32(a + "embedding_length")
    c.n_layer = g.u32(a + "block_count")
    c.n_ff = g.u32(a + "feed_forward_length")
    c.n_head = g.u32(a + "attention.head_count")
    c.n_head_kv = g.u32(a + "attention.head_count_kv", c.n_head)
    c.rms_eps = float(g.f32(a + "attention.layer_norm_rms_epsilon"))
    c.rope_base = float(g.f32(a + "rope.freq_base", 10000.0))
    if min(c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.n_ff) <= 0:
        raise GgufError("model hyper-parameters must be positive")
    if c.n_embd % c.n_head or c.n_head % c.n_head_kv:
        raise GgufError("embedding_length %d / head_count %d / head_count_kv %d do not divide" % (c.n_embd, c.n_head, c.n_head_kv))
    key_len = g.u32(a + "attention.key_length", c.n_embd // c.n_head)
    val_len = g.u32(a + "attention.value_length", c.n_embd // c.n_head)
    if key_len != val_len:
        raise GgufError("attention.key_length != attention.value_length")
    c.head_dim = key_len
    if c.head_dim % 2:
        raise GgufError("head dimension %d must be even" % c.head_dim)
    n_rot = g.u32(a + "rope.dimension_count", c.head_dim)
    if n_rot != c.head_dim:
        raise GgufError("rope.dimension_count %d differs from the head dimension %d" % (n_rot, c.head_dim))
    scaling = g.string(a + "rope.scaling.type", "linear")
    factor = float(g.f32(a + "rope.scaling.factor", 0.0))
    c.rope_scale = 1.0 if factor == 0.0 else 1.0 / factor
    if scaling == "none":
        c.rope_scale = 1.0
    elif scaling != "linear":
        raise GgufError("rope.scaling.type '%s' is not supported (linear and none are)" % scaling)
    c.rope_type = "norm" if arch == "llama" else "neox"
    c.n_embd_q = c.head_dim * c.n_head
    c.n_embd_kv = c.head_dim * c.n_head_kv
    emb = g.tensor("token_embd.weight")
    if emb is None:
        raise GgufError("required tensor 'token_embd.weight' is missing")
    c.n_vocab = emb.ne[1] if len(emb.ne) > 1 else 1
    return c


def rope_table(n_pos, n_rot, base, scale, freq_factors):
    """cos, sin [n_pos, n_rot/2] float32, as engine rope_cache: theta_0 = pos, theta_{i+1} = theta_i *
    base^(-2/n_rot) in f32, divided by freq_factors[i], times the scale."""
    theta_scale = np.power(np.float32(base), np.float32(-2.0) / np.float32(n_rot), dtype=np.float32)
    theta = np.arange(n_pos, dtype=np.float32)
    half = n_rot // 2
    cos = np.empty((n_pos, half), np.float32)
    sin = np.empty((n_pos, half), np.float32)
    fs = np.float32(scale)
    for i in range(half):
        ff = np.float32(1.0) if freq_factors is None else np.float32(freq_factors[i])
        th = fs * (theta / ff)
        cos[:, i] = np.cos(th)
        sin[:, i] = np.sin(th)
        theta = theta * theta_scale
    return cos, sin


class _Weights:
    pass


def load_base(path, dtype=torch.float32):
    """Reads and checks a base model GGUF. Returns (config, weights) with weights as torch tensors on the
    CPU. GgufError on anything the engine would also refuse (missing tensors, wrong shapes, types)."""
    g = gguf_io.GgufFile(path)
    try:
        c = read_config(g)
        tok_list = g.get("tokenizer.ggml.tokens")
        if tok_list is not None and len(tok_list) > c.n_vocab:
            raise GgufError("the tokenizer has %d tokens but token_embd.weight only %d rows" % (len(tok_list), c.n_vocab))
        if c.n_layer > len(g.tensors):
            raise GgufError("block_count is %d but the file has only %d tensors" % (c.n_layer, len(g.tensors)))

        types = {}

        def mat(name, n_cols, n_rows, required=True):
            t = g.tensor(name)
            if t is not None:
                types[name] = t.type
            if t is None:
                if required:
                    raise GgufError("required tensor '%s' is missing" % name)
                return None
            ne = list(t.ne) + [1] * (4 - len(t.ne))
            if ne != [n_cols, n_rows, 1, 1]:
                raise GgufError("tensor '%s' has shape %s, expected [%d, %d]" % (name, t.ne, n_cols, n_rows))
            return torch.from_numpy(g.dequantize(t).reshape(n_rows, n_cols)).to(dtype)

        def vec(name, n, required=True):
            t = g.tensor(name)
            if t is None:
                if required:
                    raise GgufError("required tensor '%s' is missing" % name)
                return None
            if t.n_elements() != n or t.ne[0] != n:
                raise GgufError("tensor '%s' has %d elements, expected %d" % (name, t.n_elements(), n))
            if t.type != gguf_io.GGML_F32:
                raise GgufError("tensor '%s' has type %s; 1-D tensors must be f32" % (name, gguf_io.type_name(t.type)))
            return torch.from_numpy(g.dequantize(t).reshape(n)).to(dtype)

        E, Eq, Ekv, Fd = c.n_embd, c.n_embd_q, c.n_embd_kv, c.n_ff
        w = _Weights()
        w.tok_embd = mat("token_embd.weight", E, c.n_vocab)
        w.layers = []
        qwen2 = c.arch == "qwen2"
        for il in range(c.n_layer):
            p = "blk.%d." % il
            L = _Weights()
            L.attn_norm = vec(p + "attn_norm.weight", E)
            wq, wk, wv = mat(p + "attn_q.weight", E, Eq), mat(p + "attn_k.weight", E, Ekv), mat(p + "attn_v.weight", E, Ekv)
            L.w_qkv = torch.cat([wq, wk, wv], 0)
            del wq, wk, wv
            bq = vec(p + "attn_q.bias", Eq, qwen2)
            bk = vec(p + "attn_k.bias", Ekv, qwen2)
            bv = vec(p + "attn_v.bias", Ekv, qwen2)
            if bq is None and bk is None and bv is None:
                L.b_qkv = None
            else:
                z = lambda b, n: b if b is not None else torch.zeros(n, dtype=dtype)
                L.b_qkv = torch.cat([z(bq, Eq), z(bk, Ekv), z(bv, Ekv)])
            L.wo = mat(p + "attn_output.weight", Eq, E)
            L.bo = None if qwen2 else vec(p + "attn_output.bias", E, False)
            L.ffn_norm = vec(p + "ffn_norm.weight", E)
            wg, wu = mat(p + "ffn_gate.weight", E, Fd), mat(p + "ffn_up.weight", E, Fd)
            L.w_gu = torch.cat([wg, wu], 0)
            del wg, wu
            L.w_down = mat(p + "ffn_down.weight", Fd, E)
            T = lambda n: types[p + n + ".weight"]
            L.types = {"qkv": [(Eq, T("attn_q")), (Ekv, T("attn_k")), (Ekv, T("attn_v"))], "o": [(E, T("attn_output"))],
                       "gu": [(Fd, T("ffn_gate")), (Fd, T("ffn_up"))], "down": [(E, T("ffn_down"))]}
            w.layers.append(L)
        w.output_norm = vec("output_norm.weight", E)
        w.output = mat("output.weight", E, c.n_vocab, False)
        c.tied_output = w.output is None
        if c.tied_output:
            w.output = w.tok_embd
        w.output_types = [(c.n_vocab, types["output.weight" if not c.tied_output else "token_embd.weight"])]
        w.output_bias = vec("output.bias", c.n_vocab, False)
        w.rope_freqs = None
        if c.arch == "llama":
            rf = vec("rope_freqs.weight", c.head_dim // 2, False)
            w.rope_freqs = None if rf is None else rf.float().numpy()
        c.name = g.get("general.name", "")
        return c, w
    finally:
        g.close()


class FusedHeadCE(torch.autograd.Function):
    """sum over rows of cross_entropy(h @ W^T + b, target), evaluated in row chunks into one reused
    buffer; the gradient w.r.t. h is formed in the forward pass (dh = softmax(logits) W - W[target]), so
    the [rows, vocab] logits are never kept. Returns the summed loss (a 0-d tensor)."""

    @staticmethod
    def forward(ctx, h, weight, bias, targets, buf, need_grad):
        total = torch.zeros((), dtype=torch.float64, device=h.device)
        dh = torch.empty_like(h) if need_grad else None
        chunk = buf.shape[0]
        for s in range(0, h.shape[0], chunk):
            hs = h[s:s + chunk]
            ts = targets[s:s + chunk, None]
            z = buf[:hs.shape[0]]
            if weight.dtype == z.dtype:
                torch.mm(hs, weight.t(), out=z)
            else:  # bf16 compute: products in bf16 (f32 accumulation), softmax and loss in f32
                z.copy_(torch.mm(hs.to(weight.dtype), weight.t()))
            if bias is not None:
                z.add_(bias)
            z.sub_(z.amax(1, keepdim=True))
            picked = z.gather(1, ts)
            z.exp_()
            se = z.sum(1, keepdim=True)
            total += (se.log() - picked).double().sum()  # logsumexp - logit[target], both shifted
            if need_grad:
                d = dh[s:s + chunk]
                if weight.dtype == z.dtype:
                    torch.mm(z, weight, out=d)
                else:
                    d.copy_(torch.mm(z.to(weight.dtype), weight))
                d.div_(se).sub_(weight.index_select(0, ts[:, 0]).float())
        ctx.save_for_backward(dh)
        return total.float()

    @staticmethod
    def backward(ctx, grad):
        (dh,) = ctx.saved_tensors
        return dh * grad, None, None, None, None, None


def _round_half_away(x):
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def act_round(x, typ):
    """x rounded as the engine rounds a product's input for a weight of ggml type `typ` (its activation
    format: f16, bf16, q8_0 blocks of 32 with an fp16 scale, q8_K blocks of 256; f32: unchanged)."""
    if typ == gguf_io.GGML_F32:
        return x
    if typ == gguf_io.GGML_F16:
        return x.half().float()
    if typ == gguf_io.GGML_BF16:
        return x.bfloat16().float()
    n = x.shape[-1]
    if typ in (gguf_io.GGML_Q8_0, gguf_io.GGML_Q4_0):  # quantize_row_q8_0_ref
        xb = x.reshape(-1, n // 32, 32)
        d = xb.abs().amax(-1, keepdim=True) / 127.0
        idv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
        q = _round_half_away(xb * idv)
        return (q * d.half().float()).reshape(x.shape)
    if typ in (gguf_io.GGML_Q4_K, gguf_io.GGML_Q6_K):  # quantize_q8_K_act (q8_K)
        xb = x.reshape(-1, n // 256, 256)
        i = xb.abs().argmax(-1, keepdim=True)
        mx = xb.gather(-1, i)
        iscale = torch.where(mx != 0, -127.0 / mx, torch.zeros_like(mx))
        q = torch.round(iscale * xb).clamp(max=127)  # nearest_int: half to even
        d = torch.where(mx != 0, 1.0 / iscale, torch.zeros_like(mx))
        return (q * d).reshape(x.shape)
    raise ValueError("no activation format for type %d" % typ)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _round_fp16_ste(x):
    """Rounded to fp16 (as a KV cache holds it), gradient passed straight through."""
    return x + (x.half().float() - x).detach()


class LoraModel(torch.nn.Module):
    """Frozen base weights (buffers) + trainable LoRA A/B (parameters)."""

    def __init__(self, cfg, w, rank, alpha, seed, device, max_pos=None, kv_fp16=True, emulate_activations=False,
                 compute_dtype=torch.float32):
        """emulate_activations: round every base product's input as the engine's kernels do (f16/bf16
        rounding, q8_0/q8_K quantization: forward only, for checking parity with the engine).
        compute_dtype: torch.bfloat16 keeps the base matrices in bf16 and multiplies in bf16 (f32
        accumulation; half the memory, several times the speed where the CPU has AVX512-BF16/AMX or on
        GPUs); norms, attention, softmax, the loss and the LoRA matrices stay f32."""
        super().__init__()
        self.compute_dtype = compute_dtype
        assert not (emulate_activations and compute_dtype != torch.float32)
        self.emulate = emulate_activations
        self.output_types = w.output_types
        self.cfg = cfg
        self.rank = int(rank)
        self.alpha = float(alpha)
        self.scale = self.alpha / self.rank if self.rank > 0 else 0.0
        self.kv_fp16 = kv_fp16
        self.device = torch.device(device)
        dev = self.device
        self.tok_embd = w.tok_embd.to(dev)
        self.output = self.tok_embd if cfg.tied_output else w.output.to(dev)
        if compute_dtype != torch.float32:
            self.output = self.output.to(compute_dtype)
        self.output_norm = w.output_norm.to(dev)
        self.output_bias = None if w.output_bias is None else w.output_bias.to(dev)
        self.layers = []
        for L in w.layers:
            d = _Weights()
            for k, v in L.__dict__.items():
                if torch.is_tensor(v):
                    v = v.to(dev, compute_dtype if k.startswith("w") else torch.float32)
                setattr(d, k, v)
            self.layers.append(d)
        n_pos = int(max_pos or cfg.n_ctx)
        cos, sin = rope_table(n_pos, cfg.head_dim, cfg.rope_base, cfg.rope_scale, w.rope_freqs)
        self.rope_cos = torch.from_numpy(cos).to(dev)
        self.rope_sin = torch.from_numpy(sin).to(dev)
        self.lora = torch.nn.ParameterList()
        self.lora_named = []  # (gguf base tensor name, A param or (param, row slice), B param)
        if self.rank > 0:
            self._init_lora(seed)

    # ---- LoRA parameters
    def _init_lora(self, seed):
        c, r = self.cfg, self.rank
        gen = torch.Generator().manual_seed(int(seed))

        def A(n_in, k=1):  # PEFT: kaiming_uniform_(a=sqrt(5)) -> U(-1/sqrt(n_in), 1/sqrt(n_in))
            bound = 1.0 / math.sqrt(n_in)
            t = (torch.rand(k * r, n_in, generator=gen, dtype=torch.float32) * 2 - 1) * bound
            return torch.nn.Parameter(t.to(self.device))

        def B(n_out):
            return torch.nn.Parameter(torch.zeros(n_out, r, device=self.device))

        E, Eq, Ekv, Fd = c.n_embd, c.n_embd_q, c.n_embd_kv, c.n_ff
        for il, L in enumerate(self.layers):
            p = "blk.%d." % il
            L.a_qkv, L.b_q, L.b_k, L.b_v = A(E, 3), B(Eq), B(Ekv), B(Ekv)
            L.a_o, L.b_o = A(Eq), B(E)
            L.a_gu, L.b_g, L.b_u = A(E, 2), B(Fd), B(Fd)
            L.a_d, L.b_d = A(Fd), B(E)
            for prm in (L.a_qkv, L.b_q, L.b_k, L.b_v, L.a_o, L.b_o, L.a_gu, L.b_g, L.b_u, L.a_d, L.b_d):
                self.lora.append(prm)
            self.lora_named += [
                (p + "attn_q.weight", (L.a_qkv, 0), L.b_q), (p + "attn_k.weight", (L.a_qkv, 1), L.b_k),
                (p + "attn_v.weight", (L.a_qkv, 2), L.b_v), (p + "attn_output.weight", (L.a_o, 0), L.b_o),
                (p + "ffn_gate.weight", (L.a_gu, 0), L.b_g), (p + "ffn_up.weight", (L.a_gu, 1), L.b_u),
                (p + "ffn_down.weight", (L.a_d, 0), L.b_d),
            ]

    def n_params(self):
        return sum(p.numel() for p in self.lora)

    def adapter_tensors(self):
        """[(base name, A [rank, n_in] numpy, B [n_out, rank] numpy)] in the engine's/llama.cpp's layout."""
        r, out = self.rank, []
        for name, (a, k), b in self.lora_named:
            out.append((name, a.detach()[k * r:(k + 1) * r].float().cpu().numpy(), b.detach().float().cpu().numpy()))
        return out

    def load_adapter_tensors(self, tensors):
        """Sets A/B from {base name: (A, B)} numpy arrays (a checkpoint or a test's perturbation)."""
        r = self.rank
        with torch.no_grad():
            for name, (a, k), b in self.lora_named:
                if name in tensors:
                    A_, B_ = tensors[name]
                    a[k * r:(k + 1) * r].copy_(torch.from_numpy(np.asarray(A_, np.float32)))
                    b.copy_(torch.from_numpy(np.asarray(B_, np.float32)))

    # ---- forward
    def _mm(self, x, W, b, pieces):
        if not self.emulate:
            if W.dtype == x.dtype:
                return F.linear(x, W, b)
            y = F.linear(x.to(W.dtype), W).float()
            return y if b is None else y + b
        outs, r0 = [], 0
        for n_rows, t in pieces:
            outs.append(F.linear(act_round(x, t), W[r0:r0 + n_rows]))
            r0 += n_rows
        y = torch.cat(outs, 1) if len(outs) > 1 else outs[0]
        return y if b is None else y + b

    def _rope(self, x, cos, sin, n_heads):
        # x [N, n_heads * D]; cos/sin [N, D/2]
        N, D = x.shape[0], self.cfg.head_dim
        if self.cfg.rope_type == "norm":  # pairs (2i, 2i+1)
            xv = x.view(N, n_heads, D // 2, 2)
            x0, x1 = xv[..., 0], xv[..., 1]
            c, s = cos[:, None, :], sin[:, None, :]
            return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).view(N, n_heads * D)
        xv = x.view(N, n_heads, 2, D // 2)  # NEOX: pairs (i, i + D/2)
        x0, x1 = xv[:, :, 0], xv[:, :, 1]
        c, s = cos[:, None, :], sin[:, None, :]
        return torch.cat((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).reshape(N, n_heads * D)

    def _attention(self, q, k, v, lay):
        """q [N, H*D], k/v [N, Hkv*D] packed; lay: batch layout. Returns [N, H*D]."""
        c = self.cfg
        H, Hkv, D = c.n_head, c.n_head_kv, c.head_dim
        G = H // Hkv
        B, Lm = lay["B"], lay["Lmax"]
        idx = lay["pad_idx"]
        if idx is not None:  # packed -> padded [B*Lm, ...] (padding rows stay zero)
            def pad(t):
                z = t.new_zeros(B * Lm, t.shape[1])
                return z.index_copy(0, idx, t)
            q, k, v = pad(q), pad(k), pad(v)
        # q [B, Lm, Hkv, G, D] -> [B, Hkv, G*Lm, D]; k/v [B, Hkv, Lm, D]
        qh = q.view(B, Lm, Hkv, G, D).permute(0, 2, 3, 1, 4).reshape(B, Hkv, G * Lm, D)
        kh = k.view(B, Lm, Hkv, D).transpose(1, 2)
        vh = v.view(B, Lm, Hkv, D).transpose(1, 2)
        # scores = causal + (q k^T) / sqrt(D); causal [G*Lm, Lm] is -inf above each row's position
        # (torch 1.13's CPU baddbmm is ~50x slower than bmm at these sizes)
        scores = torch.bmm(qh.reshape(B * Hkv, G * Lm, D), kh.reshape(B * Hkv, Lm, D).transpose(1, 2))
        scores = scores * (1.0 / math.sqrt(D)) + lay["causal"]
        p = torch.softmax(scores, dim=-1)
        o = torch.bmm(p, vh.reshape(B * Hkv, Lm, D))  # [B*Hkv, G*Lm, D]
        o = o.view(B, Hkv, G, Lm, D).permute(0, 3, 1, 2, 4).reshape(B * Lm, H * D)
        if idx is not None:
            o = o.index_select(0, idx)
        return o

    def layout(self, lengths):
        """Batch layout for sequences of these lengths, packed in order."""
        dev = self.device
        B, Lm = len(lengths), max(lengths)
        pos = torch.cat([torch.arange(n) for n in lengths]).to(dev)
        if all(n == Lm for n in lengths):
            pad_idx = None
        else:
            pad_idx = torch.cat([torch.arange(n) + b * Lm for b, n in enumerate(lengths)]).to(dev)
        G = self.cfg.n_head // self.cfg.n_head_kv
        causal = torch.full((Lm, Lm), float("-inf"), device=dev).triu_(1)
        causal = causal.repeat(G, 1)  # row g*Lm + t: query position t
        return {"B": B, "Lmax": Lm, "pos": pos, "pad_idx": pad_idx, "causal": causal}

    def _layer(self, x, L, cos, sin, lay, use_lora):
        c = self.cfg
        Eq, Ekv, s, r = c.n_embd_q, c.n_embd_kv, self.scale, self.rank
        h = rms_norm(x, L.attn_norm, c.rms_eps)
        qkv = self._mm(h, L.w_qkv, L.b_qkv, L.types["qkv"])
        q, k, v = qkv.split([Eq, Ekv, Ekv], dim=1)
        if use_lora:
            ax = F.linear(h, L.a_qkv)
            q = torch.addmm(q, ax[:, :r], L.b_q.t(), alpha=s)
            k = torch.addmm(k, ax[:, r:2 * r], L.b_k.t(), alpha=s)
            v = torch.addmm(v, ax[:, 2 * r:], L.b_v.t(), alpha=s)
        q = self._rope(q, cos, sin, c.n_head)
        k = self._rope(k, cos, sin, c.n_head_kv)
        if self.kv_fp16:
            k, v = _round_fp16_ste(k), _round_fp16_ste(v)
        att = self._attention(q, k, v, lay)
        o = self._mm(att, L.wo, L.bo, L.types["o"])
        if use_lora:
            o = torch.addmm(o, F.linear(att, L.a_o), L.b_o.t(), alpha=s)
        x = x + o
        h = rms_norm(x, L.ffn_norm, c.rms_eps)
        gu = self._mm(h, L.w_gu, None, L.types["gu"])
        g, u = gu.split([c.n_ff, c.n_ff], dim=1)
        if use_lora:
            ax = F.linear(h, L.a_gu)
            g = torch.addmm(g, ax[:, :r], L.b_g.t(), alpha=s)
            u = torch.addmm(u, ax[:, r:], L.b_u.t(), alpha=s)
        a = F.silu(g) * u
        d = self._mm(a, L.w_down, None, L.types["down"])
        if use_lora:
            d = torch.addmm(d, F.linear(a, L.a_d), L.b_d.t(), alpha=s)
        return x + d

    def activation_bytes(self, lay, n_tokens):
        """Roughly what the backward pass keeps for a batch of this layout (all layers)."""
        c = self.cfg
        per_token = 4 * (8 * c.n_embd + 4 * c.n_embd_q + 5 * c.n_embd_kv + 5 * c.n_ff)
        attn = 4 * 3 * lay["B"] * c.n_head * lay["Lmax"] * lay["Lmax"]
        return c.n_layer * (n_tokens * per_token + attn)

    def hidden(self, tokens, lay, lora=True, checkpoint=False):
        """Final-layer hidden states (before output_norm) for packed tokens [N] -> [N, E]. checkpoint:
        keep only each layer's input for the backward pass and recompute the layer there (less memory,
        one more forward)."""
        use_lora = lora and self.rank > 0
        x = self.tok_embd.index_select(0, tokens)
        cos = self.rope_cos.index_select(0, lay["pos"])
        sin = self.rope_sin.index_select(0, lay["pos"])
        grad = torch.is_grad_enabled() and use_lora
        for L in self.layers:
            if checkpoint and grad:
                x = torch.utils.checkpoint.checkpoint(self._layer, x, L, cos, sin, lay, use_lora, use_reentrant=False)
            else:
                x = self._layer(x, L, cos, sin, lay, use_lora)
        return x

    def logits(self, tokens, lora=True):
        """All positions' logits for one sequence (a list or 1-D tensor of ids) -> [n, n_vocab]."""
        t = torch.as_tensor(tokens, dtype=torch.long, device=self.device)
        lay = self.layout([t.shape[0]])
        x = self.hidden(t, lay, lora)
        h = rms_norm(x, self.output_norm, self.cfg.rms_eps)
        return self._mm(h, self.output, self.output_bias, self.output_types)

    def loss_sum(self, batch, lora=True, chunk=1024, checkpoint=False):
        """batch: dict from make_batch. Returns (summed masked cross-entropy, n_targets)."""
        x = self.hidden(batch["tokens"], batch["layout"], lora, checkpoint)
        hsel = x.index_select(0, batch["src"])
        h = rms_norm(hsel, self.output_norm, self.cfg.rms_eps)
        need_grad = torch.is_grad_enabled() and h.requires_grad
        rows = max(16, min(chunk, (1 << 22) // max(1, self.cfg.n_vocab)))  # a ~16 MB logits buffer, reused
        buf = getattr(self, "_head_buf", None)
        if buf is None or buf.shape[0] != rows:
            buf = self._head_buf = torch.empty(rows, self.cfg.n_vocab, device=self.device)
        loss = FusedHeadCE.apply(h, self.output, self.output_bias, batch["tgt"], buf, need_grad)
        return loss, int(batch["tgt"].shape[0])


def make_batch(model, examples):
    """examples: list of (ids list, mask list). Packs them; src: packed rows whose next token is a target,
    tgt: those targets."""
    lengths = [len(e[0]) for e in examples]
    ids = np.concatenate([np.asarray(e[0], np.int64) for e in examples])
    src = []
    off = 0
    for e_ids, e_mask in examples:
        m = np.asarray(e_mask, np.int8)
        j = np.nonzero(m[1:])[0]  # targets at positions j+1, predicted from position j
        src.append(j + off)
        off += len(e_ids)
    src = np.concatenate(src) if src else np.zeros(0, np.int64)
    dev = model.device
    t = torch.from_numpy(ids).to(dev)
    srct = torch.from_numpy(src.astype(np.int64)).to(dev)
    return {"tokens": t, "layout": model.layout(lengths), "src": srct, "tgt": t.index_select(0, srct + 1),
            "n_tokens": int(ids.shape[0])}

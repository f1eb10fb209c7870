// Golden logits from llama.cpp, stored compactly: per position the values at a fixed sample of
// vocabulary columns, the row's argmax and its top-16 (id, value). Written by tests/engine/
// golden_tool.cpp (see tools/make-goldens.sh), read by conformance_test.cpp.
// File layout (little-endian): "NCGL" u32 version=1, u32 n_tokens, u32 n_vocab, u32 n_cols, u32 n_top,
// i32 tokens[n_tokens], i32 cols[n_cols], then per position: f32 vals[n_cols], i32 argmax,
// i32 top_ids[n_top], f32 top_vals[n_top].
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <set>
#include <string>
#include <vector>

namespace nc::test {

struct GoldenRow {
  std::vector<float> vals;
  int32_t argmax = 0;
  std::vector<int32_t> top_ids;
  std::vector<float> top_vals;
};

struct Golden {
  uint32_t n_vocab = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> cols;
  std::vector<GoldenRow> rows;
};

constexpr uint32_t kGoldenCols = 512;
constexpr uint32_t kGoldenTop = 16;

inline uint64_t golden_mix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Deterministic test prompt of n token ids below n_vocab.
inline std::vector<int32_t> golden_tokens(uint32_t n, uint32_t n_vocab, uint64_t seed) {
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(golden_mix(seed) % n_vocab);
  return t;
}

inline std::vector<int32_t> golden_cols(uint32_t n_vocab) {
  std::set<int32_t> s;
  uint64_t seed = 12345;
  while (s.size() < std::min(kGoldenCols, n_vocab)) s.insert(static_cast<int32_t>(golden_mix(seed) % n_vocab));
  return {s.begin(), s.end()};
}

inline Golden golden_from_logits(const std::vector<float>& logits, const std::vector<int32_t>& tokens, uint32_t n_vocab) {
  Golden g;
  g.n_vocab = n_vocab;
  g.tokens = tokens;
  g.cols = golden_cols(n_vocab);
  for (size_t r = 0; r < tokens.size(); ++r) {
    const float* row = logits.data() + r * n_vocab;
    GoldenRow gr;
    for (int32_t c : g.cols) gr.vals.push_back(row[c]);
    std::vector<int32_t> idx(n_vocab);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + kGoldenTop, idx.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    gr.argmax = idx[0];
    for (uint32_t k = 0; k < kGoldenTop; ++k) {
      gr.top_ids.push_back(idx[k]);
      gr.top_vals.push_back(row[idx[k]]);
    }
    g.rows.push_back(std::move(gr));
  }
  return g;
}

inline bool golden_write(const Golden& g, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  auto u32 = [&](uint32_t v) { std::fwrite(&v, 4, 1, f); };
  std::fwrite("NCGL", 1, 4, f);
  u32(1);
  u32(static_cast<uint32_t>(g.tokens.size()));
  u32(g.n_vocab);
  u32(static_cast<uint32_t>(g.cols.size()));
  u32(kGoldenTop);
  std::fwrite(g.tokens.data(), 4, g.tokens.size(), f);
  std::fwrite(g.cols.data(), 4, g.cols.size(), f);
  for (const auto& r : g.rows) {
    std::fwrite(r.vals.data(), 4, r.vals.size(), f);
    std::fwrite(&r.argmax, 4, 1, f);
    std::fwrite(r.top_ids.data(), 4, r.top_ids.size(), f);
    std::fwrite(r.top_vals.data(), 4, r.top_vals.size(), f);
  }
  return std::fclose(f) == 0;
}

inline bool golden_read(const std::string& path, Golden& g) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[4];
  uint32_t ver = 0, nt = 0, nc = 0, ntop = 0;
  bool ok = std::fread(magic, 1, 4, f) == 4 && std::string(magic, 4) == "NCGL";
  ok = ok && std::fread(&ver, 4, 1, f) == 1 && ver == 1 && std::fread(&nt, 4, 1, f) == 1 &&
       std::fread(&g.n_vocab, 4, 1, f) == 1 && std::fread(&nc, 4, 1, f) == 1 && std::fread(&ntop, 4, 1, f) == 1;
  if (ok) {
    g.tokens.resize(nt);
    g.cols.resize(nc);
    ok = std::fread(g.tokens.data(), 4, nt, f) == nt && std::fread(g.cols.data(), 4, nc, f) == nc;
    for (uint32_t r = 0; ok && r < nt; ++r) {
      GoldenRow gr;
      gr.vals.resize(nc);
      gr.top_ids.resize(ntop);
      gr.top_vals.resize(ntop);
      ok = std::fread(gr.vals.data(), 4, nc, f) == nc && std::fread(&gr.argmax, 4, 1, f) == 1 &&
           std::fread(gr.top_ids.data(), 4, ntop, f) == ntop && std::fread(gr.top_vals.data(), 4, ntop, f) == ntop;
      g.rows.push_back(std::move(gr));
    }
  }
  std::fclose(f);
  return ok;
}

}  // namespace nc::test

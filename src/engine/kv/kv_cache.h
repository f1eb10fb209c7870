// KvCache: a paged key/value cache. K and V of every layer live in fixed-size blocks of
// `block_size` token cells drawn from one pool; each sequence owns a block table mapping its
// positions to cells (position p of a sequence is cell table[p / block_size] * block_size +
// p % block_size). Values are stored as fp16, as llama.cpp stores them.
//
// Invariants: a sequence's positions are 0..length-1 with no gaps; blocks are owned by exactly one
// sequence or free. Thread-safety: owned by the thread that runs the forward pass (the engine's
// step loop); readers during a forward pass only read cells, which is safe across the pool's threads.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace nc::engine {

class KvCache {
 public:
  // n_cells_total is rounded up to whole blocks.
  KvCache(int64_t n_layer, int64_t n_embd_kv, int64_t n_cells_total, int64_t block_size = 16);

  int64_t block_size() const { return block_size_; }
  int64_t n_blocks() const { return n_blocks_; }
  int64_t n_free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t n_used_blocks() const { return n_blocks_ - n_free_blocks(); }
  int64_t n_embd_kv() const { return n_embd_kv_; }

  // Makes room for positions [0, n_positions) of `seq`. ResourceExhausted if blocks run out
  // (nothing is allocated in that case).
  Status reserve(int32_t seq, int64_t n_positions);
  // Marks positions [0, n) as holding values (call after writing them).
  void set_length(int32_t seq, int64_t n);
  int64_t length(int32_t seq) const;
  // Frees every block of `seq`.
  void free_seq(int32_t seq);
  // Drops positions >= n of `seq` (and the blocks no longer needed).
  void truncate(int32_t seq, int64_t n);
  bool has_seq(int32_t seq) const { return seqs_.count(seq) != 0; }

  // Cell of position `pos` of `seq`; the position must be reserved.
  int64_t cell(int32_t seq, int64_t pos) const {
    const Seq& s = seqs_.at(seq);
    return static_cast<int64_t>(s.blocks[pos / block_size_]) * block_size_ + pos % block_size_;
  }
  const std::vector<int32_t>& block_table(int32_t seq) const { return seqs_.at(seq).blocks; }

  uint16_t* k(int64_t layer, int64_t cell) { return k_[layer].data() + cell * n_embd_kv_; }
  uint16_t* v(int64_t layer, int64_t cell) { return v_[layer].data() + cell * n_embd_kv_; }
  const uint16_t* k(int64_t layer, int64_t cell) const { return k_[layer].data() + cell * n_embd_kv_; }
  const uint16_t* v(int64_t layer, int64_t cell) const { return v_[layer].data() + cell * n_embd_kv_; }

  size_t bytes() const;

 private:
  struct Seq {
    std::vector<int32_t> blocks;
    int64_t length = 0;
  };
  int64_t n_layer_, n_embd_kv_, block_size_, n_blocks_;
  std::vector<std::vector<uint16_t>> k_, v_;  // [layer][cell * n_embd_kv]
  std::vector<int32_t> free_;
  std::unordered_map<int32_t, Seq> seqs_;
};

}  // namespace nc::engine

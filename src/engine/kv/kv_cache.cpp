#include "engine/kv/kv_cache.h"

#include <fmt/format.h>

namespace nc::engine {

KvCache::KvCache(int64_t n_layer, int64_t n_embd_kv, int64_t n_cells_total, int64_t block_size)
    : n_layer_(n_layer), n_embd_kv_(n_embd_kv), block_size_(block_size) {
  n_blocks_ = (n_cells_total + block_size_ - 1) / block_size_;
  const size_t n = static_cast<size_t>(n_blocks_ * block_size_ * n_embd_kv_);
  k_.assign(n_layer_, std::vector<uint16_t>(n));
  v_.assign(n_layer_, std::vector<uint16_t>(n));
  free_.reserve(n_blocks_);
  for (int64_t b = n_blocks_ - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

Status KvCache::reserve(int32_t seq, int64_t n_positions) {
  Seq& s = seqs_[seq];
  const int64_t need = (n_positions + block_size_ - 1) / block_size_ - static_cast<int64_t>(s.blocks.size());
  if (need <= 0) return Status::ok();
  if (need > static_cast<int64_t>(free_.size())) {
    if (s.blocks.empty() && s.length == 0) seqs_.erase(seq);
    return resource_exhausted(fmt::format("KV cache full: sequence {} needs {} more blocks of {} cells, {} free", seq,
                                          need, block_size_, free_.size()));
  }
  for (int64_t i = 0; i < need; ++i) {
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
  return Status::ok();
}

void KvCache::set_length(int32_t seq, int64_t n) { seqs_.at(seq).length = n; }

int64_t KvCache::length(int32_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.length;
}

void KvCache::free_seq(int32_t seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  for (auto b : it->second.blocks) free_.push_back(b);
  seqs_.erase(it);
}

void KvCache::truncate(int32_t seq, int64_t n) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  Seq& s = it->second;
  const size_t keep = static_cast<size_t>((n + block_size_ - 1) / block_size_);
  while (s.blocks.size() > keep) {
    free_.push_back(s.blocks.back());
    s.blocks.pop_back();
  }
  if (s.length > n) s.length = n;
}

size_t KvCache::bytes() const { return 2 * static_cast<size_t>(n_layer_ * n_blocks_ * block_size_ * n_embd_kv_) * 2; }

}  // namespace nc::engine

// Batch: the tokens of one forward pass, possibly from several sequences at once (like llama_batch),
// so that continuous batching feeds prefill chunks and decode steps of many requests in one call.
// Each entry is (token id, position in its sequence, sequence id, what to return for it: nothing, its
// logits, or its embedding — the final-norm hidden state, for pooling).
// A plain value type; not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace nc::engine {

class LoraAdapter;

struct Batch {
  // Values of want_logits.
  static constexpr uint8_t kNoOutput = 0, kLogits = 1, kEmbedding = 2;

  std::vector<int32_t> tokens;
  std::vector<int32_t> pos;
  std::vector<int32_t> seq;
  std::vector<uint8_t> want_logits;  // kNoOutput, kLogits or kEmbedding
  // Per token: the LoRA adapter (lora.h) its sequence runs with, or null for the base model. Empty
  // while no token has one. The adapters must outlive the decode call.
  std::vector<const LoraAdapter*> adapters;

  void add(int32_t token, int32_t position, int32_t seq_id, bool logits) {
    add_output(token, position, seq_id, logits ? kLogits : kNoOutput);
  }
  void add_output(int32_t token, int32_t position, int32_t seq_id, uint8_t output,
                  const LoraAdapter* adapter = nullptr) {
    if (adapter || !adapters.empty()) {
      adapters.resize(tokens.size(), nullptr);
      adapters.push_back(adapter);
    }
    tokens.push_back(token);
    pos.push_back(position);
    seq.push_back(seq_id);
    want_logits.push_back(output);
  }
  const LoraAdapter* adapter(int64_t i) const { return adapters.empty() ? nullptr : adapters[static_cast<size_t>(i)]; }
  void clear() {
    tokens.clear();
    pos.clear();
    seq.clear();
    want_logits.clear();
    adapters.clear();
  }
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  int64_t n_outputs() const {  // rows of logits
    int64_t n = 0;
    for (auto w : want_logits) n += w == kLogits;
    return n;
  }
};

}  // namespace nc::engine

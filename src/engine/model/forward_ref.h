// The reference forward pass: the oracle the fast path (Context::decode) is tested against.
// One sequence, positions 0..n-1, single-threaded, scalar kernels, no paging, written to be read:
// every step is the textbook formula with llama.cpp's roundings (activations converted to the
// weight type's activation format, K/V rounded to fp16). Slow by design; never optimise it.
// Thread-safety: pure function of its arguments.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "engine/model/model.h"

namespace nc::engine {

class LoraAdapter;

// Logits for every position: [tokens.size()][n_vocab]. With `adapter` (lora.h), each adapted
// matrix's output gains scale · B(A x) in f64, after the base product.
Result<std::vector<float>> reference_forward(const Model& model, std::span<const int32_t> tokens,
                                             const LoraAdapter* adapter = nullptr);

}  // namespace nc::engine

// The demo tokenizer: a small SentencePiece-style (tokenizer.ggml.model = "llama") vocabulary that
// neocloud builds itself, so `neocloud serve` with no model can make a working demo model without any
// downloaded file. Byte fallback covers every input; ChatML control tokens and a ChatML chat template
// make the chat endpoint work end to end. The model's weights are random: its text is noise.
// Thread-safety: pure function.
#pragma once

#include <cstdint>

#include "engine/gguf/gguf_writer.h"

namespace nc::engine {

// Writes tokenizer.* keys into `w`; returns the vocabulary size.
int64_t add_demo_tokenizer(GgufWriter& w);

}  // namespace nc::engine

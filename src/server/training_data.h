// Training data for fine-tuning (issue 16): a chat dataset in OpenAI's fine-tuning JSONL format (one
// {"messages": [...]} object per line; an assistant message may carry "weight": 0 to be context only)
// turned into the token ids the model trains on and a loss mask that is 1 exactly on the tokens of the
// assistant messages it should learn to write. The ids are the ones serving would see: a turn's prompt
// is the model's chat template rendered up to and including the generation prompt (ChatFormatter, as
// /v1/chat/completions renders it) and tokenized as a prompt; the assistant's text (up to where the
// template ends the turn) follows, tokenized as generated text. Messages are validated exactly as the
// chat API validates them; every error names its line. The trainer (PyTorch) reads the output and never
// tokenizes anything itself.
//
// Thread-safety: pure functions of their arguments (the formatter and vocabulary are read only).
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/tokenizer/vocab.h"
#include "server/chat_prompt.h"

namespace nc::server {

struct TrainingExample {
  std::vector<engine::TokenId> ids;
  std::vector<uint8_t> mask;  // 1: a token the loss is computed on (an assistant's, weight 1)
};

// Whether one JSONL line is a valid example without a model (what a file upload checks): the message
// rules of the chat API, weights, at least one assistant message to learn. InvalidArgument naming the
// field, without the line number.
Status check_training_line(std::string_view line);
// Every line of a fine-tuning file: the first error as "line N: ...", lines longer than max_line_bytes
// refused; at least one example. `examples` gets their count.
Status check_training_file(std::istream& in, size_t max_line_bytes, int64_t* examples);

// One JSONL line as an example. InvalidArgument naming the field (messages[2].role, ...), without the
// line number.
Result<TrainingExample> tokenize_training_line(std::string_view line, const ChatFormatter& chat, const engine::Vocab& vocab);

struct DatasetStats {
  int64_t examples = 0, tokens = 0, trained_tokens = 0;  // trained: mask 1
  int64_t longest = 0;  // tokens of the longest example
};

// Every non-empty line of `in` to one line of `out`: {"ids": [...], "mask": [...]}. The first bad
// line's error, as "line N: ...", and nothing more is written after it (the caller discards `out`).
Status tokenize_dataset(std::istream& in, std::ostream& out, const ChatFormatter& chat, const engine::Vocab& vocab,
                        DatasetStats* stats);

}  // namespace nc::server

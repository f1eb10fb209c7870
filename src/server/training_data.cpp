// Training data (training_data.h): chat JSONL -> token ids and loss masks.
#include "server/training_data.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <string>

#include "core/json_parse.h"
#include "server/openai.h"

namespace nc::server {

using json = nlohmann::json;

namespace {
// A line's messages and the weight of each (OpenAI: assistant messages 0 or 1; default 1).
struct CheckedLine {
  std::vector<ChatMessage> msgs;
  std::vector<int> weight;
};

Result<CheckedLine> check_line(std::string_view line) {
  json j = parse_json_or_discarded(line);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("not a JSON object");
  if (!j.contains("messages")) return invalid_argument("'messages' is required").with_field("messages");
  // Tool definitions would have to be rendered into the prompt as the chat API renders them, which does
  // not take tools yet: refused, never silently dropped.
  if (auto t = j.find("tools"); t != j.end() && !t->is_null() && !(t->is_array() && t->empty()))
    return unimplemented("function calling (tools) is not supported yet").with_field("tools");
  CheckedLine c;
  NC_ASSIGN_OR_RETURN(c.msgs, parse_messages(j));
  c.weight.assign(c.msgs.size(), 1);
  bool any_trained = false;
  const json& raw = j["messages"];
  for (size_t i = 0; i < c.msgs.size(); ++i) {
    const json& m = raw[i];
    if (m.is_object() && m.contains("weight") && !m["weight"].is_null()) {
      if (!m["weight"].is_number_integer() || (m["weight"].get<int64_t>() != 0 && m["weight"].get<int64_t>() != 1))
        return invalid_argument("must be 0 or 1").with_field(fmt::format("messages[{}].weight", i));
      if (c.msgs[i].role != "assistant")
        return invalid_argument("only assistant messages have a weight").with_field(fmt::format("messages[{}].weight", i));
      c.weight[i] = static_cast<int>(m["weight"].get<int64_t>());
    }
    any_trained |= c.msgs[i].role == "assistant" && c.weight[i] == 1;
  }
  if (!any_trained) return invalid_argument("no assistant message to learn (with weight 1)").with_field("messages");
  return c;
}

Status with_line(const Status& st, int64_t n) {
  return Status(st.code(), fmt::format("line {}: {}{}", n, st.field().empty() ? "" : st.field() + ": ", st.message()))
      .with_field(st.field());
}
}  // namespace

Status check_training_line(std::string_view line) { return check_line(line).status(); }

Status check_training_file(std::istream& in, size_t max_line_bytes, int64_t* examples) {
  int64_t n = 0, count = 0;
  std::string line;
  std::streambuf* sb = in.rdbuf();
  while (true) {
    line.clear();
    // getline with a cap: a hostile file of one huge line is refused before it is all in memory.
    bool any = false;
    for (int ch = sb->sbumpc(); ch != std::char_traits<char>::eof(); ch = sb->sbumpc()) {
      const char c = static_cast<char>(ch);
      any = true;
      if (c == '\n') break;
      if (line.size() == max_line_bytes)
        return invalid_argument(fmt::format("line {}: longer than {} bytes", n + 1, max_line_bytes));
      line.push_back(c);
    }
    if (!any) break;
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (Status st = check_training_line(line); !st.is_ok()) return with_line(st, n);
    ++count;
  }
  if (count == 0) return invalid_argument("the file has no examples (one JSON object with 'messages' per line)");
  if (examples) *examples = count;
  return Status::ok();
}

Result<TrainingExample> tokenize_training_line(std::string_view line, const ChatFormatter& chat, const engine::Vocab& vocab) {
  NC_ASSIGN_OR_RETURN(CheckedLine checked, check_line(line));
  const std::vector<ChatMessage>& msgs = checked.msgs;
  const std::vector<int>& weight = checked.weight;

  // Render the conversation turn by turn: before each assistant message, the prompt as serving renders
  // it (generation prompt included); then the text up to the end of that message's turn.
  TrainingExample ex;
  std::string done;  // the text already turned into tokens
  const json no_kwargs = json::object();
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "assistant") continue;
    const std::vector<ChatMessage> before(msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(i));
    const std::vector<ChatMessage> through(msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    NC_ASSIGN_OR_RETURN(std::string prompt, chat.render(before, true, no_kwargs));
    NC_ASSIGN_OR_RETURN(std::string turn, chat.render(through, false, no_kwargs));
    if (prompt.compare(0, done.size(), done) != 0 || turn.compare(0, prompt.size(), prompt) != 0)
      return failed_precondition("the model's chat template does not render this conversation turn by turn (an "
                                 "earlier turn changes when a later one is added), so its assistant tokens cannot "
                                 "be located")
          .with_field("messages");
    // The prompt part as serving tokenizes a prompt (the first with BOS), the turn as generated text.
    const std::vector<engine::TokenId> p = vocab.tokenize(std::string_view(prompt).substr(done.size()), done.empty(), true);
    const std::vector<engine::TokenId> a = vocab.tokenize(std::string_view(turn).substr(prompt.size()), false, true);
    ex.ids.insert(ex.ids.end(), p.begin(), p.end());
    ex.mask.insert(ex.mask.end(), p.size(), 0);
    ex.ids.insert(ex.ids.end(), a.begin(), a.end());
    ex.mask.insert(ex.mask.end(), a.size(), static_cast<uint8_t>(weight[i]));
    done = turn;
  }
  return ex;
}

Status tokenize_dataset(std::istream& in, std::ostream& out, const ChatFormatter& chat, const engine::Vocab& vocab,
                        DatasetStats* stats) {
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto ex = tokenize_training_line(line, chat, vocab);
    if (!ex.is_ok()) return with_line(ex.status(), n);
    json o = {{"ids", ex->ids}, {"mask", ex->mask}};
    out << o.dump() << '\n';
    if (stats) {
      ++stats->examples;
      stats->tokens += static_cast<int64_t>(ex->ids.size());
      for (uint8_t m : ex->mask) stats->trained_tokens += m;
      stats->longest = std::max<int64_t>(stats->longest, static_cast<int64_t>(ex->ids.size()));
    }
  }
  if (stats && stats->examples == 0) return invalid_argument("the dataset has no examples");
  return Status::ok();
}

}  // namespace nc::server

// Training data (server/training_data.h): the ids are what serving tokenizes for each turn's prompt,
// the loss mask covers exactly the assistant text to learn, and every bad line is named.
#include <gtest/gtest.h>

#include <sstream>

#include "server/test_vocab.h"
#include "server/training_data.h"

namespace nc::server {
namespace {

ChatFormatter llama31() { return ChatFormatter::create(vocab(), llama31_template()); }

TEST(TrainingData, PromptTokensAreServingsAndTheMaskIsTheAssistantText) {
  const ChatFormatter chat = llama31();
  ASSERT_EQ(chat.kind(), "jinja");
  const std::string line =
      R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},)"
      R"( {"role": "assistant", "content": "Paris."}]})";
  auto ex = tokenize_training_line(line, chat, vocab());
  ASSERT_TRUE(ex.is_ok()) << ex.status().to_string();
  // What /v1/chat/completions would tokenize for the same messages.
  auto prompt = chat.render({{"system", "Be brief."}, {"user", "Capital of France?"}}, true, nlohmann::json::object());
  ASSERT_TRUE(prompt.is_ok());
  const auto served = vocab().tokenize(*prompt, true, true);
  ASSERT_GT(ex->ids.size(), served.size());
  EXPECT_TRUE(std::equal(served.begin(), served.end(), ex->ids.begin()));
  for (size_t i = 0; i < ex->ids.size(); ++i) EXPECT_EQ(ex->mask[i], i >= served.size() ? 1 : 0) << i;
  const std::vector<engine::TokenId> learned(ex->ids.begin() + static_cast<std::ptrdiff_t>(served.size()), ex->ids.end());
  EXPECT_EQ(vocab().detokenize(learned, false, true), "Paris.<|eot_id|>");  // the text and the end of the turn
}

TEST(TrainingData, MultiTurnAndWeightZeroTurns) {
  const ChatFormatter chat = llama31();
  const std::string line =
      R"({"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "3", "weight": 0},)"
      R"( {"role": "user", "content": "Again?"}, {"role": "assistant", "content": "2"}]})";
  auto ex = tokenize_training_line(line, chat, vocab());
  ASSERT_TRUE(ex.is_ok()) << ex.status().to_string();
  std::vector<engine::TokenId> learned;
  for (size_t i = 0; i < ex->ids.size(); ++i)
    if (ex->mask[i]) learned.push_back(ex->ids[i]);
  EXPECT_EQ(vocab().detokenize(learned, false, true), "2<|eot_id|>");  // only the weight-1 turn
  // The whole sequence is the full conversation's text (after the BOS the tokenizer adds).
  auto full = chat.render({{"user", "1+1?"}, {"assistant", "3"}, {"user", "Again?"}, {"assistant", "2"}}, false,
                          nlohmann::json::object());
  ASSERT_TRUE(full.is_ok());
  EXPECT_EQ(vocab().detokenize(ex->ids, false, true), "<|begin_of_text|>" + *full);
}

TEST(TrainingData, EveryBadLineIsNamed) {
  const ChatFormatter chat = llama31();
  auto error_of = [&](const std::string& data) {
    std::istringstream in(data);
    std::ostringstream out;
    DatasetStats stats;
    return tokenize_dataset(in, out, chat, vocab(), &stats).to_string();
  };
  const std::string good = R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})";
  EXPECT_NE(error_of(good + "\n{not json\n").find("line 2: not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(good + "\n\n" + R"({"messages": [{"role": "wizard", "content": "a"}]})").find("line 3: messages[0].role"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "a"}]})").find("line 1: messages: no assistant message"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 2}]})")
                .find("line 1: messages[1].weight: must be 0 or 1"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "x"})").find("line 1: messages"), std::string::npos);
  EXPECT_NE(error_of("\n\n").find("no examples"), std::string::npos);
  const std::string with_tools = R"({"tools": [{"type": "function", "function": {"name": "f"}}], )"
                                 R"("messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})";
  EXPECT_NE(error_of(with_tools).find("line 1: tools: function calling"), std::string::npos);
  // The check without a model (what an upload runs) names lines the same way and counts examples.
  {
    std::istringstream bad(good + "\n" + R"({"messages": [{"role": "wizard", "content": "a"}]})" + "\n");
    int64_t n = 0;
    EXPECT_NE(check_training_file(bad, 1 << 20, &n).to_string().find("line 2: messages[0].role"), std::string::npos);
    std::istringstream ok(good + "\n\n" + good + "\n");
    ASSERT_TRUE(check_training_file(ok, 1 << 20, &n).is_ok());
    EXPECT_EQ(n, 2);
    std::istringstream huge(std::string(5000, ' ') + good + "\n");
    EXPECT_NE(check_training_file(huge, 4096, &n).to_string().find("line 1: longer than 4096 bytes"), std::string::npos);
  }
  // A good dataset: one output line per example, with counts.
  std::istringstream in(good + "\n" + good + "\n");
  std::ostringstream out;
  DatasetStats stats;
  ASSERT_TRUE(tokenize_dataset(in, out, chat, vocab(), &stats).is_ok());
  EXPECT_EQ(stats.examples, 2);
  EXPECT_GT(stats.tokens, stats.trained_tokens);
  EXPECT_GT(stats.trained_tokens, 0);
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_EQ(text.find("{\"ids\":["), 0u);
}

}  // namespace
}  // namespace nc::server

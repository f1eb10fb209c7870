#include "engine/chat/chat_template.h"

#include <gtest/gtest.h>

TEST(ChatTemplate, Placeholder) { EXPECT_TRUE(nc::chat::ChatTemplate::parse("x").is_ok()); }

// Unit tests for nc::chat::ChatTemplate. Expected strings are what Python Jinja2 (HF configuration:
// trim_blocks, lstrip_blocks, ImmutableSandboxedEnvironment) renders for the same input; the
// exhaustive comparison against Jinja2 itself is tests/chat/jinja_diff.py.
#include "engine/chat/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace {

using nc::StatusCode;
using nc::chat::ChatTemplate;
using nc::chat::RenderOptions;
using ojson = nlohmann::ordered_json;

// Renders `source` with `context`; returns the output or "ERROR <code>: <message>".
std::string render(const std::string& source, const ojson& context = ojson::object(), RenderOptions options = {}) {
  auto t = ChatTemplate::parse(source);
  if (!t.is_ok()) return "ERROR " + t.status().to_string();
  auto r = t->render(context, options);
  if (!r.is_ok()) return "ERROR " + r.status().to_string();
  return *r;
}

nc::Status render_status(const std::string& source, const ojson& context = ojson::object(), RenderOptions options = {}) {
  auto t = ChatTemplate::parse(source);
  if (!t.is_ok()) return t.status();
  auto r = t->render(context, options);
  return r.is_ok() ? nc::Status::ok() : r.status();
}

TEST(ChatTemplateWhitespace, TrimBlocksDropsTheNewlineAfterATag) {
  EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\ny"), "x\ny");
  EXPECT_EQ(render("{# comment #}\nx"), "x");
  // Not after a {{ }} expression.
  EXPECT_EQ(render("{{ 1 }}\nx"), "1\nx");
}

TEST(ChatTemplateWhitespace, LstripBlocksStripsIndentationBeforeATag) {
  EXPECT_EQ(render("a\n  {% if true %}\n  x\n  {% endif %}\n  b\n"), "a\n  x\n  b");
  // Only whitespace between the line start and the tag is stripped.
  EXPECT_EQ(render("a {% if true %}x{% endif %}"), "a x");
  // `+` keeps it.
  EXPECT_EQ(render("a  {%+ if true %}x{% endif %}\n"), "a  x");
}

TEST(ChatTemplateWhitespace, MinusStripsAllWhitespaceOnThatSide) {
  EXPECT_EQ(render("a  \n\n  {{- 'b' -}}  \n\n  c"), "abc");
  EXPECT_EQ(render("  {%- if true -%}  \n\n  a  \n\n  {%- endif -%}  \n b"), "ab");
  EXPECT_EQ(render("a\n  {#- c #}\n  x"), "a  x");
}

TEST(ChatTemplateWhitespace, TrailingNewlineAndLineEndings) {
  EXPECT_EQ(render("x\n"), "x");
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render("x\r\ny\r\n"), "x\ny");
}

TEST(ChatTemplateWhitespace, RawBlocks) {
  EXPECT_EQ(render("{% raw %}\n{{ x }}{% endraw %}\nq"), "\n{{ x }}q");
  EXPECT_EQ(render("  {% raw -%}  {{ y }}  {%- endraw %}"), "{{ y }}");
}

TEST(ChatTemplateLoops, LoopVariables) {
  EXPECT_EQ(render("{% for a in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
  EXPECT_EQ(render("{% for a in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('x','y') }};{% endfor %}"),
            "-2-x;1-3-y;2--x;");
}

TEST(ChatTemplateLoops, FilterElseUnpackingBreakContinue) {
  EXPECT_EQ(render("{% for a in [1,2,3] if a > 1 %}{{ loop.index }}/{{ loop.length }};{% endfor %}"), "1/2;2/2;");
  EXPECT_EQ(render("{% for a in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}"), "a=1,b=2,");
  EXPECT_EQ(render("{% for x in range(10) %}{% if x is odd %}{% continue %}{% endif %}{% if x > 6 %}{% break %}"
                   "{% endif %}{{ x }}{% endfor %}"),
            "0246");
}

TEST(ChatTemplateLoops, ScopingFollowsJinja) {
  // Assignments inside a loop body do not leak; each iteration starts from the outer value.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}"), "12121");
  // `if` does not create a scope.
  EXPECT_EQ(render("{% if true %}{% set y = 1 %}{% endif %}{{ y }}"), "1");
  // Namespaces carry state out of loops.
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
            "6");
}

TEST(ChatTemplateMacros, DefaultsKwargsVarargsCaller) {
  EXPECT_EQ(render("{% macro m(a, b=a+1) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}"
                   "{{ m(1) }}|{{ m(1,2,3) }}|{{ m(1, c=4) }}"),
            "12(){}|12(3,){}|12(){'c': 4}");
  EXPECT_EQ(render("{% macro m(a) %}[{{ a }}]{% endmacro %}{{ m() }}{{ m(a='k') }}"), "[][k]");
  EXPECT_EQ(render("{% macro m() %}{{ caller(5) }}{% endmacro %}{% call(x) m() %}got {{ x }}{% endcall %}"), "got 5");
  const nc::Status s = render_status("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("takes not more than 1 argument"), std::string::npos) << s.message();
}

TEST(ChatTemplateMacros, RecursiveMacroHitsTheDepthLimit) {
  const nc::Status s = render_status("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.to_string();
  // A bounded recursion (JSON-schema style) is fine.
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}"), "54321");
}

TEST(ChatTemplateStatements, SetBlockFilterBlockWithGeneration) {
  EXPECT_EQ(render("{% set x %} a {% endset %}[{{ x }}]{% set y | upper %}b{% endset %}{{ y }}"), "[ a ]B");
  EXPECT_EQ(render("{% filter trim | upper %}  xy  {% endfilter %}"), "XY");
  EXPECT_EQ(render("{% with x = 1, y = 2 %}{{ x + y }}{% endwith %}[{{ x }}]"), "3[]");
  EXPECT_EQ(render("{% generation %}assistant text{% endgeneration %}"), "assistant text");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
}

TEST(ChatTemplateValues, PythonStringConversions) {
  EXPECT_EQ(render("{{ none }} {{ true }} {{ 1.0 }} {{ 0.5 }} {{ 1e-5 }} {{ 1e16 }} {{ 10/4 }} {{ 7//2 }} {{ -7//2 }} "
                   "{{ -7 % 3 }} {{ 2**10 }}"),
            "None True 1.0 0.5 1e-05 1e+16 2.5 3 -4 2 1024");
  EXPECT_EQ(render("{{ [1,'a',none,true,1.5,{'k':'v'},(1,),(1,2)] }}"),
            "[1, 'a', None, True, 1.5, {'k': 'v'}, (1,), (1, 2)]");
  EXPECT_EQ(render("{{ [\"it's\", 'a\"b', 'a\\nb'] }}"), "[\"it's\", 'a\"b', 'a\\nb']");
  EXPECT_EQ(render("{% set ns = namespace(a=1) %}{{ ns }}"), "<Namespace {'a': 1}>");
}

TEST(ChatTemplateValues, UnicodeCountsCodePoints) {
  EXPECT_EQ(render("{{ 'héllo'|length }}{{ 'héllo'[1] }}{{ 'héllo'[-3:] }}{{ '日本語'[::-1] }}"), "5éllo語本日");
  EXPECT_EQ(render("{{ 'é'.upper() }}{{ 'straße'.upper() }}"), "ÉSTRASSE");
}

TEST(ChatTemplateValues, Slicing) {
  EXPECT_EQ(render("{{ 'abc'[1:] }}{{ 'abc'[::-1] }}{{ [1,2,3][-2:] }}{{ [1,2,3,4,5][::2] }}{{ [1,2,3][5:1:-1] }}"),
            "bccba[2, 3][1, 3, 5][3]");
}

TEST(ChatTemplateFilters, Common) {
  EXPECT_EQ(render("{{ '  x  '|trim }}|{{ 'ab'|upper }}|{{ 'hello world'|title }}|{{ 'hELLO'|capitalize }}"),
            "x|AB|Hello World|Hello");
  EXPECT_EQ(render("{{ [3,1,2]|sort }}{{ [3,1,2]|sort(reverse=true) }}{{ ['b','A','a']|unique|list }}"),
            "[1, 2, 3][3, 2, 1]['b', 'A']");
  EXPECT_EQ(render("{{ [{'a':2},{'a':1}]|sort(attribute='a')|map(attribute='a')|join(',') }}"), "1,2");
  EXPECT_EQ(render("{{ [1,2,3]|select('odd')|list }}{{ [1,2,3]|reject('odd')|list }}{{ ['a','B']|map('upper')|list }}"),
            "[1, 3][2]['A', 'B']");
  EXPECT_EQ(render("{{ none|default('d') }}{{ u|default('d') }}{{ ''|default('d', true) }}"), "Nonedd");
  EXPECT_EQ(render("{{ 3.7|int }}{{ '42'|int }}{{ 'x'|int }}{{ 2.5|round }}{{ 2.567|round(2) }}{{ -3|abs }}"),
            "34202.02.573");
  EXPECT_EQ(render("{{ {'b':1,'a':2}|dictsort }}{{ {'a':1}|items|list }}"), "[('a', 2), ('b', 1)][('a', 1)]");
  EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}"), "a\n  b\n\n  c|  a\n  b");
  EXPECT_EQ(render("{{ [1,2]|first }}{{ [1,2]|last }}{{ [1,2,3]|length }}{{ [1,2]|sum }}{{ [1,5,2]|max }}"), "12335");
  EXPECT_EQ(render("{{ '<a&\"\\''|e }}{{ '<'|safe + '<' }}"), "&lt;a&amp;&#34;&#39;<&lt;");
}

TEST(ChatTemplateFilters, ToJsonMatchesHfJsonDumps) {
  const ojson ctx = {{"tool", {{"name", "f"}, {"z", 1}, {"a", {1.5, nullptr, true, "é"}}}}};
  // Python separators (', ' and ': '), key order as given, ensure_ascii=False.
  EXPECT_EQ(render("{{ tool|tojson }}", ctx), "{\"name\": \"f\", \"z\": 1, \"a\": [1.5, null, true, \"é\"]}");
  EXPECT_EQ(render("{{ tool|tojson(indent=2) }}", ctx),
            "{\n  \"name\": \"f\",\n  \"z\": 1,\n  \"a\": [\n    1.5,\n    null,\n    true,\n    \"é\"\n  ]\n}");
  EXPECT_EQ(render("{{ 'é'|tojson(ensure_ascii=true) }}{{ {'b':1,'a':2}|tojson(sort_keys=true) }}"),
            "\"\\u00e9\"{\"a\": 2, \"b\": 1}");
  EXPECT_EQ(render_status("{{ u|tojson }}").code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTests, JinjaTests) {
  EXPECT_EQ(render("{{ u is defined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ [1] is iterable }}"
                   "{{ 'a' is sequence }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}"),
            "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 1 is eq 1 }}{{ 'ab' is lower }}"
                   "{{ 2 is gt 1 }}{{ 1 is in [1] }}{{ x is not none }}",
                   {{"x", 1}}),
            "TrueTrueTrueTrueTrueTrueTrueTrue");
}

TEST(ChatTemplateMethods, PythonStrDictList) {
  EXPECT_EQ(render("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|"
                   "{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}"),
            "a b|a|['a', 'b', '', 'c']|['a', 'b']|['a', 'b,c']|['a,b', 'c']");
  EXPECT_EQ(render("{{ 'abc'.startswith(('x','a')) }}{{ 'abc'.endswith('c') }}{{ 'a{}b{x}'.format(1, x=2) }}"
                   "{{ 'a-b'.replace('-', '+') }}{{ 'abcabc'.find('c') }}{{ 'abc'.title() }}"),
            "TrueTruea1b2a+b2Abc");
  EXPECT_EQ(render("{{ {'a':1}.get('a') }}{{ {'a':1}.get('b') }}{{ {'a':1}.get('b', 2) }}{{ {'a':1}.keys()|list }}"
                   "{{ [1,2,3].index(2) }}"),
            "1None2['a']1");
  EXPECT_EQ(render("{{ '%s-%d' % ('a', 3) }}{{ '{:>4}|{:.2f}'.format('x', 3.14159) }}"), "a-3   x|3.14");
}

TEST(ChatTemplateMethods, MutationIsRefusedLikeTheImmutableSandbox) {
  const nc::Status s = render_status("{% set l = [] %}{{ l.append(1) }}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("access to attribute 'append' of 'list' object is unsafe"), std::string::npos);
}

TEST(ChatTemplateErrors, RaiseExceptionGivesTheMessage) {
  const nc::Status s = render_status("{% if messages|length == 0 %}{{ raise_exception('No messages!') }}{% endif %}",
                                     {{"messages", ojson::array()}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "No messages!");
}

TEST(ChatTemplateErrors, UndefinedBehavesLikeJinja) {
  EXPECT_EQ(render("[{{ missing }}]{{ missing|length }}{% for x in missing %}x{% endfor %}{{ 'y' if missing else 'n' }}"),
            "[]0n");
  EXPECT_EQ(render("{{ d.nokey }}|{{ d['nokey'] }}|{{ none.x }}", {{"d", ojson::object()}}), "||");
  const nc::Status s = render_status("{{ missing.attr }}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("UndefinedError: 'missing' is undefined"), std::string::npos) << s.message();
  EXPECT_EQ(render_status("{{ missing + 1 }}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{{ missing() }}").code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateErrors, RuntimeTypeErrorsAreStatuses) {
  for (const char* src : {"{{ 'a' + 1 }}", "{{ 1 < 'a' }}", "{{ 5 // 0 }}", "{% for x in 5 %}{% endfor %}",
                          "{{ 'x'() }}", "{{ {[1]: 2} }}", "{{ 9223372036854775807 + 1 }}", "{{ range(100001)|length }}"}) {
    const nc::Status s = render_status(src);
    EXPECT_FALSE(s.is_ok()) << src;
    EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kOutOfRange) << s.to_string();
  }
}

TEST(ChatTemplateErrors, SyntaxErrorsSayLineAndColumn) {
  nc::Status s = render_status("line one\n{% if %}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("line 2, column 7: ", 0), 0u) << s.message();
  s = render_status("{{ a b }}");
  EXPECT_EQ(s.message().rfind("line 1, column 6: ", 0), 0u) << s.message();
  s = render_status("{% for x in y %}never closed");
  EXPECT_NE(s.message().find("unexpected end of template"), std::string::npos) << s.message();
  s = render_status("{% endif %}");
  EXPECT_NE(s.message().find("unknown tag 'endif'"), std::string::npos) << s.message();
  s = render_status("{% do x %}");
  EXPECT_NE(s.message().find("unknown tag 'do'"), std::string::npos) << s.message();
  EXPECT_EQ(render_status("{{ 'abc }}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{{ (1 }}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status("{% break %}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(render_status(std::string("\xff\xfe")).code(), StatusCode::kInvalidArgument);
  // A slice in a subscript tuple (Jinja2: Python's SyntaxError at load); the fuzzer found it crashing.
  for (const char* src : {"{{ x[:2, 3] }}", "{{ x[1:2, 3] }}", "{{ x[0, ::2] }}", "{{ x[1:, 0:1] }}"}) {
    s = render_status(src);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << src;
    EXPECT_NE(s.message().find("SyntaxError: invalid syntax (a slice inside a subscript tuple)"), std::string::npos) << s.message();
  }
  EXPECT_EQ(render("{% set x = {(1, 2): 'pair'} %}{{ x[1, 2] }}{{ [1, 2, 3][1:] }}"), "pair[2, 3]");
}

TEST(ChatTemplateErrors, UnknownFilterIsACompileErrorOutsideIfAndARuntimeErrorInside) {
  EXPECT_EQ(render_status("{{ x|from_json }}").code(), StatusCode::kInvalidArgument);
  // Jinja2 defers the check inside an if: fine when the branch does not run.
  EXPECT_EQ(render("{% if false %}{{ x|from_json }}{% endif %}ok"), "ok");
  const nc::Status s = render_status("{% if true %}{{ x|from_json }}{% endif %}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("No filter named 'from_json'"), std::string::npos) << s.message();
}

TEST(ChatTemplateErrors, UnsupportedConstructsAreNamed) {
  nc::Status s = render_status("{% include 'other.jinja' %}");
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), "unsupported construct: {% include %}");
  s = render_status("{% extends 'base' %}");
  EXPECT_EQ(s.message(), "unsupported construct: {% extends %}");
  s = render_status("{{ {'a': 1}|xmlattr }}");
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("unsupported construct: filter 'xmlattr'"), std::string::npos) << s.message();
  s = render_status("{% for x in y recursive %}{% endfor %}");
  EXPECT_EQ(s.message(), "unsupported construct: recursive for loop");
}

TEST(ChatTemplateLimits, DeepNestingHugeLoopsAndOutputAreBounded) {
  EXPECT_EQ(render_status("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").code(),
            StatusCode::kResourceExhausted);
  std::string nested;
  for (int i = 0; i < 1000; ++i) nested += "{% if true %}";
  EXPECT_EQ(render_status(nested).code(), StatusCode::kResourceExhausted);
  // 10^15 iterations: stopped by the step budget, quickly.
  EXPECT_EQ(render_status("{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
                          "{% endfor %}{% endfor %}{% endfor %}")
                .code(),
            StatusCode::kResourceExhausted);
  // Output beyond the limit.
  RenderOptions small;
  small.max_output_bytes = 1000;
  EXPECT_EQ(render_status("{% for i in range(100) %}0123456789abcdef{% endfor %}", ojson::object(), small).code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(render_status("{{ 'x' * 100000000 }}").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(render_status("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                          "{% endfor %}")
                .code(),
            StatusCode::kResourceExhausted);
  // A self-referencing namespace neither loops nor leaks.
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}"), "True");
}

// Regression: `1 + 1 + ... + 1` is parsed in a loop but builds a tree as deep as it is long, which
// evaluation (and destruction) recursed on until the stack overflowed.
TEST(ChatTemplateLimits, LongOperatorChainIsRefusedNotAStackOverflow) {
  std::string chain = "{{ 1";
  for (int i = 0; i < 200000; ++i) chain += "+1";
  EXPECT_EQ(render_status(chain + " }}").code(), StatusCode::kResourceExhausted);
  std::string filters = "{{ x";
  for (int i = 0; i < 100000; ++i) filters += "|trim";
  EXPECT_EQ(render_status(filters + " }}").code(), StatusCode::kResourceExhausted);
  // Long but reasonable chains are fine.
  std::string ok = "{{ 'a'";
  for (int i = 0; i < 300; ++i) ok += " + 'a'";
  EXPECT_EQ(render(ok + " }}"), std::string(301, 'a'));
}

// Regression: a namespace attribute rebuilt as [previous] in a loop nested lists 500,000 deep; ==,
// repr and the destructor recursed on it.
TEST(ChatTemplateLimits, DeeplyNestedValuesAreRefused) {
  EXPECT_EQ(render_status("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% for j in range(500) %}"
                          "{% set ns.l = [ns.l] %}{% endfor %}{% endfor %}{{ ns.l == ns.l }}")
                .code(),
            StatusCode::kResourceExhausted);
}

// Regression: one step per call let a loop rescan a 16 MB string 100,000 times (minutes of CPU).
// Operations are charged by the size of what they scan.
TEST(ChatTemplateLimits, RepeatedScansOfHugeValuesAreBounded) {
  EXPECT_EQ(render_status("{% set s = 'x' * 16000000 %}{% for i in range(100000) %}{{ s.find('y') }}{% endfor %}")
                .code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(render_status("{% set l = range(100000)|list %}{{ (l + l)|unique|list|length }}").code(),
            StatusCode::kResourceExhausted);
}

// Macro recursion multiplies statement and expression nesting; the total is bounded too.
TEST(ChatTemplateLimits, RecursionAcrossMacrosIsBounded) {
  std::string t = "{% macro f(n) %}";
  for (int i = 0; i < 15; ++i) t += "{% if true %}";
  t += "{{ " + std::string(25, '[') + "f(n + 1)" + std::string(25, ']') + " }}";
  for (int i = 0; i < 15; ++i) t += "{% endif %}";
  t += "{% endmacro %}{{ f(0) }}";
  EXPECT_EQ(render_status(t).code(), StatusCode::kResourceExhausted);
}

TEST(ChatTemplateContext, KeyOrderStrftimeAndThreads) {
  ojson ctx = ojson::parse(R"({"tools": [{"zeta": 1, "alpha": 2}]})");
  EXPECT_EQ(render("{{ tools[0]|tojson }}", ctx), "{\"zeta\": 1, \"alpha\": 2}");
  RenderOptions at;
  std::tm tm{};
  tm.tm_year = 2025 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 15;
  tm.tm_hour = 10;
  tm.tm_min = 30;
  tm.tm_wday = 3;
  at.now = tm;
  EXPECT_EQ(render("{{ strftime_now('%Y-%m-%d %H:%M %d %b %Y') }}", ojson::object(), at), "2025-01-15 10:30 15 Jan 2025");
  // The plain-json overload works too (keys sorted by that type).
  auto t = ChatTemplate::parse("{{ a }}{{ b }}");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(*t->render(nlohmann::json{{"a", 1}, {"b", "x"}}), "1x");
  EXPECT_EQ(t->render(nlohmann::json::array()).status().code(), StatusCode::kInvalidArgument);

  // One parsed template rendered from several threads at once.
  auto chatml = ChatTemplate::parse(
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}");
  ASSERT_TRUE(chatml.is_ok());
  std::vector<std::thread> threads;
  std::vector<std::string> outs(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      ojson c = {{"messages", {{{"role", "user"}, {"content", "hi " + std::to_string(i)}}}}, {"add_generation_prompt", true}};
      for (int k = 0; k < 200; ++k) outs[i] = *chatml->render(c);
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(outs[i], "<|im_start|>user\nhi " + std::to_string(i) + "<|im_end|>\n<|im_start|>assistant\n");
  }
}

}  // namespace

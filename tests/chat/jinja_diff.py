#!/usr/bin/env python3
"""Differential test: nc::chat::ChatTemplate against Python Jinja2 configured as HF transformers does.

Every *.jinja template under --templates (llama.cpp's models/templates) is rendered with a set of
conversations by Jinja2 (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[loopcontrols, AssistantTracker]), raise_exception, strftime_now, HF's tojson) and by
nc_chat_render --batch. A case passes when both outputs are byte-identical, or both raised. A case
where our engine reports "unsupported construct" is listed and fails the run, as does any mismatch.
A suite of small snippets checks operator/filter/method semantics the same way, and so do random
programs from fixed seeds: whitespace-control mixes (trim_blocks/lstrip_blocks, -/+ markers, raw,
comments) and expressions over operators, filters, tests and str/dict/list methods.

strftime_now() is pinned to NOW on both sides (our side: the "now" field of each case).

  python3 jinja_diff.py --render build/bin/nc_chat_render --templates .cache/ref/llama.cpp/models/templates
  (-v prints a diff for each mismatch; --only NAME restricts to templates whose name contains NAME;
   --random N --seed S sets the random programs; --show-errors lists the cases where both raised)
"""
import argparse
import copy
import datetime
import difflib
import json
import os
import random
import re
import subprocess
import sys
import warnings

try:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja_diff: python3-jinja2 is required (tools/install-deps.sh installs it)", file=sys.stderr)
    sys.exit(1)

NOW = datetime.datetime(2025, 1, 15, 10, 30, 0)
NOW_STR = NOW.strftime("%Y-%m-%dT%H:%M:%S")
SKIP = 77  # ctest SKIP_RETURN_CODE


class AssistantTracker(jinja2.ext.Extension):
    """transformers.utils.chat_template_utils.AssistantTracker, inactive: {% generation %} renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


TOOLS = [
    {"type": "function",
     "function": {"name": "get_weather", "description": "Get the current weather for a city.",
                  "parameters": {"type": "object",
                                 "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"},
                                                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                                 "required": ["city"]}}},
    {"type": "function",
     "function": {"name": "search", "description": "Search the web.",
                  "parameters": {"type": "object",
                                 "properties": {"query": {"type": "string"},
                                                "max_results": {"type": "integer", "default": 5}},
                                 "required": ["query"]}}},
]

SYSTEM = "You are a helpful assistant."
WEATHER_CALL = {"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}


def tool_turns(arguments, content):
    call = copy.deepcopy(WEATHER_CALL)
    call["function"]["arguments"] = arguments
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": content, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
         "content": "{\"temperature\": 18, \"condition\": \"sunny\"}"},
    ]


CONVERSATIONS = {
    "system_user": ({"messages": [{"role": "system", "content": SYSTEM},
                                  {"role": "user", "content": "Hello! Who are you?"}]}, True),
    "multi_turn": ({"messages": [{"role": "user", "content": "Hi there"},
                                 {"role": "assistant", "content": "Hello! How can I help you today?"},
                                 {"role": "user", "content": "Tell me a joke."}]}, True),
    "tool_call_dict": ({"messages": tool_turns({"city": "Paris", "unit": "celsius"}, None), "tools": TOOLS}, True),
    "tool_call_dict_empty_content": ({"messages": tool_turns({"city": "Paris"}, ""), "tools": TOOLS}, True),
    "tool_call_string_args": ({"messages": tool_turns("{\"city\": \"Paris\"}", None), "tools": TOOLS}, True),
    "tools_no_call": ({"messages": [{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": "Search for llama recipes."}], "tools": TOOLS}, True),
    "content_parts": ({"messages": [{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                                    {"role": "user", "content": [{"type": "text", "text": "Describe this"},
                                                                 {"type": "text", "text": " in two words."}]}]}, True),
    "unicode_quotes": ({"messages": [
        {"role": "system", "content": "Réponds en français. 日本語もOK 🚀"},
        {"role": "user", "content": "He said \"hi\" and 'bye'\nsecond line\twith tab \\ backslash </s> {{ not jinja }}"},
        {"role": "assistant", "content": "D'accord 😀 — « guillemets »\n\n  indented"},
        {"role": "user", "content": "emoji 👩‍👩‍👧 and \u00a0nbsp\u3000ideographic space"}]}, True),
    "no_generation_prompt": ({"messages": [{"role": "user", "content": "What is 2+2?"},
                                           {"role": "assistant", "content": "2+2 = 4."}]}, False),
    # As llama.cpp renders: no `tools`/`documents` keys at all (HF passes tools=None).
    "system_user_no_tools_key": ({"messages": [{"role": "system", "content": SYSTEM},
                                               {"role": "user", "content": "Hello! Who are you?"}],
                                  "omit": ["tools", "documents"]}, True),
    "multi_turn_no_tools_key": ({"messages": [{"role": "user", "content": "Hi there"},
                                              {"role": "assistant", "content": "Hello! How can I help you today?"},
                                              {"role": "user", "content": "Tell me a joke."}],
                                 "omit": ["tools", "documents"]}, False),
    # Templates that take other tool shapes: flat function schemas (command-r), a `functions` JSON
    # string and `datetime` (firefunction-v2).
    "flat_tools_kwargs": ({"messages": [{"role": "system", "content": SYSTEM},
                                        {"role": "user", "content": "What's the weather in Paris?"}],
                           "tools": [t["function"] for t in TOOLS],
                           "functions": json.dumps([t["function"] for t in TOOLS], indent=2),
                           "datetime": "15 Jan 2025"}, True),
    "multi_tool_calls": ({"messages": [
        {"role": "user", "content": "Weather in Paris and news about llamas?"},
        {"role": "assistant", "content": "Let me check both.", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}},
            {"id": "call_2", "type": "function",
             "function": {"name": "search", "arguments": {"query": "llamas", "max_results": 3,
                                                          "filters": {"year": 2024, "tags": ["news", "animals"]},
                                                          "exact": True, "score": 0.5, "cursor": None}}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "call_2", "name": "search", "content": "[\"Llamas win award\"]"},
        {"role": "assistant", "content": "It is 18C and sunny in Paris. Llamas won an award."},
        {"role": "user", "content": "Thanks!"}], "tools": TOOLS}, True),
    "thinking_in_content": ({"messages": [
        {"role": "user", "content": "2+3?"},
        {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n5"},
        {"role": "user", "content": "times 2?"}], "enable_thinking": False}, True),
    "system_only": ({"messages": [{"role": "system", "content": "Only a system prompt."}]}, True),
    "enable_thinking": ({"messages": [{"role": "user", "content": "Think about it."}], "enable_thinking": True,
                         "reasoning_effort": "high", "thinking": True}, True),
    "reasoning": ({"messages": [{"role": "user", "content": "Is 17 prime?"},
                                {"role": "assistant", "content": "Yes, 17 is prime.",
                                 "reasoning_content": "17 has no divisors but 1 and itself."},
                                {"role": "user", "content": "And 21?"}]}, True),
}


def conversation_context(conv, add_generation_prompt):
    ctx = {"messages": conv["messages"], "tools": conv.get("tools"), "documents": None,
           "add_generation_prompt": add_generation_prompt, "bos_token": "<s>", "eos_token": "</s>"}
    for k, v in conv.items():  # extra chat-template kwargs (enable_thinking, ...)
        if k not in ("messages", "tools", "omit"):
            ctx[k] = v
    for k in conv.get("omit", []):
        del ctx[k]
    return ctx


# Small templates exercising semantics the chat templates rely on (and Python's corner cases).
SNIPPETS = [
    "{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}",
    "{% for i in [1,2] %}{% if i == 2 %}{{ x }}{% endif %}{% set x = i %}{% endfor %}[{{ x }}]",
    "{% set y = 3 %}{% macro m() %}{{ y }}{% endmacro %}{% set y = 5 %}{{ m() }}",
    "{{ 'a' in u }}|{{ u | length }}|{{ u | last }}|{{ u == u }}|{{ u == none }}|{{ none.x }}|{{ 'a'.x }}",
    "{{ u ~ 'a' }}|{{ [1,2]['x'] }}|{{ {'a':1}[1] }}|{{ [1][5] }}",
    "{{ 'x' | tojson }}{{ {'a': [1, 2.0, none, true]} | tojson }}{{ {'a': [1]} | tojson(indent=2) }}",
    "{{ [1,'a',none,true,1.5, {'k': 'v'}, (1,), (1,2)] }}",
    "{{ 1e-5 }} {{ 1e16 }} {{ 1e15 }} {{ 0.1 + 0.2 }} {{ 10/4 }} {{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 2**10 }} {{ 2**-1 }} {{ 1.5 % 1 }} {{ -7.5 // 2 }} {{ 7 % -3 }}",
    "{{ \"it's\" }} {{ [\"it's\", 'a\"b', 'a\\nb', '\\x00', 'é', '\\xa0', 'a\\'b\"c'] }}",
    "{{ 'ab' * 3 }} {{ [1] * 2 }} {{ 1 + true }} {{ true + true }} {{ 3 * 'x' }}",
    "{% set ns = namespace(a=1) %}{{ ns }}{% set ns.a = ns.a + 1 %}{{ ns.a }}",
    "{% for a in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.revindex }}-{{ loop.cycle('x','y') }}-{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
    "{% for a in [1,2,3] if a > 1 %}{{ loop.index }}/{{ loop.length }}{{ loop.last }};{% else %}none{% endfor %}",
    "{% for a in [] %}x{% else %}empty{% endfor %}{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}",
    "{% for x in range(10) %}{% if x is odd %}{% continue %}{% endif %}{% if x > 6 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{{ {'a':1}.items() | list }}|{{ {'a':1} | items | list }}|{{ {'a':1}.keys() | list }}|{{ {'b':1}.values() | list }}",
    "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ (1,2) == [1,2] }} {{ 1 != 2 }}",
    "{{ u is defined }}{{ u is none }}{{ u is string }}{{ u is iterable }}{{ u is mapping }}{{ u is sequence }}",
    "a\n  {% if true %}\n  x\n  {% endif %}\n  b\n",
    "a  {%+ if true %}x{% endif %}\n",
    "a\n  {#- c #}\n  x {# d +#}\ny  \n  {{ 1 }}\n",
    "{% raw %}\n{{ x }}{% endraw %}\nq  {% raw -%}  {{ y }}  {%- endraw %}\nr",
    "  {%- if true -%}  \n\n  a  \n\n  {%- endif -%}  \n b",
    "{{- ' x ' -}}  \n  {{ 'y' }}\n{%- set z = 1 %}\n\n{{ z }}\n",
    "line1\n    {% for i in [1] %}\n    item\n    {% endfor %}\nend",
    "{{ {'a':{'b':1}} }}",
    "{{ 'a\\u00e9\\x41\\d\\\n' }}|{{ '\\t\\101' }}",
    "x\r\ny\r\n{{ 'z' }}\r\n",
    "{% macro m(a, b=a+1) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1,2,3) }}|{{ m(1, c=4) }}",
    "{% macro m(a) %}[{{ a }}]{% endmacro %}{{ m() }}{{ m(a='k') }}",
    "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1,2) }}",
    "{% macro m() %}{{ caller(5) }}{% endmacro %}{% call(x) m() %}got {{ x }}{% endcall %}",
    "{% set x %} a {% endset %}[{{ x }}]{% set y | upper %}b{% endset %}{{ y }}",
    "{% filter upper %}abc{% endfilter %}{% filter trim | upper %}  xy  {% endfilter %}",
    "{{ 'abc'[1:] }}{{ 'abc'[::-1] }}{{ [1,2,3][-2:] }}{{ 'héllo'[1] }}{{ 'héllo'|length }}{{ 'héllo'[-3:] }}{{ [1,2,3,4,5][::2] }}{{ [1,2,3][5:1:-1] }}",
    "{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ ' a b c '.split(None, 1) }}|{{ ' a b c '.rsplit(None, 1) }}",
    "{{ 'abc'.startswith(('x','a')) }}{{ 'abc'.endswith('c') }}{{ 'a{}b{x}'.format(1, x=2) }}{{ 'abc'.startswith('b', 1) }}",
    "{{ '%s-%d' % ('a', 3) }}{{ '%s' | format('q') }}{{ '%05.1f|%-4d|%x|%r' % (3.14159, 7, 255, 'a') }}",
    "{{ '{:>5}|{:<5}|{:^5}|{:05d}|{:.2f}|{!r}'.format('a','b','c',42,3.14159,'q') }}",
    "{{ [3,1,2]|sort }}{{ [3,1,2]|sort(reverse=true) }}{{ ['b','A','a']|sort }}{{ ['b','A','a']|unique|list }}",
    "{{ [{'a':2},{'a':1}]|sort(attribute='a') }}{{ [{'a':2},{'a':1}]|map(attribute='a')|list }}{{ [{'a':2},{'b':1}]|selectattr('a')|list }}",
    "{{ [1,2,3]|select('odd')|list }}{{ [1,2,3]|reject('odd')|list }}{{ ['a','B']|map('upper')|list }}{{ [1,2]|sum }}{{ [1,5,2]|max }}{{ [4,2,8]|min }}",
    "{{ 'hello world'|title }}{{ 'hELLO'|capitalize }}{{ 'a b c'|wordcount }}{{ '  x  '|trim }}{{ 'x'|center(5) }}|{{ \"they're o'neil\"|title }}",
    "{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(2, blank=true) }}|{{ 'a\nb'|indent('> ') }}",
    "{{ {'b':1,'a':2}|dictsort }}{{ {'b':1,'A':2}|dictsort(by='value', reverse=true) }}",
    "{{ 3.7|int }}{{ '42'|int }}{{ 'x'|int }}{{ '3.5'|float }}{{ 2.5|round }}{{ 3.5|round }}{{ 2.567|round(2) }}{{ 2.1|round(0,'ceil') }}{{ -3|abs }}{{ '4.9'|int }}{{ none|int }}{{ '0x1A'|int(0, 16) }}",
    "{{ none|default('d') }}{{ u|default('d') }}{{ ''|default('d', true) }}{{ u|d }}{{ false|default('x') }}",
    "{{ [1,2,3]|join(',') }}{{ [{'a':1},{'a':2}]|join(',', attribute='a') }}{{ [1,2]|first }}{{ [1,2]|last }}{{ [1,2]|reverse|list }}{{ 'abc'|reverse }}{{ 'abc'|list }}",
    "{{ '<a&\"\\''|e }}{{ '<'|safe + '<' }}{{ '<' + '<'|safe }}{{ ('<'|safe) ~ '<' }}{{ '<'|escape|escape }}",
    "{{ 1 is odd }}{{ 4 is divisibleby 2 }}{{ 1 is eq 1 }}{{ 1 is sameas 1 }}{{ 'a' is lower }}{{ true is boolean }}{{ 1 is number }}{{ 1.0 is float }}{{ true is integer }}{{ 1 is true }}",
    "{{ [1] is sequence }}{{ 'a' is sequence }}{{ {} is sequence }}{{ {} is iterable }}{{ 1 is iterable }}{{ none is none }}{{ 1 is in [1] }}{{ 2 is gt 1 }}{{ 'f' is callable }}{{ range is callable }}",
    "{{ x is not none and x.a is defined }}{{ not x }}{{ x.a if x else 'n' }}{{ 'y' if false }}",
    "{{ 'a' 'b' }}{{ ('x', 'y') }}{{ () }}{{ (1) }}{{ [] }}{{ {} }}{{ 'ab' ~ 1 ~ none ~ true }}",
    "{{ 'Hello'.lower().upper() }}{{ 'a-b-c'.replace('-', '+', 1) }}{{ 'abcabc'.find('c') }}{{ 'abcabc'.rfind('c') }}{{ 'abcabc'.count('b') }}{{ 'a\\nb\\r\\nc'.splitlines() }}",
    "{{ '12'.isdigit() }}{{ ' '.isspace() }}{{ 'Ab'.istitle() }}{{ 'ab'.isalpha() }}{{ 'x'.zfill(3) }}{{ 'ab'.ljust(4, '*') }}|{{ 'ab'.rjust(4) }}|{{ 'k=v=w'.partition('=') }}",
    "{{ [1,2,3].index(2) }}{{ [1,1,2].count(1) }}{{ {'a':1}.get('a') }}{{ {'a':1}.get('b') }}{{ {'a':1}.get('b', 2) }}",
    "{% set l = [] %}{{ l.append(1) }}",
    "{% set d = {} %}{{ d.update({'a': 1}) }}",
    "{{ u.x }}",
    "{{ u + 'a' }}",
    "{{ 'a' + 1 }}",
    "{% for x in 5 %}{% endfor %}",
    "{{ range(3) | list }}{{ range(1, 10, 3) | list }}{{ range(5, 0, -2) | list }}",
    "{{ range(100001) | length }}",
    "{{ raise_exception('custom failure') }}",
    "{{ strftime_now('%Y-%m-%d %H:%M %A %B %d %b %j') }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = (3, 4) %}{{ c[0] }}{{ c.1 }}",
    "{% with x = 1, y = 2 %}{{ x + y }}{% endwith %}{{ x }}",
    "{{ dict(a=1, b=[2]) }}{{ namespace(x=1).x }}",
    "{% set j = joiner(', ') %}{% for x in [1,2,3] %}{{ j() }}{{ x }}{% endfor %}",
    "{{ [1,2,3]|batch(2)|list }}{{ [1,2,3]|slice(2)|list }}{{ [{'a':1,'b':2},{'a':1,'b':3}]|groupby('a') }}",
    "{{ 'aé /x'|urlencode }}{{ {'a b':'c&d'}|urlencode }}{{ '<b>x</b>  &amp; y'|striptags }}",
    "{{ 'hello world foo'|truncate(9) }}|{{ 'hello world foo'|truncate(9, true) }}|{{ 'hello world foo bar'|truncate(12, leeway=0) }}",
    "{{ {'a':1}|tojson(indent=2, sort_keys=true) }}{{ [1,[2]]|tojson(separators=(',',':')) }}{{ 'é'|tojson(ensure_ascii=true) }}{{ '\\u2028\\x7f\\x01'|tojson }}",
    "{{ [1.0, 1e100, -0.0, 123456789.125, 1/3] | tojson }}{{ 1/3 }}{{ 2.0**70 }}{{ 1e22 }}{{ 0.000123 }}",
    "{{ messages | length }}{{ messages[0].role }}{{ messages[-1]['content'] | upper }}{{ messages | map(attribute='role') | join(',') }}",
    "{% for m in messages %}{{ m.role }}:{{ m.content if m.content is string else m.content | tojson }};{% endfor %}",
    "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}{{ messages | rejectattr('role', 'in', ['system']) | map(attribute='role') | list }}",
    "{{ tools | tojson }}",
    "{{ tools[0].function.parameters.properties | items | list }}",
    "{% for k, v in tools[0].function.parameters.properties | dictsort %}{{ k }}:{{ v.type }},{% endfor %}",
    "{{ 'x' if tools else 'y' }}{{ tools is none }}{{ tools is not none }}{{ tools | length if tools else 0 }}",
    "{{ x }}",
    "{{ 'é'.upper() }}{{ 'ÉA'.lower() }}{{ 'straße'.upper() }}{{ 'ǆ'.title() }}{{ 'ß'|capitalize }}",
    "{{ '\u00a0x\u3000'.strip() }}|{{ '\u00a0x\u3000'|trim }}|{{ 'a\u2028b'.splitlines() }}",
    "{% if true %}{% set scoped = 1 %}{% endif %}{{ scoped }}",
    "{% for i in [1] %}{% set inner = 1 %}{% endfor %}[{{ inner }}]",
    "{% set ns = namespace(items=[]) %}{% for i in [1,2] %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.items }}",
    "{{ [1, 2] + [3] }}{{ (1, 2) + (3,) }}{{ [1] + (2,) }}",
    "{{ 5 // 0 }}",
    "{{ 1 < 'a' }}",
    "{{ {[1]: 2} }}",
    "{{ 'abc'[1.5] }}|{{ 'abc'['upper']() }}",
    "{% for a, b in [[1, 2], [3, 4]] %}{{ a * b }},{% endfor %}{% for a, b in ['xy'] %}{{ b }}{{ a }}{% endfor %}",
    "{% for a, b in [[1, 2, 3]] %}{% endfor %}",
    "{{ loop }}{% for x in [1] %}{% for y in [2] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}",
    "{{ '%.3f' | format(3.14159) }}{{ '%(a)s-%(b)s' | format(a=1, b=2) }}",
    "{{ 'x'|attr('upper') is callable }}{{ {'a':1}|attr('a') }}",
    "{{ -(3) }}{{ -3|abs }}{{ +5 }}{{ not none }}{{ 2 ** 3 ** 2 }}{{ (2 ** 3) ** 2 }}{{ 10 - 2 - 3 }}",
    "{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'b' in 'abc' }}{{ 'd' not in 'abc' }}{{ 1 in {1: 2} }}",
    "{{ none is none is none }}",
    "{{ 1 if 0 else 2 if 0 else 3 }}",
    "{{ [1,2,3]|sum(start=10) }}{{ [{'v': 1}, {'v': 2}]|sum(attribute='v') }}",
    "{{ ['b', 'a', 'c']|sort|join }}{{ [[2, 'b'], [1, 'a']]|sort|first }}{{ ['x10', 'x9']|sort }}",
    "{{ '{0}{1}{0}'.format('a', 'b') }}{{ '{a[0]}{b.x}'.format(a=[5], b={'x': 6}) }}{{ '{{}}'.format() }}",
    "{{ [1,2]|map('string')|list }}{{ ([1]|select) is sequence }}{{ 'y' if ([]|select) else 'n' }}{{ [1,2]|reverse|join }}{{ [1,2]|select|first }}",
    "{{ {'a':1}.items() }}{{ {'a':1}.keys() }}{{ {'a':1}.values()|list }}{{ {'a':1}.items()|length }}{{ {'a': 1}.keys()|last }}",
    "{{ [1]|map('string')|length }}",
    "{{ [1]|map('string')|tojson }}",
    "{{ ([1,2]|select)|last }}",
    "{{ ([1,2]|reverse)[0] }}|{{ ({'a':1}.items())[0] }}|{{ ([3,1]|select|sort) }}",
    "{{ x[:2, 3] }}",
    "{% set x = {(1, 2): 'pair'} %}{{ x[1, 2] }}{{ [1, 2, 3][1:] }}{{ 'abc'[::-1] }}",
    "{{ '{:,}'.format(1234567) }}{{ '{:x}'.format(255) }}{{ '{:>8.3f}'.format(2.5) }}{{ '{:e}'.format(12345.678) }}{{ '{}'.format(1.0) }}{{ '{:g}'.format(0.0001) }}",
]

SNIPPET_CONTEXT = {
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
                 {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}],
    "tools": TOOLS,
    "x": {"a": 1},
}


# ---- random programs (fixed seeds): whitespace control and expression semantics ----
WS_TEXT = ["", " ", "  ", "\n", "\n\n", " \n ", "\t", "a", "b c", "\n  ", "  \n", "x\n", "\r\n", "\u00a0",
           "\u3000\n", " \t\n\t "]


def random_whitespace_template(rng, depth=0):
    """Text, tags and comments with random -/+ markers: exercises trim_blocks/lstrip_blocks."""
    def sign():
        return rng.choice(["", "", "-", "+"])
    out = ""
    for _ in range(rng.randint(1, 4)):
        out += rng.choice(WS_TEXT)
        k = rng.random()
        if k < 0.25:
            out += "{{" + sign() + " 'v' " + rng.choice(["", "-"]) + "}}"
        elif k < 0.4:
            out += "{#" + sign() + " c " + sign() + "#}"
        elif k < 0.6 and depth < 3:
            out += ("{%" + sign() + " if true " + sign() + "%}" + random_whitespace_template(rng, depth + 1) +
                    "{%" + sign() + " endif " + sign() + "%}")
        elif k < 0.7 and depth < 3:
            out += ("{%" + sign() + " for i in [1,2] " + sign() + "%}" + random_whitespace_template(rng, depth + 1) +
                    "{%" + sign() + " endfor " + sign() + "%}")
        elif k < 0.78:
            out += "{%" + sign() + " set z = 1 " + sign() + "%}"
        elif k < 0.83:
            out += ("{%" + sign() + " raw " + sign() + "%}" + rng.choice(WS_TEXT) + "{{ r }}" + rng.choice(WS_TEXT) +
                    "{%" + sign() + " endraw " + sign() + "%}")
        elif k < 0.9 and depth < 3:
            out += ("{%" + sign() + " macro m() " + sign() + "%}" + random_whitespace_template(rng, depth + 1) +
                    "{%" + sign() + " endmacro " + sign() + "%}{{ m() }}")
    return out + rng.choice(WS_TEXT)


R_STRS = ["'a'", "'abc'", "''", "'héllo'", "' x y '", "'A,b,,c'", "'日本'", "'x\\ny'", "\"it's\"", "'%s'", "'{}'",
          "'10'", "'3.5'", "'True'"]
R_NUMS = ["0", "1", "2", "-3", "7", "0.5", "1.0", "2.5", "-0.0", "1e3", "1e-7", "100000000000", "3.14159"]
R_VARS = ["x", "y", "s", "l", "d", "n", "f", "u", "e", "messages"]
R_FILTERS = ["length", "upper", "lower", "trim", "title", "capitalize", "string", "list", "first", "last",
             "reverse|list", "sort", "unique|list", "tojson", "join(',')", "join", "int", "float", "abs", "round",
             "round(1)", "default('D')", "default('D', true)", "items|list", "dictsort", "sum", "max", "min", "count",
             "wordcount", "center(7)", "indent(2)", "batch(2)|list", "map('string')|list", "select|list",
             "reject|list", "selectattr('role')|list", "map(attribute='role')|list", "e", "safe",
             "replace('a','b')", "format(1)", "truncate(5)", "tojson(indent=1)", "tojson(sort_keys=true)"]
R_TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence",
           "boolean", "true", "false", "odd", "even", "divisibleby(2)", "eq(1)", "lower", "upper", "in([1, 'a'])",
           "callable", "sameas(none)"]
R_METHODS = ["strip()", "split()", "split(',')", "upper()", "lower()", "title()", "startswith('a')", "endswith('c')",
             "replace('a', 'X')", "find('b')", "count('a')", "isdigit()", "format(1, 2)", "get('a')", "get('z', 0)",
             "items()|list", "keys()|list", "values()|list", "index(1)", "splitlines()", "rstrip('c')", "lstrip()",
             "zfill(5)", "center(6, '*')", "join(['p','q'])", "rsplit(',', 1)", "partition('b')", "capitalize()"]
RANDOM_EXPR_CONTEXT = {"x": 5, "y": 2.5, "s": "abc", "l": [3, 1, 2], "d": {"a": 1, "b": [1, 2]}, "n": None,
                       "f": False, "e": [], "messages": [{"role": "user", "content": "hi"},
                                                        {"role": "assistant", "content": None}]}


def random_expression(rng, depth=0):
    """Expressions mixing literals, variables, operators, filters, tests and methods."""
    def atom(d):
        r = rng.random()
        if r < 0.25 or d >= 3:
            return rng.choice(R_VARS)
        if r < 0.45:
            return rng.choice(R_STRS)
        if r < 0.6:
            return rng.choice(R_NUMS)
        if r < 0.7:
            return "[" + ", ".join(random_expression(rng, d + 1) for _ in range(rng.randint(0, 3))) + "]"
        if r < 0.75:
            return "{" + ", ".join(f"{rng.choice(R_STRS)}: {random_expression(rng, d + 1)}"
                                   for _ in range(rng.randint(0, 2))) + "}"
        if r < 0.8:
            return "(" + random_expression(rng, d + 1) + ", " + random_expression(rng, d + 1) + ")"
        return "(" + random_expression(rng, d + 1) + ")"

    def postfix(e):
        r = rng.random()
        if r < 0.2:
            return f"{e}|{rng.choice(R_FILTERS)}"
        if r < 0.3:
            return f"{e}.{rng.choice(R_METHODS)}"
        # Subscripts only on variables: Jinja2 constant-folds literal[...] through a different path.
        if r < 0.4 and e in R_VARS:
            return e + "[" + rng.choice(["0", "-1", "1:", "::-1", ":2", "'a'", "5"]) + "]"
        if r < 0.45:
            return f"{e}.{rng.choice(['a', 'role', 'content', 'b'])}"
        return e

    if depth > 3:
        return atom(depth)
    r = rng.random()
    a = postfix(atom(depth))
    if r < 0.35:
        return a
    if r < 0.65:
        op = rng.choice(["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in",
                         "and", "or"])
        return f"{a} {op} {postfix(atom(depth + 1))}"
    if r < 0.75:
        return f"not {a}"
    if r < 0.85:
        return f"{a} is {rng.choice(['', 'not '])}{rng.choice(R_TESTS)}"
    return f"{a} if {random_expression(rng, depth + 1)} else {random_expression(rng, depth + 1)}"


def render_python(env, source, context):
    try:
        return True, env.from_string(source).render(**context)
    except Exception as e:  # noqa: BLE001 - any Jinja2/Python error is an "error" outcome
        return False, f"{type(e).__name__}: {e}"


def run_ours(render, cases):
    lines = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases)
    proc = subprocess.run([render, "--batch"], input=lines.encode("utf-8"), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=600)
    if proc.returncode != 0:
        print(proc.stderr.decode("utf-8", "replace"), file=sys.stderr)
        raise SystemExit(f"jinja_diff: {render} exited with {proc.returncode}")
    out = [json.loads(l) for l in proc.stdout.decode("utf-8").split("\n") if l.strip()]
    if len(out) != len(cases):
        raise SystemExit(f"jinja_diff: expected {len(cases)} results, got {len(out)}")
    return out


LOCATION = re.compile(r"^line \d+, column \d+: ")


def same_error(py_out, ours):
    """Both raised: the same exception type, and raise_exception's exact message."""
    py_type, _, py_msg = py_out.partition(": ")
    msg = LOCATION.sub("", ours.get("error", ""))
    if py_type == "TemplateError":  # raise_exception(message)
        return msg == py_msg
    if py_type in ("TemplateSyntaxError", "TemplateAssertionError"):
        return ours.get("code") == "InvalidArgument"
    return msg.partition(": ")[0] == py_type


def classify(py_ok, py_out, ours):
    if ours["ok"] and py_ok:
        return "identical" if ours["output"] == py_out else "mismatch"
    if not ours["ok"] and ours.get("code") == "Unimplemented":
        return "unsupported"
    if not ours["ok"] and not py_ok:
        return "both-error" if same_error(py_out, ours) else "mismatch"
    return "mismatch"


def describe(py_ok, py_out, ours, verbose):
    a = py_out if py_ok else f"<Jinja2 error> {py_out}"
    b = ours["output"] if ours["ok"] else f"<our error> {ours.get('code')}: {ours.get('error')}"
    if not verbose or not (py_ok and ours["ok"]):
        return f"      jinja2: {a[:300]!r}\n      ours:   {b[:300]!r}"
    diff = difflib.unified_diff(a.splitlines(True), b.splitlines(True), "jinja2", "ours", n=2)
    return "".join("      " + l if l.endswith("\n") else "      " + l + "\n" for l in diff)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--render", required=True, help="path to nc_chat_render")
    ap.add_argument("--templates", required=True, help="directory of *.jinja templates")
    ap.add_argument("--only", help="only templates whose file name contains this")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--show-errors", action="store_true", help="list every both-error case with both messages")
    ap.add_argument("--random", type=int, default=600, help="random whitespace and expression programs (each)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    if not os.path.isdir(args.templates):
        print(f"jinja_diff: no templates at {args.templates} (run `make fetch`); skipping")
        return SKIP
    names = sorted(n for n in os.listdir(args.templates) if n.endswith(".jinja"))
    if args.only:
        names = [n for n in names if args.only in n]
    env = make_env()

    cases, expected, labels = [], [], []
    for name in names:
        with open(os.path.join(args.templates, name), encoding="utf-8") as f:
            source = f.read()
        for conv_name, (conv, agp) in CONVERSATIONS.items():
            ctx = conversation_context(conv, agp)
            expected.append(render_python(env, source, copy.deepcopy(ctx)))
            cases.append({"template": source, "context": ctx, "now": NOW_STR})
            labels.append((name, conv_name))
    if not args.only:
        for i, snippet in enumerate(SNIPPETS):
            expected.append(render_python(env, snippet, copy.deepcopy(SNIPPET_CONTEXT)))
            cases.append({"template": snippet, "context": SNIPPET_CONTEXT, "now": NOW_STR})
            labels.append(("snippets", f"#{i}"))

    if not args.only:
        rng = random.Random(args.seed)
        for i in range(args.random):
            src = random_whitespace_template(rng)
            expected.append(render_python(env, src, {}))
            cases.append({"template": src, "context": {}})
            labels.append(("random whitespace programs", f"#{i}"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Python's SyntaxWarnings about the generated code
            for i in range(args.random):
                src = "{{ " + random_expression(rng) + " }}"
                expected.append(render_python(env, src, copy.deepcopy(RANDOM_EXPR_CONTEXT)))
                cases.append({"template": src, "context": RANDOM_EXPR_CONTEXT})
                labels.append(("random expressions", f"#{i}"))
    results = run_ours(args.render, cases)
    per_group = {}
    problems = []
    totals = {"identical": 0, "both-error": 0, "unsupported": 0, "mismatch": 0}
    for (group, case), (py_ok, py_out), ours in zip(labels, expected, results):
        kind = classify(py_ok, py_out, ours)
        totals[kind] += 1
        per_group.setdefault(group, {"identical": 0, "both-error": 0, "unsupported": 0, "mismatch": 0})[kind] += 1
        if kind in ("mismatch", "unsupported"):
            problems.append((group, case, kind, describe(py_ok, py_out, ours, args.verbose)))
        elif kind == "both-error" and args.show_errors:
            print(f"  both-error {group} [{case}]\n      jinja2: {py_out[:200]!r}\n      ours:   {ours.get('error', '')[:200]!r}")

    for group, c in per_group.items():
        flag = "" if c["mismatch"] == 0 and c["unsupported"] == 0 else "   <-- FAIL"
        print(f"{group:60s} identical {c['identical']:3d}  both-error {c['both-error']:3d}  "
              f"unsupported {c['unsupported']:2d}  mismatch {c['mismatch']:2d}{flag}")
    for group, case, kind, text in problems:
        print(f"  {kind.upper()}: {group} [{case}]")
        print(text)
        if group != "snippets" and not group.endswith(".jinja"):
            print(f"      template: {cases[labels.index((group, case))]['template']!r}")
        if group == "snippets":
            print(f"      template: {SNIPPETS[int(case[1:])]!r}")
    n_templates = len([g for g in per_group if g.endswith(".jinja")])
    extra = 0 if args.only else len(SNIPPETS) + 2 * args.random
    print(f"jinja_diff: {n_templates} templates x {len(CONVERSATIONS)} conversations + {extra} snippets/random "
          f"programs = {len(cases)} cases: identical {totals['identical']}, both-error {totals['both-error']}, "
          f"unsupported {totals['unsupported']}, mismatch {totals['mismatch']}")
    return 1 if totals["mismatch"] or totals["unsupported"] else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks `neocloud serve`'s chat prompts against Python Jinja2 with transformers' apply_chat_template
settings: POST /apply-template must equal Jinja2's rendering (less a leading BOS text, which the
tokenizer adds), a chat completion's usage.prompt_tokens must equal the tokenizer's count of that
text, and a conversation the template rejects (raise_exception) must get a 400 carrying its message.
Usage: chat_template_check.py BASE_URL MODEL TEMPLATE_FILE BOS_TEXT EOS_TEXT"""
import datetime
import json
import sys
import urllib.error
import urllib.request

import jinja2
import jinja2.ext
import jinja2.sandbox

base, model, template_file, bos, eos = sys.argv[1:6]


def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                   extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
    x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
template = env.from_string(open(template_file).read())

conversations = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Why is the sky blue?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, how can I help?"},
     {"role": "user", "content": "Tell me a story about \"quotes\",\nnewlines and ünïcödé 🚀."}],
    [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "part one"},
                                                                                {"type": "text", "text": "part two"}]}],
    # Two user turns in a row: templates that require alternation raise, the others render both.
    [{"role": "user", "content": "First"}, {"role": "user", "content": "Second"}],
]
rejected = 0
cases = [(c, True, {}) for c in conversations]
# add_generation_prompt false, and chat_template_kwargs reaching the template as variables.
cases.append((conversations[2], False, {}))
cases.append((conversations[1], True, {"date_string": "01 Jan 2026", "enable_thinking": False}))
for conv, add_gen, kwargs in cases:
    # What the server does to messages first: developer -> system, text parts joined with "\n".
    msgs = [{"role": "system" if m["role"] == "developer" else m["role"],
             "content": m["content"] if isinstance(m["content"], str) else "\n".join(p["text"] for p in m["content"])}
            for m in conv]
    try:
        want = template.render(messages=msgs, tools=None, add_generation_prompt=add_gen, bos_token=bos, eos_token=eos,
                               **kwargs)
        if want.startswith(bos):
            want = want[len(bos):]
    except TemplateError as e:
        want = e
    code, r = post("/apply-template", {"model": model, "messages": conv, "add_generation_prompt": add_gen,
                                       "chat_template_kwargs": kwargs})
    if isinstance(want, TemplateError):
        assert code == 400 and str(want) in r["error"]["message"], (code, r, str(want))
        rejected += 1
        continue
    assert code == 200, (code, r)
    assert r["format"] == "jinja", r
    assert r["prompt"] == want, f"\n--- server ---\n{r['prompt']!r}\n--- jinja2 ---\n{want!r}"
    code, t = post("/tokenize", {"model": model, "content": r["prompt"]})
    code, c = post("/v1/chat/completions", {"model": model, "messages": conv, "max_tokens": 2,
                                            "add_generation_prompt": add_gen, "chat_template_kwargs": kwargs})
    assert code == 200, (code, c)
    assert c["usage"]["prompt_tokens"] == t["count"], (c["usage"], t["count"])
print(f"{template_file.rsplit('/', 1)[-1]}: {len(cases) - rejected} rendered as Jinja2, {rejected} rejected as Jinja2")

"""The official `openai` Python package against a running LoraServe.

Usage: python3 openai_client_test.py http://127.0.0.1:PORT/v1
Exits non-zero (with the assertion) on the first failure; prints "ok" at the end.
"""
import sys

import openai
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key="unused", max_retries=0, timeout=120)

# Models list, through the package's own types.
models = client.models.list()
ids = [m.id for m in models.data]
assert len(ids) >= 1, ids
base = ids[0]

# Chat completion.
r = client.chat.completions.create(
    model=base, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=20, temperature=0)
assert r.object == "chat.completion", r
assert r.choices[0].message.role == "assistant"
assert r.choices[0].message.content == "The capital of France is Paris.", r.choices[0].message.content
assert r.choices[0].finish_reason == "stop"
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

# Streaming, with usage.
pieces, usage, finish = [], None, None
for chunk in client.chat.completions.create(
        model=base, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=20,
        temperature=0, stream=True, stream_options={"include_usage": True}):
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
assert "".join(pieces) == r.choices[0].message.content, pieces
assert finish == "stop"
assert usage is not None and usage.completion_tokens == r.usage.completion_tokens
# The same prompt a second time: all but its last token from the prefix cache, in the package's own type.
assert usage.prompt_tokens_details is not None, usage
assert usage.prompt_tokens_details.cached_tokens == r.usage.prompt_tokens - 1, usage

# Legacy completions.
c = client.completions.create(model=base, prompt="The capital of France is", max_tokens=5, temperature=0)
assert c.choices[0].text, c

# An error case: unknown model is a 404 the package turns into NotFoundError.
try:
    client.chat.completions.create(model="no-such-adapter", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert e.status_code == 404
    assert e.body is not None and e.body.get("code") == "model_not_found", e.body

# Another: a bad parameter is a 400.
try:
    client.chat.completions.create(model=base, messages=[{"role": "user", "content": "hi"}], max_tokens=-1)
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert e.status_code == 400

print("ok")

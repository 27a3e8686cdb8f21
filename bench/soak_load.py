#!/usr/bin/env python3
"""Mixed load for bench/soak.sh (standard library only).

Client threads send chat and completion requests naming random adapters (streamed and not); a share
of them close mid-stream (cancelled) or send malformed requests on purpose. An optional churn thread
adds and removes an adapter per second through POST/DELETE /v1/adapters. A sampler reads the
server's VmRSS/VmHWM from /proc/PID/status every second. Prints a JSON report at the end.

soak.sh runs the main load and churn with `serve bench` and this script beside it with
--cancel-share 0.7 --malformed-share 0.3 (only cancellations and malformed requests) and no churn.
"""
import argparse, collections, http.client, json, random, socket, threading, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--pid", type=int, required=True)
p.add_argument("--duration", type=float, default=600)
p.add_argument("--clients", type=int, default=64)
p.add_argument("--adapters", required=True, help="comma-separated registered adapter names")
p.add_argument("--churn-paths", default="", help="comma-separated adapter folders for churn (none: no churn)")
p.add_argument("--cancel-share", type=float, default=0.1)
p.add_argument("--malformed-share", type=float, default=0.05)
p.add_argument("--max-tokens", type=int, default=16)
p.add_argument("--warmup", type=float, default=60, help="seconds of load after which 'after_warmup' memory is taken")
a = p.parse_args()

adapters = a.adapters.split(",")
churn_paths = [x for x in a.churn_paths.split(",") if x]
lock = threading.Lock()
counts = collections.Counter()          # outcome -> count
latencies = []
stop_at = time.time() + a.duration
prompts = ["Hello!", "What is the capital of France?", "Write a haiku about rain.", "Count to ten.",
           "Give me three colours.", "Explain LoRA in one sentence."]


def count(key, latency=None):
    with lock:
        counts[key] += 1
        if latency is not None:
            latencies.append(latency)


def body(rng, stream):
    model = "base" if rng.random() < 0.1 else rng.choice(adapters)
    if rng.random() < 0.7:
        b = {"model": model, "messages": [{"role": "user", "content": rng.choice(prompts)}],
             "max_tokens": a.max_tokens, "temperature": rng.choice([0, 0.7])}
        path = "/v1/chat/completions"
    else:
        b = {"model": model, "prompt": rng.choice(prompts), "max_tokens": a.max_tokens, "temperature": 0.7}
        path = "/v1/completions"
    if stream:
        b["stream"] = True
    return path, json.dumps(b)


MALFORMED = [
    ("json", b'{"model": "base", "messages": ['),
    ("json", b'{"model": "base", "messages": [{"role": "user", "content": "\xff\xfe"}]}'),
    ("json", b"[" * 10000),
    ("field", b'{"model": "base", "messages": "hi"}'),
    ("field", b'{"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}'),
    ("http", None),  # a broken request line on a raw socket
]


def malformed(rng):
    kind, raw = rng.choice(MALFORMED)
    t0 = time.time()
    try:
        if raw is None:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
            s.sendall(b"GARBAGE / HTTP/9\r\n\r\n")
            reply = s.recv(64)
            s.close()
            status = int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else 0
        else:
            c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
            c.request("POST", "/v1/chat/completions", raw, {"Content-Type": "application/json"})
            r = c.getresponse(); r.read(); c.close()
            status = r.status
        count("malformed_rejected_%d" % status if 400 <= status < 500 else "malformed_unexpected_%d" % status)
    except Exception as e:
        count("malformed_error_" + type(e).__name__)


def client(i):
    rng = random.Random(1000 + i)
    while time.time() < stop_at:
        x = rng.random()
        if x < a.malformed_share:
            malformed(rng)
            continue
        cancel = x < a.malformed_share + a.cancel_share
        stream = cancel or rng.random() < 0.5
        path, b = body(rng, stream)
        t0 = time.time()
        try:
            c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
            c.request("POST", path, b, {"Content-Type": "application/json"})
            r = c.getresponse()
            if r.status != 200:
                r.read(); c.close()
                # 404: an adapter removed by churn (only churn-* names); anything else is a failure.
                count("failed_%d" % r.status)
                continue
            if cancel:
                r.readline()           # first event, then vanish
                c.sock.close(); c.close()
                count("cancelled")
                continue
            if stream:
                done = False
                for line in r:
                    if line.strip() == b"data: [DONE]":
                        done = True
                c.close()
                count("served" if done else "failed_stream_cut", time.time() - t0)
            else:
                j = json.loads(r.read()); c.close()
                ok = j.get("choices") and j.get("usage")
                count("served" if ok else "failed_bad_body", time.time() - t0)
        except Exception as e:
            count("failed_" + type(e).__name__)


def churn():
    rng = random.Random(7)
    live = []
    n = 0
    while time.time() < stop_at:
        t0 = time.time()
        name = "churn-%d" % n; n += 1
        try:
            c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
            c.request("POST", "/v1/adapters", json.dumps({"name": name, "path": rng.choice(churn_paths)}),
                      {"Content-Type": "application/json"})
            r = c.getresponse(); r.read(); c.close()
            count("churn_add_%d" % r.status)
            if r.status == 200:
                live.append(name)
            if len(live) > 4:
                old = live.pop(0)
                c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
                c.request("DELETE", "/v1/adapters/" + old)
                r = c.getresponse(); r.read(); c.close()
                count("churn_remove_%d" % r.status)
            if live and rng.random() < 0.5:   # also use a churned adapter
                c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
                c.request("POST", "/v1/chat/completions", json.dumps({"model": live[-1], "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}),
                          {"Content-Type": "application/json"})
                r = c.getresponse(); r.read(); c.close()
                count("churn_request_%d" % r.status)
        except Exception as e:
            count("churn_error_" + type(e).__name__)
        time.sleep(max(0, 1 - (time.time() - t0)))


rss = []
def sampler():
    while time.time() < stop_at + 2:
        try:
            f = dict(l.split(":", 1) for l in open("/proc/%d/status" % a.pid) if ":" in l)
            rss.append((time.time(), int(f["VmRSS"].split()[0]), int(f["VmHWM"].split()[0])))
        except Exception:
            pass
        time.sleep(1)


threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
threads += ([threading.Thread(target=churn)] if churn_paths else []) + [threading.Thread(target=sampler)]
start = time.time()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.time() - start
latencies.sort()
def rss_at(seconds):
    """The last sample taken at most `seconds` after the start (the memory once warm)."""
    before = [r for r in rss if r[0] - start <= seconds]
    return (before[-1] if before else rss[0])[1] if rss else None

after_warmup, final = rss_at(a.warmup), (rss[-1][1] if rss else None)
q = lambda f: round(latencies[min(len(latencies) - 1, int(f * len(latencies)))], 3) if latencies else None
report = {
    "duration_s": round(elapsed, 1),
    "served": counts["served"],
    "served_per_s": round(counts["served"] / elapsed, 2),
    "cancelled": counts["cancelled"],
    "failed": {k: v for k, v in sorted(counts.items()) if k.startswith("failed")},
    "malformed": {k: v for k, v in sorted(counts.items()) if k.startswith("malformed")},
    "churn": {k: v for k, v in sorted(counts.items()) if k.startswith("churn")},
    "latency_s": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0)},
    "rss_kb": {"first": rss[0][1] if rss else None, "peak_vmhwm": max(r[2] for r in rss) if rss else None,
               "peak_sampled": max(r[1] for r in rss) if rss else None, "after_warmup": after_warmup,
               "warmup_s": a.warmup, "final": final,
               "final_vs_after_warmup_pct": round(100 * (final - after_warmup) / after_warmup, 2) if rss else None,
               "samples": len(rss)},
    # Resident memory (MB) once a minute: a leak shows as a steady climb, allocator retention as a plateau.
    "rss_mb_per_minute": [round(r[1] / 1024) for i, r in enumerate(rss) if i % 60 == 0],
}
print(json.dumps(report, indent=2))

#!/usr/bin/env python3
"""Opens N TCP connections to 127.0.0.1:PORT and leaves them idle (HostileHTTPTests).

The client ends live in this process so that the server under test, in the test process, has the whole
file-descriptor limit for its own ends. Prints "open N" once every connection is established, then holds them
until its standard input closes. Usage: idle_connections.py PORT N
"""
import resource, socket, sys

port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64) if hard != resource.RLIM_INFINITY else n + 64, hard))
conns = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    conns.append(s)
print("open %d" % len(conns), flush=True)
sys.stdin.read()
for s in conns:
    s.close()

"""Which HTTP server should carry the Runtime API and the Invoke API: workbench's lean server
(core/engine/http11.py, parsing by llhttp through httptools) or aiohttp's web server (the
same llhttp underneath, plus its framework)? Both echo a POST body on a keep-alive
connection, in their own processes; one client drives them in interleaved blocks.

    python bench/http_servers.py [--requests 3000] [--blocks 6] [--size 100]

Reported per server: round-trip p50 and p99 (µs), and the server process's CPU per request
(µs, from /proc/<pid>/stat), the figure that decides it, since an invoke crosses these
servers three times. The floor is bench/floor_server.py's bare asyncio.Protocol echo."""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

LEAN = """
import asyncio, sys
from workbench.core.engine import http11
def echo(req):
    return http11.Response(200, req.body, {"Content-Type": "application/json"})
async def main():
    server = http11.Server(echo, 16 * 1024 * 1024)
    port = await server.start("127.0.0.1", 0)
    print(port, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

AIOHTTP = """
import asyncio
from aiohttp import web
async def echo(request):
    return web.Response(body=await request.read(), content_type="application/json")
async def main():
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def start(kind: str) -> tuple[subprocess.Popen[str], int]:
    if kind == "floor":
        cmd = [sys.executable, str(HERE / "floor_server.py"), "--mode", "asyncio"]
    else:
        cmd = [sys.executable, "-c", LEAN if kind == "workbench" else AIOHTTP]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def block(port: int, pid: int, n: int, body: bytes) -> tuple[list[float], float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}
    for _ in range(50):  # warm
        conn.request("POST", "/x", body, headers)
        conn.getresponse().read()
    times = []
    before = cpu_s(pid)
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/x", body, headers)
        got = conn.getresponse().read()
        times.append(time.perf_counter() - t0)
        assert len(got) == len(body)
    used = cpu_s(pid) - before
    conn.close()
    return times, used / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--size", type=int, default=100)
    args = ap.parse_args()
    body = b'"' + b"x" * max(0, args.size - 2) + b'"'
    kinds = ["floor", "workbench", "aiohttp"]
    servers = {k: start(k) for k in kinds}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for _ in range(args.blocks):
            for kind in kinds:
                proc, port = servers[kind]
                t, c = block(port, proc.pid, args.requests // args.blocks, body)
                times[kind] += t
                cpu[kind].append(c)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    load = os.getloadavg()[0]
    print(
        f"{args.requests} requests of {len(body)} B per server, "
        f"{args.blocks} interleaved blocks, load {load:.2f}"
    )
    print(f"{'server':10} {'p50 µs':>8} {'p99 µs':>8} {'server CPU µs/req':>18}")
    for kind in kinds:
        t = sorted(times[kind])
        p50 = statistics.median(t) * 1e6
        p99 = t[int(len(t) * 0.99)] * 1e6
        print(f"{kind:10} {p50:8.0f} {p99:8.0f} {statistics.median(cpu[kind]) * 1e6:18.0f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What history's journal costs per invoke, on the event loop, with and without it.

    python bench/journal_cost.py            # both parts
    python bench/journal_cost.py --quick    # smaller counts, a smoke test
    python bench/journal_cost.py --part inproc|serve

inproc  The journal of a real store in a temp folder, as the recorder drives it: per invoke, the
        answer's entry (event and response) and the record's (figures and log), each timed
        with thread_time_ns, then the record committed to SQLite as the writer thread would
        (outside the timing, in the same thread, so that nothing runs beside a sample).
serve   Two `workbench serve` processes on the same plain custom runtime (bench/functions/
        echo-loop), one with WORKBENCH_JOURNAL=off, called in interleaved rounds from one
        keep-alive http.client connection each. Per invoke: the CPU of serve's main thread
        (the event loop: /proc/PID/task/PID/schedstat), of all its threads, and the p50 round
        trip.

Events are 100 bytes and 1 MiB of JSON, as in invoke_overhead.py.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SMALL, LARGE = 100, 1024 * 1024
sys.path.insert(0, str(REPO))


def make_event(size: int) -> bytes:
    head, tail = b'{"data": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def label(size: int) -> str:
    return "100 B" if size == SMALL else "1 MiB"


# ---------------------------------------------------------------- in process ---------------


def inproc(n_small: int, n_large: int) -> dict[str, dict[str, float]]:
    from workbench.core.bus import InvocationAnswered
    from workbench.core.config.resolve import resolve_functions
    from workbench.core.history.recorder import open_stores_for
    from workbench.core.record import InvocationRecord, InvokeRequest, InvokeResult

    tmp = Path(tempfile.mkdtemp(prefix="wb-journal-bench-"))
    try:
        folder = tmp / "echo-py"
        shutil.copytree(HERE / "functions" / "echo-py", folder)
        cfg = resolve_functions([folder])[0].config
        stores = open_stores_for([cfg])
        store = stores(cfg.name)
        assert store is not None
        journal = store.journal
        log_lines = ["START RequestId: x Version: $LATEST", "END RequestId: x", "REPORT ..."]
        results: dict[str, dict[str, float]] = {}
        for size, n in ((SMALL, n_small), (LARGE, n_large)):
            event = make_event(size)
            answered_ns: list[int] = []
            finished_ns: list[int] = []
            for i in range(n):
                rid = f"{i:08d}-{size}"
                req = InvokeRequest(event, source="invoke-api")
                res = InvokeResult(rid, event)  # an echo: the response is the event
                rec = InvocationRecord(
                    cfg.name,
                    rid,
                    req,
                    res,
                    "ok",
                    False,
                    time.time(),
                    1.0,
                    1,
                    None,
                    128,
                    30,
                    list(log_lines),
                )
                ev = InvocationAnswered(cfg.name, rid, req, res, rec.started_at, False, None, 128)
                gc.disable()
                t0 = time.thread_time_ns()
                journal.answered(ev, None, None)
                t1 = time.thread_time_ns()
                journal.finished(rec, None, None)
                t2 = time.thread_time_ns()
                gc.enable()
                answered_ns.append(t1 - t0)
                finished_ns.append(t2 - t1)
                # what the writer thread does meanwhile, done here so that no other thread
                # runs during a sample; it leaves the caches as a real commit does
                store.record_many([(rec, None, None)], checkpoint_here=True)
                journal.committed([rid])
            a_us = statistics.median(answered_ns) / 1e3
            f_us = statistics.median(finished_ns) / 1e3
            results[label(size)] = {"n": n, "answered_us": a_us, "finished_us": f_us}
        stores.close()
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- through serve ------------


class Serve:
    def __init__(self, folder: Path, journal: bool, logdir: Path) -> None:
        env = {**os.environ, "BENCH_PYTHON": sys.executable}
        if not journal:
            env["WORKBENCH_JOURNAL"] = "off"
        self.name = "journal on" if journal else "journal off"
        self.log_path = logdir / f"serve-{'on' if journal else 'off'}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, "-m", "workbench", "serve", str(folder), "--port", "0", "-q"]
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=self._log, env=env, cwd=REPO, start_new_session=True
        )
        self.port = self._port()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.path = f"/2015-03-31/functions/{folder.name}/invocations"
        self.samples: dict[int, list[int]] = {SMALL: [], LARGE: []}
        self.loop_ns: dict[int, int] = {SMALL: 0, LARGE: 0}
        self.all_ns: dict[int, int] = {SMALL: 0, LARGE: 0}

    def _port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if "serving the Lambda Invoke API on " in line:
                    return int(line.rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"serve did not start:\n{self.log_path.read_text()}")

    def cpu(self) -> tuple[int, int]:
        """(main thread, all threads) CPU ns of the serve process."""
        pid = self.proc.pid
        main = total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    ns = int(fh.read().split()[0])
            except (OSError, ValueError):
                continue
            total += ns
            if tid == str(pid):
                main = ns
        return main, total

    def post(self, body: bytes) -> bytes:
        self.conn.request("POST", self.path, body, {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise SystemExit(f"{self.name}: {resp.status} {data[:200]!r}")
        return data

    def chunk(self, body: bytes, n: int) -> None:
        gc.collect()
        gc.disable()
        main0, all0 = self.cpu()
        for _ in range(n):
            t0 = time.perf_counter_ns()
            self.post(body)
            self.samples[len(body)].append(time.perf_counter_ns() - t0)
        main1, all1 = self.cpu()
        gc.enable()
        self.loop_ns[len(body)] += main1 - main0
        self.all_ns[len(body)] += all1 - all0

    def stop(self) -> None:
        self.conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


def through_serve(n_small: int, n_large: int, rounds: int) -> dict[str, dict[str, float]]:
    tmp = Path(tempfile.mkdtemp(prefix="wb-journal-bench-"))
    servers: list[Serve] = []
    try:
        for mode in ("on", "off"):  # a history folder each: the two never share a store
            shutil.copytree(HERE / "functions" / "echo-loop", tmp / mode / "echo-loop")
        servers = [
            Serve(tmp / "on" / "echo-loop", True, tmp),
            Serve(tmp / "off" / "echo-loop", False, tmp),
        ]
        small, large = make_event(SMALL), make_event(LARGE)
        for s in servers:  # the cold start and a few warm calls, not counted
            for body in (small,) * 20 + (large,) * 5:
                if s.post(body) != body:
                    raise SystemExit(f"{s.name}: the echo came back different")
        for body, n in ((small, n_small), (large, n_large)):
            for r in range(rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for s in order:
                    s.chunk(body, n // rounds)
        out: dict[str, dict[str, float]] = {}
        for s in servers:
            for size in (SMALL, LARGE):
                n = len(s.samples[size])
                out[f"{s.name}, {label(size)}"] = {
                    "n": n,
                    "loop_cpu_us": s.loop_ns[size] / n / 1e3,
                    "serve_cpu_us": s.all_ns[size] / n / 1e3,
                    "p50_ms": statistics.median(s.samples[size]) / 1e6,
                }
        return out
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller counts (a smoke test)")
    ap.add_argument("--part", choices=("inproc", "serve", "both"), default="both")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    results: dict[str, object] = {"load": os.getloadavg()}
    if args.part in ("inproc", "both"):
        got = inproc(2000 // scale, 200 // scale)
        results["inproc"] = got
        print("in process: CPU of the journal's two writes per invoke (median of samples)")
        print(f"  {'event':<8}{'n':>6}{'answered':>12}{'finished':>12}{'both':>12}")
        for key, v in got.items():
            both = v["answered_us"] + v["finished_us"]
            print(
                f"  {key:<8}{v['n']:>6.0f}{v['answered_us']:>9.1f} us"
                f"{v['finished_us']:>9.1f} us{both:>9.1f} us"
            )
    if args.part in ("serve", "both"):
        got = through_serve(2000 // scale, 200 // scale, 10 if not args.quick else 2)
        results["serve"] = got
        print("through `workbench serve` (echo-loop): CPU per invoke, and the p50 round trip")
        print(f"  {'case':<24}{'n':>6}{'event loop':>14}{'all threads':>14}{'p50':>10}")
        for key, v in got.items():
            print(
                f"  {key:<24}{v['n']:>6.0f}{v['loop_cpu_us']:>11.1f} us"
                f"{v['serve_cpu_us']:>11.1f} us{v['p50_ms']:>7.3f} ms"
            )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

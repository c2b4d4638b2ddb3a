"""`python -m bench.login_flood`: does a flood of wrong console passwords slow 112 callers?

The real stack (Asterisk, the app, SIPp callers to 112) takes the same step of calls twice:
once quiet, once while threads send wrong passwords for one account to the console's
login as fast as they are answered. Prints each step's answer times (INVITE to 200 OK: the
greeting starts with the answer) and what the flood got back. Asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

from bench.run import close_bench, open_bench
from bench.step import pct


def flood(url: str, stop: threading.Event, answers: Counter[int], seconds: list[float]) -> None:
    body = urllib.parse.urlencode({"name": "operator1", "password": "wrong-password"}).encode()
    while not stop.is_set():
        started = time.monotonic()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as resp:
                answers[resp.status] += 1
        except urllib.error.HTTPError as exc:
            answers[exc.code] += 1
        except OSError:
            answers[0] += 1
        seconds.append(time.monotonic() - started)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.login_flood", description=__doc__)
    p.add_argument("--rate", type=int, default=5, help="new 112 calls per second")
    p.add_argument("--calls", type=int, default=100, help="calls per step")
    p.add_argument("--threads", type=int, default=8, help="threads sending wrong passwords")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ivr112-flood-"))
    bench = open_bench(tmp, 1)
    try:
        s = bench.stack.settings
        url = f"http://{s.http_host}:{s.http_port}/console/login"
        quiet = bench.run_step("B", "ivr", args.rate, args.calls, 3000)
        stop, answers, seconds = threading.Event(), Counter[int](), list[float]()
        threads = [threading.Thread(target=flood, args=(url, stop, answers, seconds)) for _ in range(args.threads)]
        for t in threads:
            t.start()
        try:
            flooded = bench.run_step("B", "ivr", args.rate, args.calls, 3000)
        finally:
            stop.set()
            for t in threads:
                t.join()
    finally:
        close_bench(bench)
        shutil.rmtree(tmp, ignore_errors=True)
    for name, step in (("quiet", quiet), ("login flood", flooded)):
        print(f"{name:12s} calls {step.answered}/{step.attempted} answered, failed {step.failed}; answer ms "
              f"p50 {pct(step.answer_ms, 50):.0f} p95 {pct(step.answer_ms, 95):.0f} max {max(step.answer_ms, default=0):.0f}")
    print(f"flood: {sum(answers.values())} wrong passwords, answers {dict(answers)}; "
          f"answered in p50 {pct(seconds, 50) * 1000:.1f} ms, p95 {pct(seconds, 95) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

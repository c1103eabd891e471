"""Lambda start-up, warm latency and peak memory, measured side by side
under a minimal local Lambda Runtime API.

    python3 bench/lambda/runtime_bench.py --rounds N NAME=COMMAND...

For each command and round: start the process with AWS_LAMBDA_RUNTIME_API
pointing here; init is the time from process start to its first
GET /invocation/next. Then it is given WARM + 1 invocations; warm latency is
the median time from handing out an invocation to its answer, leaving out
the first. Peak RSS is the process's VmHWM. The last stdout line is JSON:
{NAME: {"init_ms", "warm_ms", "rss_mb"}} (init: best of the rounds).
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENT = json.dumps({"deployment": "not a record", "execution_id": "bench"}).encode()
WARM = 20


class Runtime:
    def __init__(self):
        self.started = 0.0
        self.first_poll = None
        self.handed = {}
        self.latencies = []
        self.remaining = WARM + 1
        self.done = threading.Event()
        self.lock = threading.Lock()


def make_handler(runtime):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            now = time.perf_counter()
            with runtime.lock:
                if runtime.first_poll is None:
                    runtime.first_poll = now
                if runtime.remaining == 0:
                    runtime.done.set()
                    give = False
                else:
                    runtime.remaining -= 1
                    give = True
            if not give:
                time.sleep(60)  # hold the poll open until the process is stopped
                return
            request_id = str(uuid.uuid4())
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(EVENT)))
            self.end_headers()
            with runtime.lock:
                runtime.handed[request_id] = time.perf_counter()
            self.wfile.write(EVENT)

        def do_POST(self):
            now = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            request_id = self.path.split("/")[-2]
            with runtime.lock:
                handed = runtime.handed.pop(request_id, None)
                if handed is not None:
                    runtime.latencies.append(now - handed)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(command):
    runtime = Runtime()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(runtime))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "STEPDEPLOY_DEPLOYMENT": "bench",
    })
    runtime.started = time.perf_counter()
    process = subprocess.Popen(shlex.split(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished = runtime.done.wait(timeout=60)
    rss = peak_rss_mb(process.pid) if process.poll() is None else 0.0
    process.kill()
    process.wait()
    server.shutdown()
    if not finished or runtime.first_poll is None:
        raise SystemExit(f"error: {command!r} did not poll the runtime API and answer {WARM + 1} invocations within 60 s")
    warm = sorted(runtime.latencies)[1:] if len(runtime.latencies) > 1 else runtime.latencies
    return {"init_ms": (runtime.first_poll - runtime.started) * 1000, "warm_ms": statistics.median(warm) * 1000, "rss_mb": rss}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    args = parser.parse_args()
    results = {}
    for spec in args.commands:
        name, command = spec.split("=", 1)
        rounds = [measure(command) for _ in range(args.rounds)]
        results[name] = {
            "init_ms": round(min(r["init_ms"] for r in rounds), 1),
            "init_ms_median": round(statistics.median(r["init_ms"] for r in rounds), 1),
            "warm_ms": round(statistics.median(r["warm_ms"] for r in rounds), 2),
            "rss_mb": round(max(r["rss_mb"] for r in rounds), 1),
        }
        r = results[name]
        print(f"{name}: init {r['init_ms']} ms (median {r['init_ms_median']}), warm {r['warm_ms']} ms, peak RSS {r['rss_mb']} MB")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""WeCom callbacks through the real HTTP endpoint (signature, AES decryption, parse, one receipt
INSERT), then the worker's inbox applying them, on PostgreSQL; and the old synchronous path
(applied inside the request) measured in the same run for the ratio.

    .venv/bin/python benchmarks/bench_wecom_callbacks.py [--seconds 15] [--old-events 1000]
        [--connections 32] [--web-workers 2] [--inbox-workers 1 2] [--database bench_wecom_callbacks]

THE DATABASE (default ``bench_wecom_callbacks``) IS DROPPED AND RECREATED. Needs ``wrk``
(``apt-get install -y wrk``).

Setup (not timed): a workspace with a configured WeCom app and 50 staff; distinct
``add_external_contact`` events (one new customer each) are encrypted and signed, one request a
line in a file. ``wrk`` (one thread, ``--connections`` keep-alive connections; C, so the client
takes little of the 2 cores) replays them through a Lua script that hands every request out
once, for ``--seconds``, against gunicorn with ``--web-workers`` processes in these runs (each
on its own slice of the pushes):

- the fast path, gthread: what ``siyu serve`` runs (``siyu.wsgi``, ``siyu.wecom.fastpath`` in
  front of Django; gthread with 4 threads as in ``cli.serve_wsgi``);
- the fast path with gunicorn's sync workers (no keep-alive);
- the same views through Django's full request stack (``benchmarks/_plain_wsgi.py``), gthread;
- the old path: Django's stack with the receipt applied inside the request
  (``benchmarks/_sync_settings.py``), ``--old-events`` other pushes.

1. endpoint events/s = the requests wrk completed / its run time. Afterwards every answer must
   have been 200 and the database must hold exactly one pending receipt per request;
2. inbox events/s: the first ``--inbox-events`` receipts (the others are deleted once checked)
   are split into one part per ``--inbox-workers`` entry; each
   part is released and applied by that many ``siyu wecom process-callbacks`` processes (one
   customer, relation and timeline event each), timed from process start to exit;
3. the old path's events/s, and each endpoint run's ratio to it;
4. a replay of 200 already-applied pushes (from the middle of the run) is acknowledged and
   changes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, SECRET, fresh_pg_database, machine, migrate, setup_django

CORP = "ww0123456789abcdef"
TOKEN = "benchToken2026"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
STAFF = 50
LUA = r"""
-- Hands out lines [lo, hi) of the request file in order, each once (``wrapped`` counts reuse).
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  local lo, hi = tonumber(args[2]), tonumber(args[3])
  mine, i, bad, wrapped = {}, 0, 0, 0
  local n = 0
  for line in io.lines(args[1]) do
    if n >= lo and n < hi then
      local path, body = line:match("^(%S+)\t(.*)$")
      table.insert(mine, wrk.format("POST", path, {["Content-Type"] = "text/xml"}, body))
    end
    n = n + 1
  end
end
function request()
  i = i + 1
  if i > #mine then wrapped = wrapped + 1; i = 1 end
  return mine[i]
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b, w = 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); w = w + t:get("wrapped") end
  io.write(string.format("BENCH non200=%d wrapped=%d p50_ms=%.2f p99_ms=%.2f\n",
    b, w, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def make_events(crypt, prefix: str, count: int, base: int) -> list[tuple[dict, bytes]]:
    from tests.fakes.wecom import encrypted_callback, event_xml

    out = []
    for n in range(count):
        xml = event_xml(
            CORP,
            "change_external_contact",
            "add_external_contact",
            create_time=base + n,
            UserID=f"staff{n % STAFF}",
            ExternalUserID=f"{prefix}{n:08d}",
            State=f"c{n % 7}",
            WelcomeCode=f"wc{prefix}{n}",
        )
        out.append(encrypted_callback(crypt, xml))
    return out


def write_requests(path: Path, url_path: str, events: list[tuple[dict, bytes]]) -> None:
    with path.open("w") as out:
        for query, body in events:
            out.write(f"{url_path}?{urlencode(query)}\t{body.decode()}\n")


GUNICORN = str(Path(sys.executable).parent / "gunicorn")
WORKER_CLASSES = {
    # What ``siyu serve`` runs (cli.serve_wsgi): gthread, 4 threads per process, keep-alive.
    "gthread": ["-k", "gthread", "--threads", "4"],
    # One request at a time per process, no keep-alive (wrk reconnects).
    "sync": ["-k", "sync"],
}
APPS = {
    "fastpath": "siyu.wsgi:application",  # what siyu serve serves: callbacks in front of Django
    "django": "benchmarks._plain_wsgi:application",  # the same views through Django's stack
}
# (label, worker class, app, settings module, request file)
RUNS = [
    ("endpoint, fast path, gthread", "gthread", "fastpath", "siyu.settings", "new"),
    ("endpoint, fast path, sync workers", "sync", "fastpath", "siyu.settings", "new"),
    ("endpoint through Django's stack, gthread", "gthread", "django", "siyu.settings", "new"),
    ("old path (applied in the request), gthread", "gthread", "django", "benchmarks._sync_settings", "old"),
]


def start_server(
    url: str, port: int, workers: int, settings: str, kind: str = "gthread", app: str = "fastpath"
) -> subprocess.Popen:
    import httpx

    env = {
        **os.environ,
        "SIYU_DATABASE_URL": url,
        "SIYU_SECRET_KEY": SECRET,
        "SIYU_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [GUNICORN, *WORKER_CLASSES[kind], "-w", str(workers), "-b", f"127.0.0.1:{port}", "--timeout", "120", APPS[app]],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with httpx.Client(timeout=5) as probe:
        for _ in range(150):
            try:
                probe.get(f"http://127.0.0.1:{port}/login/")
                return server
            except httpx.TransportError:
                time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def run_wrk(
    url: str, requests_file: Path, *, seconds: float, connections: int, lines: tuple[int, int]
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script.name, url, "--",
               str(requests_file), str(lines[0]), str(lines[1])]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or "BENCH" not in result.stdout:
        raise SystemExit(f"wrk failed: {result.stdout}\n{result.stderr}")
    output = result.stdout
    os.unlink(script.name)
    stats = dict(re.findall(r"(\w+)=([\d.]+)", output.split("BENCH", 1)[1]))
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(m?s)", output).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return {"requests": requests, "rate": rate, **{k: float(v) for k, v in stats.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15, help="Per endpoint run.")
    parser.add_argument("--old-events", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--inbox-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--inbox-events", type=int, default=4000, help="Receipts the inbox rounds apply.")
    parser.add_argument("--port", type=int, default=8191)
    parser.add_argument("--database", default="bench_wecom_callbacks")
    args = parser.parse_args()
    load_before = f"{os.getloadavg()[0]:.1f}"
    endpoint_runs = [run for run in RUNS if run[4] == "new"]
    per_run = int(args.seconds * 5000)  # more than one run can send

    url = fresh_pg_database(args.database)
    setup_django(url)
    migrate()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)

    from siyu.org.models import OrgUnit, Staff
    from siyu.org.services import create_workspace
    from siyu.wecom.crypto import MsgCrypt
    from siyu.wecom.services import configure_wecom

    workspaces = {}
    for slug in ("bench", "old"):
        ws = create_workspace(slug=slug, name=slug)
        hq = OrgUnit.objects.get(workspace=ws, kind=OrgUnit.Kind.HQ)
        Staff.objects.bulk_create(
            [Staff(workspace=ws, org_unit=hq, name=f"导购{n}", wecom_userid=f"staff{n}") for n in range(STAFF)]
        )
        configure_wecom(ws, corp_id=CORP, agent_id="1000002", secret="bench-secret", token=TOKEN, aes_key=AES_KEY)
        workspaces[slug] = ws
    crypt = MsgCrypt(TOKEN, AES_KEY, CORP)
    base = int(time.time())
    work = Path(tempfile.mkdtemp(prefix="bench_callbacks_"))
    started = time.perf_counter()
    new_events = make_events(crypt, "wmNew", per_run * len(endpoint_runs), base)
    old_events = make_events(crypt, "wmOld", args.old_events, base)
    write_requests(work / "new.txt", "/callbacks/wecom/bench/", new_events)
    write_requests(work / "old.txt", "/callbacks/wecom/old/", old_events)
    print(f"prepared {len(new_events):,} + {len(old_events):,} pushes in {time.perf_counter() - started:.1f} s")

    # Reference: the crypto alone, in this process.
    sample = new_events[:5000]
    started = time.perf_counter()
    for query, body in sample:
        encrypt = body.decode().split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        crypt.open(query["msg_signature"], query["timestamp"], query["nonce"], encrypt)
    crypto_rate = len(sample) / (time.perf_counter() - started)

    from django.utils import timezone

    from siyu.customers.models import Customer, StaffRelation
    from siyu.tracking.models import Event
    from siyu.wecom.models import CallbackReceipt

    base_url = f"http://127.0.0.1:{args.port}"
    bench = workspaces["bench"]
    receipts = CallbackReceipt.objects.filter(workspace=bench)
    # 1. the endpoint, per configuration, each on its own slice of the prepared pushes
    results = {}
    for n, (label, kind, app, settings, _) in enumerate(endpoint_runs):
        before = receipts.count()
        server = start_server(url, args.port, args.web_workers, settings, kind, app)
        try:
            result = run_wrk(
                base_url,
                work / "new.txt",
                seconds=args.seconds,
                connections=args.connections,
                lines=(n * per_run, (n + 1) * per_run),
            )
        finally:
            stop_server(server)
        result["stored"] = receipts.count() - before
        print(f"{label}: {result}", flush=True)
        assert result["non200"] == 0 and result["wrapped"] == 0, result
        # wrk counts answers; the requests still in flight when it stopped were stored too.
        assert result["requests"] <= result["stored"] <= result["requests"] + args.connections, result
        results[label] = result
    assert receipts.filter(processed_at__isnull=False).count() == 0
    replay_lines = (1000, 1200)  # applied by the time of the replay (inside the first run's slice)
    assert results[endpoint_runs[0][0]]["requests"] > replay_lines[1] + args.connections
    # The inbox applies the first --inbox-events receipts (checked above, the rest are dropped).
    keep = list(receipts.order_by("pk").values_list("pk", flat=True)[: args.inbox_events])
    receipts.exclude(pk__in=keep).delete()
    stored = receipts.count()

    # 2. the inbox: the receipts split into one part per round (rounds of 1, 2, ... processes)
    ids = list(receipts.order_by("pk").values_list("pk", flat=True))
    parts = [sorted(ids[i :: len(args.inbox_workers)]) for i in range(len(args.inbox_workers))]
    receipts.update(next_attempt_at=timezone.now() + dt.timedelta(days=1))  # nothing due until its round
    inbox_rates = {}
    env = {**os.environ, "SIYU_DATABASE_URL": url, "SIYU_SECRET_KEY": SECRET, "SIYU_LOG_LEVEL": "WARNING"}
    siyu_exe = str(Path(sys.executable).parent / "siyu")
    for workers, part in zip(args.inbox_workers, parts, strict=True):
        receipts.filter(pk__in=part).update(next_attempt_at=None)
        started = time.perf_counter()
        procs = [
            subprocess.Popen([siyu_exe, "wecom", "process-callbacks"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            for _ in range(workers)
        ]
        assert all(p.wait() == 0 for p in procs)
        seconds = time.perf_counter() - started
        inbox_rates[workers] = (len(part) / seconds, seconds, len(part))
        print(f"inbox, {workers} process(es): {inbox_rates[workers]}", flush=True)
        assert receipts.filter(pk__in=part, processed_at__isnull=True).count() == 0
    applied = (
        Customer.objects.filter(workspace=bench).count(),
        StaffRelation.objects.filter(workspace=bench).count(),
        Event.objects.filter(workspace=bench, name="wecom_friend_added").count(),
        receipts.filter(processed_at__isnull=False).count(),
    )
    assert applied == (stored,) * 4, applied

    # 3. the old synchronous path
    old_label, kind, app, settings, _ = RUNS[-1]
    server = start_server(url, args.port, args.web_workers, settings, kind, app)
    try:
        # Short enough that no push is sent twice at the old rate (checked: wrapped == 0).
        old = run_wrk(
            base_url,
            work / "old.txt",
            seconds=max(3.0, args.old_events / 250),
            connections=args.connections,
            lines=(0, args.old_events),
        )
    finally:
        stop_server(server)
    print(f"{old_label}: {old}", flush=True)
    assert old["non200"] == 0 and old["wrapped"] == 0, old

    # 4. a replay of 200 applied pushes (each answered, nothing new)
    before = (CallbackReceipt.objects.count(), Customer.objects.count(), Event.objects.count())
    lines = (work / "new.txt").read_text().splitlines()[replay_lines[0] : replay_lines[1]]
    (work / "replay.txt").write_text("\n".join(lines) + "\n")
    server = start_server(url, args.port, args.web_workers, "siyu.settings")
    try:
        replay = _replay(base_url, work / "replay.txt")
    finally:
        stop_server(server)
    assert replay == [200] * 200
    after = (CallbackReceipt.objects.count(), Customer.objects.count(), Event.objects.count())
    assert before == after, (before, after)

    print()
    print(f"machine: {machine()}; PostgreSQL; {args.web_workers} gunicorn processes; wrk 1 thread, "
          f"{args.connections} connections; server, database and client share the cores; "
          f"load average before the run {load_before}")  # fmt: skip
    for label, result in results.items():
        print(f"{label:48} {result['rate']:7,.0f} events/s  ({int(result['requests']):,} distinct events in "
              f"{args.seconds:.0f} s; p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms)")  # fmt: skip
    print(f"{old_label:48} {old['rate']:7,.0f} events/s  ({int(old['requests']):,} events; "
          f"p50 {old['p50_ms']:.1f} ms)")  # fmt: skip
    for label, result in results.items():
        print(f"  {label} vs old path: {result['rate'] / old['rate']:.1f}x")
    for workers, (rate, seconds, count) in inbox_rates.items():
        print(f"inbox applying them, {workers} process(es)             {rate:7,.0f} events/s  "
              f"({count:,} events in {seconds:.1f} s, process start included)")  # fmt: skip
    print(f"reference, signature + decryption alone, 1 process: {crypto_rate:,.0f} events/s")
    print("checked: every answer 200; one receipt per request; each applied once (customer, relation, "
          "timeline event); a replay of 200 applied pushes stored nothing")  # fmt: skip


def _replay(base_url: str, requests_file: Path) -> list[int]:
    import httpx

    codes = []
    with httpx.Client(timeout=10) as client:
        for line in requests_file.read_text().splitlines():
            path, body = line.split("\t", 1)
            codes.append(client.post(base_url + path, content=body.encode()).status_code)
    return codes


if __name__ == "__main__":
    main()

"""WeCom callbacks through the real HTTP endpoint (signature, AES decryption, parse, one receipt
INSERT), then the worker's inbox applying them, on PostgreSQL; and the old synchronous path
(applied inside the request) measured in the same run for the ratio.

    .venv/bin/python benchmarks/bench_wecom_callbacks.py [--seconds 15] [--old-events 1000]
        [--connections 32] [--web-workers 2] [--threads 16] [--inbox-workers 1 2]
        [--baseline-ref GIT_REV] [--rounds 1] [--database bench_wecom_callbacks]

THE DATABASE (default ``bench_wecom_callbacks``) IS DROPPED AND RECREATED. Needs ``wrk``
(``apt-get install -y wrk``).

Setup (not timed): a workspace with a configured WeCom app and 50 staff; distinct
``add_external_contact`` events (one new customer each) are encrypted and signed, one request a
line in a file. ``wrk`` (one thread, ``--connections`` keep-alive connections; C, so the client
takes little of the 2 cores) replays them through a Lua script that hands every request out
once, for ``--seconds``, against gunicorn with ``--web-workers`` processes in these runs (each
on its own slice of the pushes):

- with ``--baseline-ref``: the endpoint as it was at that git revision (its ``src`` exported with
  ``git archive``, served with 4 threads per process as ``siyu serve`` did then), for the
  before/after figures of the same run;
- the fast path, gthread: what ``siyu serve`` runs (``siyu.wsgi``, ``siyu.wecom.fastpath`` in
  front of Django; gthread with ``--threads`` threads as in ``cli.serve_wsgi``); the request
  threads of a process share each receipt INSERT and its commit (``siyu.wecom.receipts``);
- the same with group commit off (``benchmarks._no_group_commit_settings``): one INSERT and
  one commit per push;
- the fast path with gunicorn's sync workers (no keep-alive);
- the same views through Django's full request stack (``benchmarks/_plain_wsgi.py``), gthread;
- the old path: Django's stack with the receipt applied inside the request
  (``benchmarks/_sync_settings.py``), ``--old-events`` other pushes.

1. endpoint events/s = the requests wrk completed / its run time. Afterwards every answer must
   have been 200 and the database must hold exactly one pending receipt per request. Each run
   also reports the CPU time per event of the gunicorn workers and of the PostgreSQL backends
   serving them (from /proc; less sensitive to other load on the machine than events/s), and
   the commits per event (``pg_stat_database.xact_commit``: 1 without group commit, 1 / the
   mean batch with it). ``--rounds`` repeats the endpoint runs (in turn, on fresh pushes) and
   reports each run and the median;
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
import itertools
import os
import re
import statistics
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


def make_events(crypt, prefix: str, count: int, base: int):
    """``count`` distinct encrypted pushes (query, body), one at a time."""
    from tests.fakes.wecom import encrypted_callback, event_xml

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
        yield encrypted_callback(crypt, xml)


def write_requests(path: Path, url_path: str, events) -> None:
    with path.open("w") as out:
        for query, body in events:
            out.write(f"{url_path}?{urlencode(query)}\t{body.decode()}\n")


TIMEOUT = ["--timeout", "120"]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
WORKER_CLASSES = {
    # What ``siyu serve`` runs (cli.serve_wsgi): gthread, --threads per process, keep-alive.
    "gthread": ["-k", "gthread", "--threads", "{threads}"],
    # What ``siyu serve`` ran before group commit: 4 threads per process.
    "gthread4": ["-k", "gthread", "--threads", "4"],
    # One request at a time per process, no keep-alive (wrk reconnects).
    "sync": ["-k", "sync"],
}
APPS = {
    "fastpath": "siyu.wsgi:application",  # what siyu serve serves: callbacks in front of Django
    "django": "benchmarks._plain_wsgi:application",  # the same views through Django's stack
}
# (label, worker class, app, settings module, request file); "baseline" runs the --baseline-ref code
NO_GROUP_COMMIT = "benchmarks._no_group_commit_settings"
BASELINE_LABEL = "endpoint before (baseline ref), gthread 4 threads"
RUNS = [
    (BASELINE_LABEL, "gthread4", "fastpath", "siyu.settings", "baseline"),
    ("endpoint, fast path, gthread", "gthread", "fastpath", "siyu.settings", "new"),
    ("endpoint, fast path, gthread, group commit off", "gthread", "fastpath", NO_GROUP_COMMIT, "new"),
    ("endpoint, fast path, sync workers", "sync", "fastpath", "siyu.settings", "new"),
    ("endpoint through Django's stack, gthread", "gthread", "django", "siyu.settings", "new"),
    ("old path (applied in the request), gthread", "gthread", "django", "benchmarks._sync_settings", "old"),
]


def start_server(
    url: str,
    port: int,
    workers: int,
    settings: str,
    kind: str = "gthread",
    app: str = "fastpath",
    *,
    threads: int = 16,
    src: Path | None = None,
) -> subprocess.Popen:
    """gunicorn serving ``app``; ``src``: another checkout's ``src`` (the baseline) instead of ours."""
    import httpx

    env = {
        **os.environ,
        "SIYU_DATABASE_URL": url,
        "SIYU_SECRET_KEY": SECRET,
        "SIYU_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": settings,
        # Before the editable install's path (.pth): the baseline's siyu is imported, not ours.
        "PYTHONPATH": f"{src}{os.pathsep}{ROOT}" if src else str(ROOT),
    }
    worker_class = [arg.format(threads=threads) for arg in WORKER_CLASSES[kind]]
    server = subprocess.Popen(
        # --preload: as siyu serve, which imports the application before gunicorn forks its
        # workers (and no worker's start-up is counted in a run's CPU time).
        [GUNICORN, *worker_class, "--preload", "-w", str(workers), "-b", f"127.0.0.1:{port}", *TIMEOUT, APPS[app]],
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
    parser.add_argument("--threads", type=int, default=16, help="gthread threads per process (cli.serve_wsgi).")
    parser.add_argument("--baseline-ref", default="", help="Also run the endpoint of this git revision.")
    parser.add_argument("--rounds", type=int, default=1, help="Rounds of the gthread endpoint runs.")
    args = parser.parse_args()
    load_before = f"{os.getloadavg()[0]:.1f}"
    runs = [run for run in RUNS if run[4] == "new" or (run[4] == "baseline" and args.baseline_ref)]
    # In turn, round after round (the machine's other load changes over a run); sync and
    # Django's stack once.
    schedule = [run for r in range(args.rounds) for run in runs if r == 0 or run[1].startswith("gthread")]
    per_run = int(args.seconds * 4000)  # more than one run can send (checked: nothing sent twice)
    baseline_src = export_src(args.baseline_ref) if args.baseline_ref else None

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
    new_count = per_run * len(schedule)
    write_requests(work / "new.txt", "/callbacks/wecom/bench/", make_events(crypt, "wmNew", new_count, base))
    write_requests(work / "old.txt", "/callbacks/wecom/old/", make_events(crypt, "wmOld", args.old_events, base))
    print(f"prepared {new_count:,} + {args.old_events:,} pushes in {time.perf_counter() - started:.1f} s")

    # Reference: the crypto alone, in this process.
    sample = list(make_events(crypt, "wmRef", 5000, base))
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
    # 1. the endpoint, per configuration, each run on its own slice of the prepared pushes
    results: dict[str, list[dict[str, float]]] = {}
    for n, (label, kind, app, settings, source) in enumerate(schedule):
        before = receipts.count()
        src = baseline_src if source == "baseline" else None
        server = start_server(url, args.port, args.web_workers, settings, kind, app, threads=args.threads, src=src)
        cpu = CpuMeter(server, args.database)
        try:
            cpu.start()
            result = run_wrk(
                base_url,
                work / "new.txt",
                seconds=args.seconds,
                connections=args.connections,
                lines=(n * per_run, (n + 1) * per_run),
            )
            cpu.stop()
        finally:
            stop_server(server)
        cpu.count_commits()
        result["stored"] = receipts.count() - before
        result.update(cpu.per_event(result["stored"]))
        print(f"{label}: {result}", flush=True)
        assert result["non200"] == 0 and result["wrapped"] == 0, result
        # wrk counts answers; the requests still in flight when it stopped were stored too.
        assert result["requests"] <= result["stored"] <= result["requests"] + args.connections, result
        results.setdefault(label, []).append(result)
    assert receipts.filter(processed_at__isnull=False).count() == 0
    replay_lines = (1000, 1200)  # applied by the time of the replay (inside the first run's slice)
    assert results[schedule[0][0]][0]["requests"] > replay_lines[1] + args.connections
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
    with (work / "new.txt").open() as requests_file:
        lines = list(itertools.islice(requests_file, *replay_lines))
    (work / "replay.txt").write_text("".join(lines))
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
    if args.baseline_ref:
        print(f"baseline: {args.baseline_ref} (git revision), 4 threads per process; now {args.threads} threads")
    for label, runs_of_label in results.items():
        rates = ", ".join(f"{r['rate']:,.0f}" for r in runs_of_label)
        result = {key: statistics.median(r[key] for r in runs_of_label) for key in runs_of_label[0]}
        results[label] = [result]
        print(f"{label:52} {result['rate']:7,.0f} events/s (median of {rates}; {int(result['requests']):,} distinct "
              f"events in {args.seconds:.0f} s; p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms)")  # fmt: skip
        print(f"{'':52} CPU per event: web {result['web_ms']:.3f} ms, PostgreSQL {result['pg_ms']:.3f} ms; "
              f"commits per event {result['commits']:.2f}")  # fmt: skip
    print(f"{old_label:52} {old['rate']:7,.0f} events/s  ({int(old['requests']):,} events; "
          f"p50 {old['p50_ms']:.1f} ms)")  # fmt: skip
    for label, (result,) in results.items():
        print(f"  {label} vs old path: {result['rate'] / old['rate']:.1f}x")
    for workers, (rate, seconds, count) in inbox_rates.items():
        print(f"inbox applying them, {workers} process(es)             {rate:7,.0f} events/s  "
              f"({count:,} events in {seconds:.1f} s, process start included)")  # fmt: skip
    print(f"reference, signature + decryption alone, 1 process: {crypto_rate:,.0f} events/s")
    print("checked: every answer 200; one receipt per request; each applied once (customer, relation, "
          "timeline event); a replay of 200 applied pushes stored nothing")  # fmt: skip


def export_src(ref: str) -> Path:
    """The ``src`` folder of git revision ``ref``, exported to a temporary folder (the work tree
    and the repository are left alone)."""
    target = Path(tempfile.mkdtemp(prefix="bench_callbacks_baseline_"))
    archive = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


class CpuMeter:
    """CPU seconds of the gunicorn workers and of ``database``'s PostgreSQL backends between
    ``start`` and ``stop`` (the same machine: read from /proc), and the database's commits up to
    ``count_commits`` (called once the server stopped: backends report them when they exit)."""

    BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"

    def __init__(self, server: subprocess.Popen, database: str) -> None:
        import psycopg
        from benchmarks._common import PG_ADMIN_URL

        self.database = database
        self.admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
        found = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout
        self.workers = [int(pid) for pid in found.split()]
        self.web = self.pg = 0.0
        self.commits = 0

    def start(self) -> None:
        self.web0 = {pid: _cpu_seconds(pid) for pid in self.workers}
        self.pg0 = {pid: _cpu_seconds(pid) for (pid,) in self.admin.execute(self.BACKENDS, [self.database])}
        self.commits0 = self.admin.execute(self.COMMITS, [self.database]).fetchone()[0]

    def stop(self) -> None:
        self.web = sum(_cpu_seconds(pid) - self.web0[pid] for pid in self.workers)
        backends = self.admin.execute(self.BACKENDS, [self.database]).fetchall()
        self.pg = sum(_cpu_seconds(pid) - self.pg0.get(pid, 0.0) for (pid,) in backends)

    def count_commits(self) -> None:
        time.sleep(0.5)
        self.admin.execute("SELECT pg_stat_clear_snapshot()")
        self.commits = self.admin.execute(self.COMMITS, [self.database]).fetchone()[0] - self.commits0
        self.admin.close()

    def per_event(self, events: int) -> dict[str, float]:
        n = max(events, 1)
        return {"web_ms": self.web / n * 1e3, "pg_ms": self.pg / n * 1e3, "commits": self.commits / n}


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

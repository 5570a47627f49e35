"""The ``siyu`` command: everything a user runs. Commands parse arguments and call services."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


def setup_django(*, db: str | None = None, demo: bool = False) -> None:
    """Point Django at our settings (and, for ``--db``, at an SQLite file) and start it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    if db:
        os.environ["SIYU_DATABASE_URL"] = f"sqlite:///{Path(db).expanduser().resolve()}"
    if demo:
        os.environ["SIYU_DEMO"] = "1"
    import django

    django.setup()


def run_migrations(verbosity: int = 0) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


@click.group()
@click.version_option(package_name="siyu")
def main() -> None:
    """siyu (私域): private-domain traffic operations."""


@main.command()
@click.option("--customers", "n_customers", default=50_000, show_default=True, type=click.IntRange(min=10))
@click.option("--seed", default=42, show_default=True, type=int, help="Same seed, same brand.")
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite file to write (default: ./siyu-demo.sqlite3).")
@click.option("--no-serve", is_flag=True, help="Only build the data, then exit.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(n_customers: int, seed: int, db: str | None, no_serve: bool, host: str, port: int) -> None:
    """Build a realistic synthetic cosmetics brand (workspace 'demo') and serve the console."""
    if db is None and not os.environ.get("SIYU_DATABASE_URL"):
        db = "siyu-demo.sqlite3"
    setup_django(db=db, demo=True)
    from siyu.demo.services import build_demo

    click.echo("迁移数据库 / migrating database ...")
    run_migrations()
    from siyu.core.errors import DomainError

    try:
        login = build_demo(n_customers=n_customers, seed=seed, echo=click.echo)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo("")
    click.echo(f"Demo workspace 'demo' is ready: {n_customers:,} customers.")
    click.echo(f"Console: http://{host}:{port}/")
    click.echo(f"Login:   {login.username} / {login.password}")
    for persona in login.others:
        click.echo(f"         {persona}")
    if not no_serve:
        serve_wsgi(host=host, port=port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="Web worker processes (default: SIYU_WEB_WORKERS or 2).")
def serve(host: str, port: int, workers: int | None) -> None:
    """Serve the console and API with gunicorn."""
    setup_django()
    serve_wsgi(host=host, port=port, workers=workers)


def serve_wsgi(*, host: str, port: int, workers: int | None = None) -> None:
    from gunicorn.app.base import BaseApplication

    from siyu.wsgi import application

    n_workers = workers or int(os.environ.get("SIYU_WEB_WORKERS", "2"))

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", n_workers)
            self.cfg.set("worker_class", "gthread")
            # Callback pushes share their receipt INSERT among a process's request threads
            # (siyu.wecom.receipts): more threads, bigger batches under load.
            self.cfg.set("threads", int(os.environ.get("SIYU_WEB_THREADS", "16")))
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", "-" if os.environ.get("SIYU_ACCESS_LOG") else None)

        def load(self):  # type: ignore[no-untyped-def]
            return application

    click.echo(f"Serving on http://{host}:{port}/  (Ctrl+C to stop)")
    Server().run()


@main.command()
@click.option("--queue", "queues", multiple=True, default=["default"], show_default=True)
@click.option("--batch", is_flag=True, help="Process what is queued, then exit.")
@click.option("--no-dispatch", is_flag=True, help="Only run tasks; leave the outbox to `siyu dispatch` processes.")
def worker(queues: tuple[str, ...], batch: bool, no_dispatch: bool) -> None:
    """Run background tasks (segment refresh, imports) and the outbox dispatcher.

    Start as many as you like against PostgreSQL: tasks and outbox rows are claimed with
    SKIP LOCKED, so workers share the work and never send the same message twice.
    """
    import threading

    setup_django()
    from django.core.management import call_command

    from siyu.core import schedule
    from siyu.messaging import dispatch
    from siyu.wecom import inbox

    stop = threading.Event()
    threads: list[threading.Thread] = []
    if not batch:
        # Periodic jobs (reconciliation, result polling, housekeeping): see siyu.core.schedule.
        threads.append(threading.Thread(target=schedule.run_forever, args=(stop,), name="scheduler", daemon=True))
    if not no_dispatch and not batch:
        threads.append(threading.Thread(target=dispatch.run_forever, args=(stop,), name="dispatcher", daemon=True))
    if not batch:
        # WeCom / Official Account callbacks the endpoints stored (polled every 0.2 s).
        threads.append(threading.Thread(target=inbox.run_forever, args=(stop,), name="callbacks", daemon=True))
    else:
        inbox.process_all()  # before the tasks, so the welcome messages they queue go out too
    for thread in threads:
        thread.start()
    args = ["--queue-name", ",".join(queues)]
    if batch:
        args.append("--batch")
    try:
        call_command("db_worker", *args)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    if batch and not no_dispatch:
        _dispatch_until_idle()


def _dispatch_until_idle(batch_size: int = 5000) -> None:
    from siyu.messaging import dispatch

    worker_id = dispatch.worker_name()
    total = dispatch.Stats()
    while True:
        stats = dispatch.run_once(worker_id, batch=batch_size)
        total.add(stats)
        if stats.claimed == 0 and stats.recovered == 0:
            break
    click.echo(
        f"dispatched: {total.delivered + total.sent:,} sent, {total.suppressed:,} suppressed, "
        f"{total.held:,} held, {total.retried:,} to retry, {total.failed:,} failed, {total.unknown:,} unknown"
    )


@main.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--batch", "batch_size", default=5000, show_default=True, type=click.IntRange(min=1, max=50_000))
def dispatch(once: bool, batch_size: int) -> None:
    """Run only the outbox dispatcher (claim, gate, render, send, record)."""
    setup_django()
    from siyu.messaging import dispatch as outbox

    if once:
        _dispatch_until_idle(batch_size)
        return
    outbox.run_forever(batch=batch_size)


@main.group()
def jobs() -> None:
    """Periodic jobs (the worker runs them; these commands inspect or run them by hand)."""


@jobs.command("list")
def jobs_list() -> None:
    """Every periodic job, how often it runs and how it last went."""
    setup_django()
    from siyu.core import schedule
    from siyu.core.models import PeriodicRun

    runs = {r.key: r for r in PeriodicRun.objects.all()}
    for name, job_ in sorted(schedule.jobs().items()):
        run = runs.get(name)
        last = (
            "never"
            if run is None or run.last_finished_at is None
            else run.last_finished_at.isoformat(timespec="seconds")
        )
        state = "" if run is None or run.last_ok is None else ("ok" if run.last_ok else f"FAILED: {run.last_error}")
        click.echo(f"{name:40} every {int(job_.every):>6} s   last {last} {state}")


@jobs.command("run")
@click.argument("names", nargs=-1)
def jobs_run(names: tuple[str, ...]) -> None:
    """Run the named jobs now (default: every job that is due)."""
    setup_django()
    from siyu.core import schedule

    registered = schedule.jobs()
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise click.ClickException(f"unknown job(s): {', '.join(unknown)}; see siyu jobs list")
    if names:
        for name in names:
            ok, result = schedule.run_job(registered[name])
            click.echo(f"{name}: {'ok' if ok else 'failed'} {result if ok else ''}")
        return
    for name, result in schedule.run_due().items():
        click.echo(f"{name}: {result}")


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    setup_django()
    run_migrations(verbosity=1)


@main.command()
@click.option("--username", prompt=True)
@click.option("--email", default="")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--workspace", "workspace_slug", default=None, help="Also make the user owner of this workspace.")
def createadmin(username: str, email: str, password: str, workspace_slug: str | None) -> None:
    """Create a superuser (Django admin + every workspace as owner)."""
    setup_django()
    from siyu.org.services import create_admin

    create_admin(username=username, email=email, password=password, workspace_slug=workspace_slug)
    click.echo(f"Created admin {username}.")


@main.group()
def workspace() -> None:
    """Manage workspaces (one per brand)."""


@workspace.command("create")
@click.option("--slug", required=True, help="Short id used in URLs and commands, e.g. mybrand.")
@click.option("--name", required=True, help="Display name, e.g. 花漾美妆.")
@click.option("--time-zone", default="Asia/Shanghai", show_default=True)
def workspace_create(slug: str, name: str, time_zone: str) -> None:
    """Create a workspace with its HQ org unit."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.org.services import create_workspace

    try:
        create_workspace(slug=slug, name=name, time_zone=time_zone)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Created workspace '{slug}'.")


@main.group()
def apikey() -> None:
    """Manage API keys."""


@apikey.command("create")
@click.option("--workspace", "workspace_slug", required=True)
@click.option("--name", default="cli", show_default=True)
def apikey_create(workspace_slug: str, name: str) -> None:
    """Create an API key; the key is printed once, as the last line."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.org.services import create_api_key

    try:
        _, raw_key = create_api_key(workspace_slug=workspace_slug, name=name)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"API key for workspace '{workspace_slug}' (shown once, store it now):", err=True)
    click.echo(raw_key)


@main.group()
def layers() -> None:
    """Customer layers: RFM, lifecycle, the 1-9-90 community pyramid."""


@layers.command("recompute")
@click.option("--workspace", "workspace_slug", required=True)
def layers_recompute(workspace_slug: str) -> None:
    """Recompute every customer's layers now (run it daily from cron, or let the worker do it)."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.org.services import get_workspace
    from siyu.segments.layers import recompute_layers

    try:
        report = recompute_layers(get_workspace(workspace_slug))
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{report.customers:,} customers layered, {report.changed:,} changed, in {report.seconds:.1f}s")
    for title, counts in (("RFM", report.rfm_cells), ("lifecycle", report.lifecycles)):
        click.echo(f"  {title}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    click.echo("  community: " + ", ".join(f"{k} {v:,}" for k, v in sorted(report.community_tiers.items())))


@main.group()
def segments() -> None:
    """Segments: keep materialised membership fresh."""


@segments.command("refresh")
@click.option("--workspace", "workspace_slug", default=None, help="One workspace (default: all).")
@click.option("--full", is_flag=True, help="Rebuild every segment instead of re-evaluating what changed.")
@click.option("--every", type=click.IntRange(min=1), default=None, help="Repeat every N seconds (a scheduler loop).")
@click.option("--with-layers", is_flag=True, help="Also recompute layers once per local day, before refreshing.")
def segments_refresh(workspace_slug: str | None, full: bool, every: int | None, with_layers: bool) -> None:
    """Refresh segments now; with --every, keep doing it (rolling windows move on at local midnight)."""
    import time

    setup_django()
    from django.db.models import Max

    from siyu.core import clock
    from siyu.segments.models import CustomerLayer

    def layers_day(ws):
        last = CustomerLayer.objects.filter(workspace=ws).aggregate(at=Max("computed_at"))["at"]
        return local_today(ws, last) if last else None

    from siyu.core.errors import DomainError
    from siyu.org.models import Workspace
    from siyu.org.services import get_workspace
    from siyu.segments.layers import recompute_layers
    from siyu.segments.services import local_today, refresh_workspace

    while True:
        try:
            workspaces = [get_workspace(workspace_slug)] if workspace_slug else list(Workspace.objects.order_by("pk"))
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        for ws in workspaces:
            if with_layers and layers_day(ws) != local_today(ws, clock.now()):
                layered = recompute_layers(ws)
                click.echo(f"{ws.slug}: layers for {layered.customers:,} customers in {layered.seconds:.1f}s")
            report = refresh_workspace(ws, full=full)
            click.echo(
                f"{ws.slug}: {len(report.segments)} segments, {report.changed_customers:,} changed customers, "
                f"+{report.entered:,} / -{report.exited:,} members in {report.seconds:.2f}s"
            )
        if every is None:
            return
        time.sleep(every)


@main.command("import")
@click.argument("kind", type=click.Choice(["customers", "orders", "events"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--workspace", "workspace_slug", required=True)
@click.option(
    "--errors", "errors_path", type=click.Path(dir_okay=False), help="Write the row-by-row error report here (CSV)."
)
def import_(kind: str, file: str, workspace_slug: str, errors_path: str | None) -> None:
    """Import customers, orders or events from a CSV file (columns: see README)."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.tracking.imports import import_csv

    try:
        report = import_csv(kind=kind, path=Path(file), workspace_slug=workspace_slug, progress=True)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{report.accepted:,} rows imported, {len(report.errors):,} rows rejected.")
    for error in report.errors[:20]:
        click.echo(f"  row {error.row}: {error.field}: {error.message}", err=True)
    if len(report.errors) > 20:
        click.echo(f"  ... and {len(report.errors) - 20:,} more", err=True)
    if errors_path:
        report.write_errors(Path(errors_path))
        click.echo(f"Error report written to {errors_path}")
    if report.errors and report.accepted == 0:
        sys.exit(1)


# ---- WeCom and Official Account (issue #5) ---------------------------------------------------


@main.group()
def wecom() -> None:
    """WeCom (企业微信): configure the self-built app and check the setup."""


@wecom.command("configure")
@click.option("--workspace", "workspace_slug", required=True)
@click.option("--corp-id", required=True, help="我的企业 → 企业信息 → 企业ID")
@click.option("--agent-id", required=True, help="The self-built app's AgentId.")
@click.option("--secret", required=True, help="The self-built app's Secret (stored encrypted).")
@click.option("--token", required=True, help="Callback Token: 1-32 letters or digits.")
@click.option("--aes-key", required=True, help="Callback EncodingAESKey: 43 letters or digits.")
@click.option("--base-url", default=None, help="API base URL (default https://qyapi.weixin.qq.com).")
def wecom_configure(
    workspace_slug: str, corp_id: str, agent_id: str, secret: str, token: str, aes_key: str, base_url: str | None
) -> None:
    """Store the WeCom app and print the callback URL to paste into WeCom."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.org.services import get_workspace
    from siyu.wecom.services import callback_url, configure_wecom

    try:
        workspace = get_workspace(workspace_slug)
        app = configure_wecom(
            workspace,
            corp_id=corp_id,
            agent_id=agent_id,
            secret=secret,
            token=token,
            aes_key=aes_key,
            base_url=base_url,
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"已保存企业微信应用 {app.corp_id}/{app.agent_id}（Secret {app.secret_hint}）/ WeCom app saved.")
    click.echo("在自建应用「接收消息 → 设置API接收」填写 / paste into the app's API receiving settings:")
    click.echo(f"  URL:            {callback_url('wecom', workspace)}")
    click.echo(f"  Token:          {token}")
    click.echo(f"  EncodingAESKey: {aes_key}")
    click.echo("然后运行 / then run: siyu wecom check --workspace " + workspace.slug)


@wecom.command("sync")
@click.option("--workspace", "workspace_slug", required=True)
def wecom_sync(workspace_slug: str) -> None:
    """Reconcile staff, customers, relations, tags and groups with WeCom and report what was fixed."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.wecom.sync import reconcile_workspace

    try:
        report = reconcile_workspace(workspace_slug)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    for line in report.lines():
        click.echo(line)
    if report.status != "ok":
        sys.exit(1)


@wecom.command("transfer")
@click.option("--workspace", "workspace_slug", required=True)
@click.option("--from", "from_userid", required=True, help="The handover member's WeCom userid.")
@click.option("--to", "to_userids", required=True, help="Takeover userid(s), comma-separated: shared evenly.")
@click.option("--resigned", is_flag=True, help="离职继承: the member has left (marked left here too).")
@click.option("--message", default="", help="On-job only: sent to each customer on success (≤200).")
@click.option("--dry-run", is_flag=True, help="Only show who would move to whom and who is blocked.")
def wecom_transfer(
    workspace_slug: str, from_userid: str, to_userids: str, resigned: bool, message: str, dry_run: bool
) -> None:
    """Hand a staff member's WeCom customers to colleagues (在职转接 / 离职继承)."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.handover.cli import transfer

    try:
        lines = transfer(workspace_slug, from_userid, to_userids, resigned=resigned, message=message, dry_run=dry_run)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    for line in lines:
        click.echo(line)


@wecom.command("process-callbacks")
@click.option(
    "--retry-failed", "retry_workspace", default=None, help="Workspace slug: requeue its failed receipts first."
)
def wecom_process_callbacks(retry_workspace: str | None) -> None:
    """Apply the stored WeCom / Official Account callbacks that are due, then exit
    (``siyu worker`` does this continuously)."""
    setup_django()
    from siyu.org.services import get_workspace
    from siyu.wecom import inbox

    if retry_workspace:
        click.echo(f"重新排队 / requeued: {inbox.retry_failed(get_workspace(retry_workspace))}")
    stats = inbox.process_all()
    click.echo(
        f"已处理 / applied: {stats.processed}, 待重试 / to retry: {stats.retrying}, 失败 / failed: {stats.failed}"
    )


@wecom.command("check")
@click.option("--workspace", "workspace_slug", required=True)
def wecom_check(workspace_slug: str) -> None:
    """Tell exactly what is wrong with the WeCom setup (secret, permission, IP, callback URL)."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.wecom.errcodes import explain
    from siyu.wecom.services import check_workspace

    try:
        report = check_workspace(workspace_slug)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    for item in map(explain, report.items):
        mark = "✓" if item.ok else "✗"
        code = f" [errcode {item.errcode}]" if item.errcode is not None else ""
        click.echo(f"{mark} {item.key}{code}: {item.message_zh}")
        click.echo(f"  {item.message_en}")
        if item.detail and not item.ok:
            click.echo(f"  WeCom: {item.detail}")
    if not report.ok:
        sys.exit(1)
    click.echo("企业微信配置正常 / WeCom setup is OK.")


@main.group("oa")
def official_account() -> None:
    """WeChat Official Account (公众号): configure the account's server settings."""


@official_account.command("configure")
@click.option("--workspace", "workspace_slug", required=True)
@click.option("--app-id", required=True)
@click.option("--secret", required=True, help="AppSecret (stored encrypted).")
@click.option("--token", required=True, help="Server Token: 1-32 letters or digits.")
@click.option("--aes-key", default="", help="EncodingAESKey for safe mode (43 letters or digits); omit for plaintext.")
def oa_configure(workspace_slug: str, app_id: str, secret: str, token: str, aes_key: str) -> None:
    """Store the Official Account and print the server URL to paste into its console."""
    setup_django()
    from siyu.core.errors import DomainError
    from siyu.org.services import get_workspace
    from siyu.wecom.services import callback_url, configure_oa

    try:
        workspace = get_workspace(workspace_slug)
        app = configure_oa(workspace, app_id=app_id, secret=secret, token=token, aes_key=aes_key)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    mode = "安全模式 / safe mode" if app.encrypted else "明文模式 / plaintext mode"
    click.echo(f"已保存公众号 {app.app_id}（{mode}）/ Official Account saved.")
    click.echo("在「设置与开发 → 基本配置 → 服务器配置」填写 / paste into the server settings:")
    click.echo(f"  URL:   {callback_url('oa', workspace)}")
    click.echo(f"  Token: {token}")
    if aes_key:
        click.echo(f"  EncodingAESKey: {aes_key}")


if __name__ == "__main__":
    main()

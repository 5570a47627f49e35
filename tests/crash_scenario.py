"""Setup and inspection for test_dispatch_processes.py, run in a subprocess against its own
database (SIYU_DATABASE_URL), so real worker processes can share it.

    python tests/crash_scenario.py setup <fake url> <n messages> <distinct templates: 0|1>
    python tests/crash_scenario.py report
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    from django.core.management import call_command

    command = sys.argv[1]
    if command == "setup":
        call_command("migrate", interactive=False, verbosity=0)
        setup(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")
    elif command == "report":
        report()


def setup(fake_url: str, n: int, distinct_templates: bool) -> None:
    from django.utils import timezone

    from siyu.channels.services import create_account
    from siyu.customers.models import Customer, Identity
    from siyu.messaging.services import NewMessage, enqueue
    from siyu.org.services import create_workspace

    ws = create_workspace(slug="crash", name="Crash test")
    now = timezone.now()
    account = create_account(
        ws,
        name="aliyun",
        provider="aliyun_sms",
        medium="sms",
        settings={"endpoint": fake_url, "sign_name": "阿里云短信测试"},
        secrets={"access_key_id": "LTAI5tFakeKeyId", "access_key_secret": "fake-access-key-secret"},
        rate_per_second=1000,
    )
    messages = []
    for i in range(n):
        customer = Customer.objects.create(workspace=ws, name=f"c{i}", created_at=now, updated_at=now)
        Identity.objects.create(workspace=ws, customer=customer, type="phone", value=f"1380000{i:04d}", created_at=now)
        template = f"SMS_{1000 + i}" if distinct_templates else "SMS_1000"
        messages.append(
            NewMessage(customer.pk, f"order-{i}", "您的订单已发货", provider_template=template, provider_params={})
        )
    # Service messages: no consent, caps or quiet hours involved; the test is about dispatch.
    enqueue(account, messages, purpose="service")


def report() -> None:
    from siyu.messaging.models import OutboundMessage

    rows = list(OutboundMessage.objects.values("id", "to_address", "state", "claimed_by", "attempts"))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

"""Keyword tagging: messages/s through the Aho-Corasick matcher and through ``ingest_messages``.

    .venv/bin/python benchmarks/bench_keywords.py --backend sqlite [--rules 10000] [--messages 200000]
    .venv/bin/python benchmarks/bench_keywords.py --backend postgres [--rules 10000] [--messages 200000]

Generates 10,000 keyword rules (product names, ingredients × product types, concerns and
generated 2–4 character words; one rule in ten is `exact`) and 200,000 customer messages
built from the demo's customer lines, product mentions and chat filler. Times:

1. the matching path: ``Matcher.match_many`` over every message (the automaton is built once);
2. a naive reference on a subsample: for each message, ``kw in text`` over every keyword of
   every rule; the ratio compares the two (same answers are checked on the subsample);
3. the full path: ``ingest_messages`` in batches of 1,000 (by customer_id) into a fresh
   database with the 10,000 rules stored, including matches, tags and segment change marks.

Goal: ≥ 100,000 messages/s on the matching path with 10,000 rules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from _common import fresh_pg_database, machine, migrate, setup_django

INGREDIENTS = ["玻尿酸", "烟酰胺", "视黄醇", "神经酰胺", "胜肽", "角鲨烷", "积雪草", "水杨酸", "果酸", "维C", "虾青素"]
PRODUCT_TYPES = ["精华", "面霜", "乳液", "面膜", "爽肤水", "眼霜", "防晒", "洁面", "卸妆油", "安瓶", "喷雾", "精油"]
CONCERNS = ["敏感肌", "美白", "孕期", "价格", "祛痘", "抗老", "保湿", "控油", "毛孔", "黑眼圈", "法令纹", "痘印"]
CHARS = "润泽光透亮白嫩滑柔雪花玉颜肌源萃露珍纯净清舒缓修护焕活紧致弹"
FILLER = ["亲", "你好", "请问", "在吗", "谢谢", "好的", "那个", "想问一下", "麻烦帮我看看", "最近", "上次买的"]


def make_rules(n: int, rng: random.Random) -> list[tuple[list[str], bool]]:
    from siyu.demo import catalog

    pool = [name for _, name, *_ in catalog.PRODUCTS] + CONCERNS
    pool += [i + t for i in INGREDIENTS for t in PRODUCT_TYPES]
    seen = set(pool)
    while len(pool) < n * 2:
        word = "".join(rng.choice(CHARS) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            pool.append(word)
    rules = []
    for i in range(n):
        words = [pool[i], *rng.sample(pool, rng.randint(0, 2))]
        rules.append((words, rng.random() < 0.1))
    return rules


def make_messages(n: int, rng: random.Random) -> list[str]:
    from siyu.demo import catalog

    lines = [line for line, _ in catalog.CUSTOMER_LINES]
    products = [name for _, name, *_ in catalog.PRODUCTS] + [i + t for i in INGREDIENTS for t in PRODUCT_TYPES]
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.5:
            text = rng.choice(lines)
        elif kind < 0.85:
            text = f"{rng.choice(FILLER)}，{rng.choice(products)}{rng.choice(['还有货吗', '适合我吗', '怎么用', '多少钱'])}"
        else:
            text = (
                rng.choice(FILLER) + rng.choice(lines) + "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12)))
            )
        out.append(text)
    return out


def bench_matcher(rules, texts, subsample: int) -> dict[str, float]:
    from siyu.tags.keywords import Matcher, RuleWords, fold

    started = time.perf_counter()
    matcher = Matcher(RuleWords(n, tuple(words), exact) for n, (words, exact) in enumerate(rules))
    build = time.perf_counter() - started
    started = time.perf_counter()
    found = matcher.match_many(texts)
    match_s = time.perf_counter() - started

    sample = texts[:subsample]
    folded_rules = [([fold(w) for w in words], exact) for words, exact in rules]
    started = time.perf_counter()
    naive = []
    for text in sample:
        folded = fold(text)
        naive.append(
            {
                n
                for n, (words, exact) in enumerate(folded_rules)
                if (folded in words if exact else any(w in folded for w in words))
            }
        )
    naive_s = time.perf_counter() - started
    assert naive == found[:subsample], "matcher and naive reference disagree"
    hits = sum(len(f) for f in found)
    return {
        "build_s": build,
        "match_rate": len(texts) / match_s,
        "naive_rate": len(sample) / naive_s,
        "hits_per_message": hits / len(texts),
    }


def bench_ingest(backend: str, rules, texts, customers: int) -> dict[str, float]:
    if backend == "postgres":
        url = fresh_pg_database("siyu_bench_keywords")
    else:
        path = Path(tempfile.mkdtemp()) / "bench_keywords.sqlite3"
        url = f"sqlite:///{path}"
    setup_django(url)
    migrate()
    from django.db import connection, transaction

    from siyu.conversations.services import ingest_messages
    from siyu.core import clock
    from siyu.customers.services import upsert_customers
    from siyu.org.services import create_workspace
    from siyu.tags.models import KeywordRule, Tag, TagGroup

    ws = create_workspace(slug="bench", name="Bench")
    group = TagGroup.objects.create(workspace=ws, name="兴趣")
    tags = Tag.objects.bulk_create([Tag(workspace=ws, group=group, name=f"兴趣{i}") for i in range(300)])
    now = clock.now()
    with transaction.atomic():
        stored = KeywordRule.objects.bulk_create(
            [
                KeywordRule(
                    workspace=ws,
                    name=f"规则{n}",
                    keywords=words,
                    match_mode="exact" if exact else "contains",
                    min_matches=1 if n % 3 else 2,
                    window_days=None if n % 2 else 30,
                    created_at=now,
                    updated_at=now,
                )
                for n, (words, exact) in enumerate(rules)
            ],
            batch_size=1000,
        )
        through = KeywordRule.tags.through
        through.objects.bulk_create(
            [through(keywordrule_id=rule.pk, tag_id=tags[n % len(tags)].pk) for n, rule in enumerate(stored)],
            batch_size=1000,
        )
    ids: list[int] = []
    for start in range(0, customers, 1000):
        items = [{"identities": [{"type": "phone", "value": f"139{i:08d}"}]} for i in range(start, start + 1000)]
        ids += upsert_customers(ws, items, source="bench").ids
    rng = random.Random(3)
    base = now - dt.timedelta(days=60)
    batches = []
    for start in range(0, len(texts), 1000):
        batches.append(
            [
                {
                    "customer_id": ids[rng.randrange(len(ids))],
                    "direction": "in",
                    "text": text,
                    "sent_at": (base + dt.timedelta(seconds=start + k)).isoformat(),
                    "external_msgid": f"m{start + k}",
                }
                for k, text in enumerate(texts[start : start + 1000])
            ]
        )
    ingest_messages(ws, batches[0], source="bench")  # compiles the 10,000 rules once
    started = time.perf_counter()
    for batch in batches[1:]:
        result = ingest_messages(ws, batch, source="bench")
        assert result.accepted == len(batch), result.errors[:3]
    ingest_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tags_keywordmatch")
        matches = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tags_customertag WHERE source = 'keyword'")
        tagged = cursor.fetchone()[0]
    return {
        "ingest_rate": (len(texts) - len(batches[0])) / ingest_s,
        "matches": matches,
        "tagged": tagged,
        "vendor": connection.vendor,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--naive-sample", type=int, default=2_000)
    args = parser.parse_args()

    rng = random.Random(11)
    rules = make_rules(args.rules, rng)
    texts = make_messages(args.messages, rng)
    m = bench_matcher(rules, texts, args.naive_sample)
    print(f"machine: {machine()}")
    print(f"{args.rules:,} rules, {args.messages:,} messages, {m['hits_per_message']:.2f} rule hits per message")
    print(f"automaton build: {m['build_s']:.2f}s")
    print(f"matching path:   {m['match_rate']:>12,.0f} messages/s")
    print(f"naive reference: {m['naive_rate']:>12,.0f} messages/s (on {args.naive_sample:,} messages)")
    print(f"ratio:           {m['match_rate'] / m['naive_rate']:>12,.0f}x")
    i = bench_ingest(args.backend, rules, texts, args.customers)
    print(
        f"ingest_messages ({i['vendor']}): {i['ingest_rate']:,.0f} messages/s "
        f"({i['matches']:,} matches recorded, {i['tagged']:,} keyword tags)"
    )


if __name__ == "__main__":
    main()

"""Settings for ``bench_wecom_callbacks.py``'s comparison only: siyu as it is, except that the
WeCom callback URL applies the receipt inside the request (``benchmarks._sync_urls``), which is
what the endpoint did before the inbox."""

from siyu.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks._sync_urls"

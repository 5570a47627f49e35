"""Settings for ``bench_wecom_callbacks.py``'s comparison only: siyu as it is, with the callback
receipts' group commit off (one INSERT and one commit per push, as before it)."""

from siyu.settings import *  # noqa: F403

SIYU_CALLBACK_GROUP_COMMIT = False

"""Rows the core keeps for every app: when each periodic job last ran."""

from __future__ import annotations

from django.db import models


class PeriodicRun(models.Model):
    """One periodic job (``core.schedule``): when it is next due and how it last went.

    A worker claims a due job with one conditional UPDATE that moves ``next_due_at`` forward
    and sets ``running_until``, so among several workers exactly one runs it per period, and a
    job that runs longer than its period is not started again while it runs.
    """

    key = models.CharField(max_length=100, unique=True)
    next_due_at = models.DateTimeField()
    last_started_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker runs the job: nobody else claims it until it finishes or this passes
    # (the worker died mid-run).
    running_until = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_ok = models.BooleanField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    def __str__(self) -> str:
        return self.key

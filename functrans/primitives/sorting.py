"""Cumulative, sorting and searching primitives (cumsum, cumprod, cummax, sort, ...)."""

from __future__ import annotations

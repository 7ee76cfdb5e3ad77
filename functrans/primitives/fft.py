"""Fourier-transform primitives: linear, so each is its own family of JVP and transpose rules."""

from __future__ import annotations

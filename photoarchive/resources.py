"""Cluster resources of one photo's job, sized from its pixel count and grown on each retry."""

from __future__ import annotations

import math


def memory_mb(pixels: int, bytes_per_pixel: float, floor_mb: int, attempt: int = 1) -> int:
    """Memory for a job holding `bytes_per_pixel` per pixel plus 300 MB of interpreter and libraries."""
    return int(max(floor_mb, pixels * bytes_per_pixel / 2**20 + 300) * attempt)


def runtime_minutes(pixels: int, minutes_per_megapixel: float, floor_minutes: int = 1, attempt: int = 1) -> int:
    """Wall time in whole minutes for a job doing `minutes_per_megapixel` of work per megapixel."""
    return max(floor_minutes, math.ceil(pixels / 1e6 * minutes_per_megapixel)) * attempt

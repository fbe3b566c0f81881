"""Per-photo cluster resources: from the pixel count, with a floor, doubled on the retry."""

from photoarchive.resources import memory_mb, runtime_minutes


def test_memory_grows_with_pixels_and_attempts():
    assert memory_mb(0, 100, 1000) == 1000  # before ingest: the floor
    twenty_mp = memory_mb(20_000_000, 100, 1000)
    assert twenty_mp == int(20_000_000 * 100 / 2**20 + 300)
    assert memory_mb(20_000_000, 100, 1000, attempt=2) == 2 * twenty_mp


def test_runtime_is_whole_minutes_at_least_the_floor():
    assert runtime_minutes(0, 0.2) == 1
    assert runtime_minutes(500_000, 0.2) == 1  # 0.1 min rounds up to the floor
    assert runtime_minutes(20_000_000, 0.2) == 4
    assert runtime_minutes(20_000_001, 0.2) == 5  # a started minute counts
    assert runtime_minutes(200_000_000, 0.2, attempt=2) == 80
    assert runtime_minutes(0, 0.05, floor_minutes=3) == 3

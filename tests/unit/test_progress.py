"""Progress lines: plain and sparse when the output is not a terminal."""

from __future__ import annotations

import io

from app.progress import PlainProgress, progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_lines_every_ten_percent_once_the_step_is_slow():
    stream, clock = io.StringIO(), Clock()
    tracker = PlainProgress(200, "decoding", "images", stream, clock=clock)
    for _ in range(200):
        clock.now += 0.15
        tracker.advance()
    tracker.close()
    lines = stream.getvalue().splitlines()
    # quiet for the first 2 s (14 images), then one line per 10%
    assert lines[0] == "decoding: 20 images of 200 images (10%), 3 s"
    assert lines[-1] == "decoding: 200 images of 200 images (100%), 30 s"
    assert len(lines) == 10


def test_a_quick_step_prints_nothing():
    stream, clock = io.StringIO(), Clock()
    tracker = PlainProgress(1000, "fingerprint", "files", stream, clock=clock)
    for _ in range(1000):
        clock.now += 0.001
        tracker.advance()
    tracker.close()
    assert stream.getvalue() == ""


def test_bytes_are_shown_in_human_units():
    stream, clock = io.StringIO(), Clock()
    tracker = PlainProgress(3 * 2**30, "saving", "B", stream, clock=clock)
    clock.now = 5
    tracker.advance(3 * 2**30)
    tracker.close()
    assert stream.getvalue() == "saving: 3.0 GB of 3.0 GB (100%), 5 s\n"


def test_a_terminal_gets_rich_bar_not_lines():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    with progress(10, "export", stream=stream) as bar:
        bar.advance(10)
    assert "export" in stream.getvalue() and "10/10" in stream.getvalue()


def test_an_estimated_total_that_is_passed_prints_no_line_beyond_100_percent():
    stream, clock = io.StringIO(), Clock()
    tracker = PlainProgress(100, "saving", "B", stream, clock=clock)
    for _ in range(13):
        clock.now += 1
        tracker.advance(10)
    tracker.close()
    lines = stream.getvalue().splitlines()
    assert lines[-1] == "saving: 100 B of 100 B (100%), 10 s"
    assert len(lines) == 9  # 20% .. 100%: the first 10% came within the quiet 2 s

"""benchmarks/load.py: the load other processes put on the machine, which labels every benchmark line quiet or
loaded. This process's own share must follow its CPU use (so that a benchmark's busy thread is not counted as
another process's load), finished children count only when asked, and the label switches at the stated threshold."""

import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load  # noqa: E402


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_own_share_starts_at_zero_and_follows_this_processs_cpu_use():
    meter = load.OtherLoad()
    assert meter.own() < 0.005
    start = time.monotonic()
    _spin(0.4)
    wall = time.monotonic() - start
    own = meter.own()
    # busy (CPU seconds / wall seconds, at least ~0.4 / wall) times how far the 1-minute average moved in `wall`
    ceiling = 2 * (1 - math.exp(-(wall + 0.05) / 60))  # at most every core busy for the whole time
    floor = 0.3 / (wall + 0.05) * (1 - math.exp(-wall / 60))
    assert floor < own <= ceiling
    assert meter.others() >= 0.0


def test_finished_children_count_as_ours_only_when_asked():
    mine, with_children = load.OtherLoad(), load.OtherLoad(children=True)
    subprocess.run([sys.executable, "-c", "import time\nend = time.process_time() + 0.5\n"
                    "while time.process_time() < end: pass"], check=True)
    assert with_children.own() > mine.own() + 0.002


def test_the_label_says_quiet_below_the_threshold_and_loaded_from_it():
    assert load.label_of(0.0) == "quiet (others' load 0.00)"
    assert load.label_of(load.QUIET_BELOW - 0.01) == "quiet (others' load 0.49)"
    assert load.label_of(load.QUIET_BELOW) == "loaded, others' load 0.5"
    assert load.label_of(3.25).startswith("loaded, others' load 3.")
    assert load.OtherLoad().label().startswith(("quiet (others' load ", "loaded, others' load "))

"""The thread policy: small problems run on one torch thread for their duration (set and restored, shared by
concurrent jobs), big ones and user choices are left alone; checked in a subprocess with default threads, as a
user's kernel has them (the test command pins OMP_NUM_THREADS=1 for itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
import torch

from nonlin_explorer import threads


@pytest.fixture
def default_threads(monkeypatch):
    """This process as a user's kernel: no OMP_NUM_THREADS, two torch threads (restored afterwards)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("NONLIN_EXPLORER_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_small_work_runs_on_one_thread_and_the_count_comes_back(default_threads):
    with threads.threads_for(1e6) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with threads.threads_for(threads.SMALL_WORK * 10) as n:  # big work: untouched
        assert n == 2 and torch.get_num_threads() == 2


def test_concurrent_jobs_share_one_saved_count(default_threads):
    first_in, second_out = threading.Event(), threading.Event()
    seen = []

    def job_a():
        with threads.threads_for(1e6):
            first_in.set()
            second_out.wait(10)
            seen.append(torch.get_num_threads())  # the other job ended: still one thread while this one runs

    t = threading.Thread(target=job_a)
    t.start()
    first_in.wait(10)
    with threads.threads_for(1e6):
        pass
    second_out.set()
    t.join()
    assert seen == [1] and torch.get_num_threads() == 2  # restored once, by the last job out


def test_a_users_choice_is_kept(default_threads, monkeypatch):
    monkeypatch.setenv("NONLIN_EXPLORER_THREADS", "keep")
    with threads.threads_for(1e6) as n:
        assert n == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("NONLIN_EXPLORER_THREADS")
    assert not threads.policy_active()


CHILD = """
import json, torch
import nonlin_explorer as ne
from nonlin_explorer.compression import compress, random_target
default = torch.get_num_threads()
seen = {}
s = ne.TrainingSession(dataset="spirals", dataset_kwargs={"num_samples": 300}, epochs=1)
s.subscribe(lambda kind, payload: kind == "step" and seen.setdefault("train", torch.get_num_threads()))
s.run(progress=False)
t = random_target(500, 10, seed=0)
compress(t.a, t.W, M=3, callback=lambda p: seen.setdefault("compress", torch.get_num_threads()) and None)
print(json.dumps({"default": default, "after": torch.get_num_threads(), **seen}))
"""


def test_in_a_process_with_default_threads_training_and_compress_use_one_and_restore():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["train"] == 1 and got["compress"] == 1 and got["after"] == got["default"], got


def test_fixed_threads_pins_the_count_even_when_the_user_chose_and_restores_it(default_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the policy would leave torch alone; a fixed count does not
    with threads.fixed_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            with threads.fixed_threads(bad):
                pass
    assert torch.get_num_threads() == 2

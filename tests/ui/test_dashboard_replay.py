"""Browser test of ``nonlin-explorer serve --replay``: a recorded run plays in the page without training."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from served_app import ServedPage, serving

pytestmark = pytest.mark.ui

RUN = dict(dataset="spirals", dataset_kwargs={"num_samples": 600}, model_kwargs={"width": 16, "depth": 2},
           epochs=30, eval_every=10, batch_size=64, sparsity=1e-2, slope_lr=0.1)


@pytest.fixture(scope="module")
def replay_server(tmp_path_factory):
    """A short run recorded here, served at a speed that makes its replay last about 6 seconds."""
    from nonlin_explorer.recording import attach_step_log, load_recording, save_recording
    from nonlin_explorer.training import TrainingSession
    from nonlin_explorer.ui.dashboard_core import ReplayClock

    folder = tmp_path_factory.mktemp("replay")
    session = TrainingSession(**RUN)
    log = attach_step_log(session)
    session.run(progress=False)
    path = save_recording(session, folder / "spirals.rec", steps=log.snapshot())
    rec = load_recording(path)
    speed = ReplayClock(rec.evals, rec.steps).duration / 6.0
    with serving(["--replay", str(path), "--speed", repr(speed)], folder) as base:
        yield base, session


class ReplayPage(ServedPage):
    ready_button = "Play"


def test_replay_starts_at_the_beginning_and_plays_in_the_page_without_training(browser, replay_server):
    base, session = replay_server
    page = ReplayPage(browser, base)
    root = page.page.locator(".ne-dash")
    shown = lambda: (int(root.get_attribute("data-evals") or 0), int(float(root.get_attribute("data-last-step") or 0)))
    try:
        s = page.state()
        assert s["replay"]["file"].endswith("spirals.rec") and s["replay"]["evals"] == len(session.history)
        assert s["replay"]["eval_index"] == -1 and not s["replay"]["playing"]  # at the beginning, paused
        page.page.get_by_text("nonlin_explorer: replay of spirals.rec").wait_for()
        expect(root).to_have_attribute("data-evals", "0")  # nothing drawn yet: Play has something to show
        expect(page.page.get_by_role("button", name="Start", exact=True)).to_have_count(0)  # training controls hidden
        page.page.get_by_role("button", name="Play", exact=True).click()
        page.page.get_by_role("button", name="Pause", exact=True).wait_for()  # shown at once
        first = page.wait(lambda s: s["replay"]["eval_index"] >= 0, "play to feed evaluations")["replay"]
        assert first["playing"] and not first["finished"]
        later = page.wait(lambda s: s["replay"]["eval_index"] > first["eval_index"], "the replay to advance")
        assert later["replay"]["eval_index"] > first["eval_index"]
        page.wait(lambda s: s["replay"]["finished"], "the replay to finish", timeout=40)
        expect(root).to_have_attribute("data-evals", str(len(session.history)), timeout=10_000)
        assert shown() == (len(session.history), session.history[-1]["step"])
        page.page.get_by_role("button", name="Play", exact=True).wait_for()  # finished: Play starts again
        # Scrub back: the page shows the run up to that evaluation.
        scrub = page.page.get_by_label("Evaluation")
        scrub.focus()
        scrub.press("Home")  # the start: nothing shown
        page.wait(lambda s: s["replay"]["eval_index"] == -1, "the scrubber to seek to the start")
        expect(root).to_have_attribute("data-evals", "0")
        scrub.press("ArrowRight")  # the first evaluation
        page.wait(lambda s: s["replay"]["eval_index"] == 0, "the scrubber to seek")
        expect(root).to_have_attribute("data-evals", "1")
        assert page.external_requests() == []
    finally:
        page.close()

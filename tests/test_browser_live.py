"""The live page in headless Chromium: a piece played while it is written, four notes played on
the on-screen keyboard, the model's answer, and the conversation's MIDI.

Runs the real `lstm-music serve` (test_browser's fixture) and the system's Chromium. The time from
pressing Play live to the first scheduled note goes to test-artifacts/live-first-note.json and is
not asserted here (the goal is benchmarks/live.py's). Audio plays without a user gesture
(--autoplay-policy), into Chromium's silent output when the machine has no sound card.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
import symusic
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, served, sync_api, wait_until

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt install chromium)")
__all__ = ["served"]  # the fixture, imported for this module
STATE = "window.lstmLive && window.lstmLive.state"


@pytest.fixture(scope="module")
def live_browser():
    with sync_api.sync_playwright() as playwright:
        args = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield chromium
        chromium.close()


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def shipped_default(url: str) -> str:
    models = get_json(f"{url}api/models")
    shipped = [model for model in models if model["source"] == "shipped"]
    if not shipped:
        pytest.skip("no shipped model")
    return next((model["id"] for model in shipped if model.get("default")), shipped[0]["id"])


def play_four_notes(page) -> None:
    """C E G C on the on-screen keyboard, each held a little, with the mouse."""
    for pitch in (60, 64, 67, 72):
        box = page.locator(f'#keyboard [data-pitch="{pitch}"]').bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8)
        page.mouse.down()
        time.sleep(0.2)
        page.mouse.up()
        time.sleep(0.1)


def test_live_play_answer_and_conversation(served, live_browser) -> None:
    url, _process, _temp = served
    ARTIFACTS.mkdir(exist_ok=True)
    model = shipped_default(url)
    context = live_browser.new_context(
        viewport={"width": 1280, "height": 900}, reduced_motion="reduce", accept_downloads=True
    )
    page = context.new_page()
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(url)
    wait_until(page, "document.body.dataset.ready === 'true'")
    wait_until(page, "window.lstmLive && window.lstmLive.engine !== 'loading'")
    engine = page.evaluate("window.lstmLive.engine")
    page.select_option("#model", model)
    page.fill("#length", "6")
    page.fill("#seed", "11")

    # a piece played while it is written: the first note is scheduled, the piece joins the list
    pieces_before = page.locator("#history > li").count()
    page.click("#live-play")
    wait_until(page, "performance.getEntriesByName('lstm-first-note').length > 0", timeout=120)
    marks = page.evaluate(
        "['lstm-generate-pressed', 'lstm-first-note'].map("
        "(name) => performance.getEntriesByName(name)[0].startTime)"
    )
    live = page.evaluate("({...window.lstmLive, conversation: undefined})")
    timing = {"model": model, "engine": engine, "first_note_ms": marks[1] - marks[0],
              "starved": live["starved"], "notes_scheduled": live["notesScheduled"]}  # fmt: skip
    (ARTIFACTS / "live-first-note.json").write_text(json.dumps(timing, indent=2) + "\n")
    page.screenshot(path=str(ARTIFACTS / "web-live.png"))
    wait_until(page, f"['done', 'error'].includes({STATE})", timeout=120)
    live = page.evaluate("({...window.lstmLive, conversation: undefined})")
    assert live["state"] == "done", live
    assert live["notesScheduled"] > 0
    assert live["notesScheduled"] + live["skipped"] == live["notesReceived"], live
    assert page.locator("#history > li").count() == pieces_before + 1
    assert "Download MIDI" in page.locator("#history > li").first.text_content()

    # play along: four notes, then Answer, in the phrase's tempo; the answer comes after it
    page.uncheck("#live-auto")
    play_four_notes(page)
    page.click("#live-answer")
    wait_until(page, f"['done', 'error'].includes({STATE})", timeout=120)
    assert page.evaluate(STATE) == "done", page.evaluate("window.lstmLive.error")
    live = page.evaluate("({...window.lstmLive, conversation: undefined})")
    conversation = page.evaluate("window.lstmLive.conversation")
    phrase = [note for note in conversation if note["who"] == "you"]
    answer = [note for note in conversation if note["who"] == "model"]
    assert [note["pitch"] for note in phrase] == [60, 64, 67, 72]
    assert answer, "the model answered nothing"
    assert live["tempoFrom"] == "phrase" and 40 <= live["tempoSent"] <= 200, live
    start = live["lastStart"]  # the answer's start event
    assert start["tempo"] == pytest.approx(live["tempoSent"]), live
    first = min(note["start"] for note in answer)  # conversation seconds
    # on the piece's timeline (primer included) the answer begins where the primer ends ...
    assert first - live["answerOffset"] >= start["primer_seconds"] - 0.002, live
    # ... and in the conversation after the phrase's last note
    assert first > max(note["start"] + note["duration"] for note in phrase), (live, conversation)
    assert live["notesScheduled"] + live["skipped"] == live["notesReceived"], live

    # the conversation as one MIDI file
    with page.expect_download() as download_info:
        page.click("#live-download")
    midi = symusic.Score.from_midi(download_info.value.path().read_bytes())
    assert sum(len(track.notes) for track in midi.tracks) == len(conversation)
    page.screenshot(path=str(ARTIFACTS / "web-live-conversation.png"), full_page=True)

    assert engine == "soundfont", page.locator("#live-engine").text_content()
    assert all(address.startswith(url) or address.startswith("blob:") for address in requests)
    assert problems == []
    context.close()


def test_after_stop_the_players_notes_stand_alone_on_the_roll(served, live_browser) -> None:
    """Stop a live piece, then play: the piece leaves the roll (its unsounded notes at Stop, the
    rest at the first played note) and the player's notes are named in the legend."""
    url, _process, _temp = served
    model = shipped_default(url)
    context = live_browser.new_context(
        viewport={"width": 1280, "height": 900}, reduced_motion="reduce"
    )
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    wait_until(page, "document.body.dataset.ready === 'true'")
    page.select_option("#model", model)
    page.fill("#length", "30")
    page.fill("#seed", "5")
    page.uncheck("#live-auto")  # no answer after the note played below
    page.click("#live-play")
    wait_until(page, "(window.lstmLive.roll?.model ?? 0) >= 8", timeout=120)
    page.click("#live-stop")
    wait_until(page, f"{STATE} === 'stopped'")
    assert page.evaluate("window.lstmLive.roll.you") == 0
    box = page.locator('#keyboard [data-pitch="60"]').bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8)
    page.mouse.down()
    time.sleep(0.2)
    page.mouse.up()
    assert page.evaluate("window.lstmLive.roll") == {"you": 1, "model": 0}
    legend = page.locator("#live-legend")
    assert legend.is_visible() and legend.locator("li.you .swatch.you").count() == 1
    assert legend.locator("li.you").text_content() == "you (keyboard)"
    page.screenshot(path=str(ARTIFACTS / "web-live-play-along.png"))
    assert problems == []
    context.close()

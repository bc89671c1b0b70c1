"""`autotosis review --serve`: the review page, its server and its label writes; in a real headless Chromium."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from autotosis.core.region import as_region
from autotosis.detect.scores import ScanInfo, Scores
from autotosis.detect.segments import EventParams
from autotosis.labels.parse import parse_labels, parse_labels_text
from autotosis.labels.values import Span
from autotosis.media import probe
from autotosis.workflows.review import ReviewConflict, merge_review_line, section_end, section_header
from autotosis.workflows.review_web import EVENT, NEAR_MISS, ReviewServer, open_review, plan_items, route
from tests.cdp import CHROMIUM, NO_CHROMIUM, Browser
from tests.conftest import constant_model, flash_clip

CAM = (0.75, 0.0, 1.0, 0.3)
CROP_TEXT = as_region(CAM).as_text()
# The fake model's scores: two events (0.9) and a near miss (0.4) in a 20 s video; 0.05 elsewhere.
MOMENTS = [(2000, 4000, 0.9), (8000, 9000, 0.4), (14_000, 16_000, 0.9)]
LABELS = "# task=rage\nclips/a.mp4  1-3\nclips/calm.mp4\n"
HEADER = (
    "# --- review iter1: autotosis review --serve, model m.pt, threshold 0.50 ---\n"
    "# Decided on the review page: a span is a highlight, ~span unsure, no span = no highlight in the clip.\n"
    f"# default crop={CROP_TEXT}\n"
)
END = "# --- end of review iter1 ---\n"


def scores_of(video: Path, duration_ms: int, moments) -> Scores:
    times = np.arange(0, duration_ms, 500, dtype=np.int64)
    rage = np.full(len(times), 0.05, dtype=np.float32)
    for start, end, value in moments:
        rage[(times >= start) & (times < end)] = value
    return Scores(
        Path(video),
        duration_ms,
        ("background", "rage"),
        times,
        np.stack([1 - rage, rage], 1),
        500,
        task="rage",
        scan=ScanInfo(region=CAM, threshold=0.5),
    )


def fake_scan(moments):
    """scan_video stand-in: the scores of ``moments`` (start ms, end ms, score) over the real video's length."""

    def scan(video, model_path, options=None, **kwargs):
        return scores_of(Path(video), probe.probe(video).duration_ms, moments)

    return scan


# --------------------------------------------------------------------------- pure parts


def test_plan_finds_events_and_near_misses_with_context():
    scores = scores_of(Path("v.mp4"), 20_000, MOMENTS)
    items = plan_items(scores, "rage", EventParams(threshold=0.5), near_misses=5)
    # The near miss (0.4) is found; 0.05 elsewhere is under half the threshold: no near miss.
    assert [(i.kind, i.core, i.start_ms, i.end_ms, round(i.peak, 2)) for i in items] == [
        (EVENT, (2000, 4000), 0, 6000, 0.9),
        (NEAR_MISS, (8000, 9000), 6000, 11_000, 0.4),
        (EVENT, (14_000, 16_000), 12_000, 18_000, 0.9),
    ]
    assert [i.kind for i in plan_items(scores, "rage", EventParams(threshold=0.5), near_misses=0)] == [EVENT, EVENT]
    # Close neighbours: the snippets meet half way between the moments instead of overlapping.
    close = scores_of(Path("v.mp4"), 20_000, [(2000, 4000, 0.9), (7000, 8000, 0.45)])
    first, second = plan_items(close, "rage", EventParams(threshold=0.5, merge_gap_ms=1000), near_misses=1)
    assert (first.end_ms, second.start_ms) == (5500, 5500) and second.core == (7000, 8000)


def section(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines) + END


def merge(text: str, labels: Path, name: str, line: str, previous: str | None = None) -> str:
    return merge_review_line(
        text,
        labels,
        iteration=1,
        header=HEADER.splitlines(),
        clip=labels.parent / "review" / name,
        previous=previous,
        line=line,
    )


def test_merge_appends_replaces_and_keeps_hand_edits(tmp_path: Path):
    labels = tmp_path / "rage.txt"
    one = "review/iter1_v_h1.mp4  0:02-0:04  # accepted"
    text = merge(LABELS, labels, "iter1_v_h1.mp4", one)
    assert text == LABELS + "\n" + section(one)
    # A file without a final newline, and one with Windows line ends, keep theirs.
    assert merge(LABELS.rstrip("\n"), labels, "iter1_v_h1.mp4", one) == LABELS + "\n" + section(one)
    crlf = merge(LABELS.replace("\n", "\r\n"), labels, "iter1_v_h1.mp4", one)
    assert crlf == (LABELS + "\n" + section(one)).replace("\n", "\r\n")
    # Hand edits around the section stay; a new line goes at the section's end; a decided line is replaced.
    edited = text.replace("clips/a.mp4  1-3", "clips/a.mp4  1-3.5") + "clips/new.mp4  1-2\n"
    two = "review/iter1_v_n1.mp4  # rejected (near miss)"
    text = merge(edited, labels, "iter1_v_n1.mp4", two)
    assert text == LABELS.replace("1-3", "1-3.5") + "\n" + section(one, two) + "clips/new.mp4  1-2\n"
    again = "review/iter1_v_h1.mp4  ~0:02-0:04  # unsure"
    text = merge(text, labels, "iter1_v_h1.mp4", again, previous=one)
    assert section(again, two) in text
    assert parse_labels_text(text, labels).entries[2].spans == (Span(2000, 4000, unsure=True),)


def test_merge_refuses_to_undo_a_hand_edit(tmp_path: Path):
    labels = tmp_path / "rage.txt"
    one = "review/iter1_v_h1.mp4  0:02-0:04  # accepted"
    text = LABELS + "\n" + section(one)
    changed = text.replace("0:02-0:04  # accepted", "0:02-0:05  # mine")
    with pytest.raises(ReviewConflict, match=r"line 8 of rage.txt \(iter1_v_h1.mp4\) was changed by hand") as exc:
        merge(changed, labels, "iter1_v_h1.mp4", "review/iter1_v_h1.mp4  # rejected", previous=one)
    assert exc.value.line_gone
    removed = text.replace(one + "\n", "")
    with pytest.raises(ReviewConflict, match="removed from rage.txt by hand") as exc:
        merge(removed, labels, "iter1_v_h1.mp4", "review/iter1_v_h1.mp4  # rejected", previous=one)
    assert exc.value.line_gone
    with pytest.raises(ReviewConflict, match=r"already listed in rage.txt \(line 8\)"):
        merge(changed, labels, "iter1_v_h1.mp4", "review/iter1_v_h1.mp4  # rejected")
    with pytest.raises(ReviewConflict, match="end of the review section"):
        merge(text.replace(END, ""), labels, "iter1_v_h2.mp4", "review/iter1_v_h2.mp4")
    with pytest.raises(ReviewConflict, match=r"does not parse as it is now \(.*rage.txt:2:"):
        merge(text.replace("1-3", "1-"), labels, "iter1_v_h2.mp4", "review/iter1_v_h2.mp4")
    assert section_header(1, "how", model="m\nx.pt", threshold=0.5, crop=None)[0].count("\n") == 0
    assert section_end(3) == "# --- end of review iter3 ---"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ("page", "")),
        ("/index.html?x=1", ("page", "")),
        ("/api/state", ("state", "")),
        ("/snippets/iter1_v_h1.mp4", ("snippet", "iter1_v_h1.mp4")),
        ("/snippets/iter1%20v.mp4", ("snippet", "iter1 v.mp4")),
        ("/snippets/", ("missing", "")),
        ("/snippets//etc/passwd", ("missing", "")),
        ("/etc/passwd", ("missing", "")),
    ],
)
def test_routes(path, expected):
    assert route(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/../etc/passwd",
        "/snippets/../../etc/passwd",
        "/snippets/..%2f..%2fetc%2fpasswd",
        "/snippets/%2e%2e/%2e%2e/etc/passwd",
        "/snippets/%252e%252e%252fetc",
        "//etc/passwd",
        "/snippets/a.mp4%00.txt",
        "/snippets/..\\..\\x",
        "/snippets/%5c..",
        "/snippets/%ff",
        "http://example.com/",
    ],
)
def test_path_tricks_are_forbidden(path):
    assert route(path)[0] == "forbidden"


# --------------------------------------------------------------------------- a served review


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> dict:
    monkeypatch.setattr("autotosis.detect.scan.scan_video", fake_scan(MOMENTS))
    root = tmp_path / "proj"
    root.mkdir()
    vod = flash_clip(root / "vod.mp4", 20, [(2, 4), (14, 16)], audio=True, size="160x90")
    labels = root / "rage.txt"
    labels.write_text(LABELS, encoding="utf-8")
    model = constant_model(tmp_path / "m.pt", 0.0, crop=CAM)
    return {"root": root, "vod": vod, "labels": labels, "model": model}


@pytest.fixture
def served(project: dict) -> Iterator[ReviewServer]:
    session = open_review(
        [project["vod"]], project["model"], project["labels"], project["root"] / "review", EventParams(threshold=0.5)
    )
    with ReviewServer(session) as server:
        yield server


def request(server: ReviewServer, method: str, path: str, *, host: str | None = None, headers=None, body=None):
    """One request with the path sent exactly as given (no normalisation); (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{server.port}")
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        data = body.encode("utf-8") if isinstance(body, str) else body
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def decide(server: ReviewServer, body: dict, **kwargs):
    headers = {"Content-Type": "application/json", "X-Review-Token": server.token, **kwargs.pop("headers", {})}
    return request(server, "POST", "/api/decide", headers=headers, body=json.dumps(body), **kwargs)


def other_addresses() -> list[str]:
    """IPv4 addresses of this machine that are not loopback ones (none in some sandboxes)."""
    found = set()
    try:
        found |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe_socket:
            probe_socket.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            found.add(probe_socket.getsockname()[0])
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")


@pytest.mark.media
def test_server_listens_on_loopback_only_and_serves_only_this_review(served: ReviewServer, project: dict):
    assert served.httpd.server_address[0] == "127.0.0.1" and served.url == f"http://127.0.0.1:{served.port}/"
    for address in other_addresses():
        with pytest.raises(OSError), socket.create_connection((address, served.port), timeout=5):
            pass
    status, headers, page = request(served, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"] and b"autotosis review" in page
    assert b"http://" not in page.replace(b"http://www.w3.org/2000/svg", b"")  # nothing from elsewhere
    state = json.loads(request(served, "GET", "/api/state")[2])
    names = [item["name"] for item in state["items"]]
    assert names == ["iter1_vod_h1.mp4", "iter1_vod_h2.mp4", "iter1_vod_n1.mp4"]
    assert state["summary"]["decisions"] == 0 and not (project["root"] / "review").exists()  # nothing made yet

    # A snippet is made when first asked for, and served whole or in parts.
    status, headers, video = request(served, "GET", "/snippets/iter1_vod_h1.mp4")
    assert status == 200 and headers["Content-Type"] == "video/mp4" and video[4:8] == b"ftyp"
    assert video.find(b"moov") < video.find(b"mdat")  # +faststart: playable before the whole file is there
    status, headers, part = request(served, "GET", "/snippets/iter1_vod_h1.mp4", headers={"Range": "bytes=100-199"})
    assert status == 206 and part == video[100:200] and headers["Content-Range"] == f"bytes 100-199/{len(video)}"
    status, _, part = request(served, "GET", "/snippets/iter1_vod_h1.mp4", headers={"Range": "bytes=-10"})
    assert status == 206 and part == video[-10:]
    assert request(served, "GET", "/snippets/iter1_vod_h1.mp4", headers={"Range": f"bytes={len(video)}-"})[0] == 416
    clip = project["root"] / "review" / "iter1_vod_h1.mp4"
    streams = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,pix_fmt", "-of", "csv=p=0", str(clip)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert streams == ["h264,yuv420p", "aac"]
    assert abs(probe.probe(clip).duration_ms - 6000) <= 150

    # Path tricks, other files and other hosts are refused; nothing outside the review is ever read.
    secret = project["root"].parent / "secret.txt"
    secret.write_text("secret", encoding="utf-8")
    for path in (
        "/../secret.txt",
        "/snippets/../../secret.txt",
        "/snippets/..%2f..%2fsecret.txt",
        "/snippets/%2e%2e/%2e%2e/secret.txt",
        "/snippets/iter1_vod_h1.mp4%00",
    ):
        status, _, body = request(served, "GET", path)
        assert status == 403 and b"secret" not in body, path
    # http.server itself turns a leading '//' into '/' (no open redirects): then it is just an unknown path.
    assert request(served, "GET", "//secret.txt")[:1] == (404,)
    for path in ("/rage.txt", "/snippets/rage.txt", "/snippets/vod.mp4", "/snippets//etc/passwd", "/favicon.ico"):
        assert request(served, "GET", path)[0] == 404, path
    assert request(served, "GET", "/", host="evil.example")[0] == 403  # DNS rebinding
    assert request(served, "GET", "/api/state", host=f"attacker.test:{served.port}")[0] == 403
    # A snippet replaced by a symlink out of the review folder is not followed.
    clip.unlink()
    clip.symlink_to(secret)
    status, _, body = request(served, "GET", "/snippets/iter1_vod_h1.mp4")
    assert status == 403 and b"secret" not in body

    # Decisions need the page's token, JSON, a known item and action; refused ones write nothing.
    before = project["labels"].read_bytes()
    assert decide(served, {"item": 0, "action": "accept"}, headers={"X-Review-Token": "guess"})[0] == 403
    no_json = request(
        served, "POST", "/api/decide", headers={"X-Review-Token": served.token, "Content-Type": "text/plain"}, body="{}"
    )
    assert no_json[0] == 415
    assert decide(served, {"item": 99, "action": "accept"})[0] == 404
    assert decide(served, {"item": 0, "action": "delete"})[0] == 400
    assert decide(served, {"item": 1, "action": "adjust", "edge": "middle", "delta_ms": 500})[0] == 400
    assert decide(served, {"item": 0, "action": "accept"}, host="evil.example")[0] == 403
    assert project["labels"].read_bytes() == before
    # One decision through the API (the page's own way) is written at once, atomically, permissions kept.
    project["labels"].chmod(0o640)
    status, _, body = decide(served, {"item": 2, "action": "reject"})
    assert status == 200 and json.loads(body)["summary"]["decisions"] == 1
    line = "review/iter1_vod_n1.mp4  # rejected (near miss): vod.mp4 0:06-0:11, peak 0.40"
    assert project["labels"].read_text(encoding="utf-8") == LABELS + "\n" + section(line)
    assert project["labels"].stat().st_mode & 0o777 == 0o640
    assert not list(project["root"].glob("**/*.part*"))

    # Stopped: the port is closed, and a connection the browser kept open gets no more answers.
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request("GET", "/api/state")
    first = conn.getresponse()
    assert first.status == 200 and first.read()
    served.stop()
    conn.request("GET", "/api/state")
    assert conn.getresponse().status == 503
    conn.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", served.port), timeout=5).close()


# --------------------------------------------------------------------------- in the browser

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


@pytest.fixture
def page(served: ReviewServer, tmp_path: Path):
    with Browser(tmp_path / "chromium") as browser:
        page = browser.new_page()
        page.goto(served.url)
        page.wait_for("document.body.dataset.ready === '1'", what="the page to load its items")
        yield page


def wait_for_file(path: Path, predicate, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(encoding="utf-8")
        if predicate(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not become as expected within {timeout:.0f} s; it holds:\n{text}")
        time.sleep(0.05)


def settled(page) -> None:
    """Every key press answered by the server."""
    page.wait_for("document.body.dataset.pending === '0'", what="the decisions to be answered")


def press(page, *keys: str) -> None:
    for key in keys:
        page.press(key)


@pytest.mark.media
@needs_chromium
def test_review_page_plays_snippets_and_writes_each_key_press(served: ReviewServer, page, project: dict, tmp_path):
    labels = project["labels"]
    items = page.evaluate("[...document.querySelectorAll('nav button')].map((b) => b.textContent)")
    assert items == ["Event 0:02 · 0.90", "Event 0:14 · 0.90", "Near miss 0:08 · 0.40"]
    assert page.evaluate("[...document.querySelectorAll('nav h3')].map((h) => h.textContent)") == [
        "events (2)",
        "near misses (1)",
    ]
    # The first snippet plays: its time advances, frames are decoded at the clip's size.
    page.evaluate("document.getElementById('player').play()", gesture=True, await_promise=True)
    played = (
        "(() => { const p = document.getElementById('player'); let s = 0;"
        " for (let i = 0; i < p.played.length; i++) s += p.played.end(i) - p.played.start(i); return s; })()"
    )
    page.wait_for(f"{played} > 0.6", 60, what="the snippet to play")
    assert page.evaluate("document.getElementById('player').videoWidth") == 160
    assert page.evaluate("document.querySelectorAll('#curve polyline.score').length") == 1
    assert "0:02.0–0:04.0" in page.evaluate("document.getElementById('span').textContent")

    press(page, "[", "}", "a")  # start 0.5 s earlier, end 0.5 s later, accept; the page moves on
    wait_for_file(labels, lambda t: "iter1_vod_h1" in t)
    press(page, "r")  # the second event: no highlight
    press(page, "u")  # the near miss: unsure
    press(page, "k", "k", "]")  # back to the first: its start 0.5 s later again, rewritten at once
    settled(page)
    accepted = "review/iter1_vod_h1.mp4  0:02-0:04.5  # accepted: vod.mp4 0:00-0:06, peak 0.90"
    rejected = "review/iter1_vod_h2.mp4  # rejected: vod.mp4 0:12-0:18, peak 0.90"
    unsure = "review/iter1_vod_n1.mp4  ~0:02-0:03  # unsure (near miss): vod.mp4 0:06-0:11, peak 0.40"
    expected = LABELS + "\n" + section(accepted, rejected, unsure)
    assert wait_for_file(labels, lambda t: t == expected) == expected
    parsed = parse_labels(labels, check_files=False)
    assert [e.spans for e in parsed.entries[2:]] == [(Span(2000, 4500),), (), (Span(2000, 3000, unsure=True),)]
    assert all(e.crop == as_region(CAM) and e.path.is_file() for e in parsed.entries[2:])
    assert sorted(p.name for p in (project["root"] / "review").glob("*.mp4")) == [
        "iter1_vod_h1.mp4",
        "iter1_vod_h2.mp4",
        "iter1_vod_n1.mp4",
    ]
    # The page counts the decisions and shows the command that retrains.
    assert page.evaluate("document.getElementById('summary').dataset.decisions") == "3"
    assert page.evaluate("document.getElementById('retrain').textContent") == (
        f"autotosis train {labels} -o {project['model'].with_name('m-iter1.pt')}"
    )
    assert page.evaluate("document.getElementById('line').textContent") == accepted
    assert page.evaluate("[...document.querySelectorAll('nav .badge')].map((b) => b.textContent)") == ["✓", "✗", "?"]
    assert page.evaluate("document.getElementById('message').hidden")
    shot = page.screenshot(tmp_path / "review-page.jpg")
    if os.environ.get("AUTOTOSIS_TEST_ARTIFACTS"):
        artifacts = Path(os.environ["AUTOTOSIS_TEST_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        (artifacts / "review-page.jpg").write_bytes(shot.read_bytes())


@pytest.mark.media
@needs_chromium
def test_hand_edits_made_while_the_page_is_open_are_never_lost(served: ReviewServer, page, project: dict):
    labels = project["labels"]
    accepted = "review/iter1_vod_h1.mp4  0:02-0:04  # accepted: vod.mp4 0:00-0:06, peak 0.90"
    rejected = "review/iter1_vod_h2.mp4  # rejected: vod.mp4 0:12-0:18, peak 0.90"
    press(page, "a")
    wait_for_file(labels, lambda t: accepted in t)
    # Edited by hand (as an editor saves: the whole file): a span changed above, a clip added below.
    edited = labels.read_text(encoding="utf-8").replace("clips/a.mp4  1-3", "clips/a.mp4  1-3.5")
    labels.write_text(edited + "clips/new.mp4  0:01-0:02\n", encoding="utf-8")
    press(page, "r")
    settled(page)
    mine = LABELS.replace("1-3", "1-3.5") + "\n" + section(accepted, rejected) + "clips/new.mp4  0:01-0:02\n"
    assert labels.read_text(encoding="utf-8") == mine

    # The review's own line changed by hand: a decision about that clip is refused, the file kept.
    hand = "review/iter1_vod_h1.mp4  0:02-0:04.2  # my own"
    labels.write_text(mine.replace(accepted, hand), encoding="utf-8")
    before = labels.read_bytes()
    press(page, "k", "k", "u")
    settled(page)
    message = page.wait_for(
        "!document.getElementById('message').hidden && document.getElementById('message').textContent",
        what="the conflict message",
    )
    assert "line 8 of rage.txt (iter1_vod_h1.mp4) was changed by hand" in message and "hand edit is kept" in message
    assert labels.read_bytes() == before
    assert page.evaluate("document.querySelector('#item-0 .badge').textContent") == ""  # not the page's any more
    # Once that line is gone, the clip can be decided again here.
    labels.write_text(mine.replace(accepted + "\n", ""), encoding="utf-8")
    press(page, "k", "u")
    settled(page)
    unsure = "review/iter1_vod_h1.mp4  ~0:02-0:04  # unsure: vod.mp4 0:00-0:06, peak 0.90"
    expected = LABELS.replace("1-3", "1-3.5") + "\n" + section(rejected, unsure) + "clips/new.mp4  0:01-0:02\n"
    assert labels.read_text(encoding="utf-8") == expected
    assert page.evaluate("document.getElementById('message').hidden")
    # A file that does not parse (a hand edit in progress) is not written to either.
    broken = expected.replace("clips/calm.mp4", "clips/calm.mp4  0:05 - 0:09")
    labels.write_text(broken, encoding="utf-8")
    press(page, "k", "a")
    settled(page)
    message = page.evaluate("document.getElementById('message').textContent")
    assert "rage.txt does not parse as it is now" in message and "rage.txt:3:" in message
    assert labels.read_text(encoding="utf-8") == broken


# --------------------------------------------------------------------------- the command


@pytest.mark.media
def test_review_serve_without_anything_to_review_says_so(project: dict, monkeypatch, capsys):
    from autotosis.cli import main

    monkeypatch.setattr("autotosis.detect.scan.scan_video", fake_scan([]))
    argv = ["--progress", "none", "review", str(project["vod"]), "--model", str(project["model"])]
    assert main([*argv, "--labels", str(project["labels"]), "--serve"]) == 0
    assert capsys.readouterr().out == "no events and no near misses found: nothing to review (lower --threshold?)\n"
    assert main([*argv, "--serve"]) == 2  # --serve needs --labels, as review clips do
    assert main(["review", "--model", str(project["model"]), "--labels", str(project["labels"]), "--serve"]) == 2
    assert main([*argv, "--labels", str(project["labels"]), "--serve", "--port", "70000"]) == 2
    assert project["labels"].read_text(encoding="utf-8") == LABELS


@pytest.mark.media
@pytest.mark.torch
def test_review_serve_prints_the_url_and_stops_on_ctrl_c(tmp_path: Path, sigint_not_ignored):
    root = tmp_path / "proj"
    root.mkdir()
    vod = flash_clip(root / "vod.mp4", 6, [(2, 4)])
    labels = root / "rage.txt"
    labels.write_text(LABELS, encoding="utf-8")
    model = constant_model(tmp_path / "m.pt", 0.0, crop=CAM)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "PYTHONUNBUFFERED": "1",
        "AUTOTOSIS_CACHE": str(tmp_path / "cache"),
    }
    argv = [sys.executable, "-m", "autotosis", "--progress", "none", "review", str(vod), "--model", str(model)]
    argv += ["--labels", str(labels), "--serve", "--port", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        url = None
        deadline = time.monotonic() + 180
        while url is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                stderr = proc.stderr.read() if proc.poll() is not None else "(still running)"
                raise AssertionError(f"no URL printed; stderr: {stderr}") from None
            if line.startswith("review page: "):
                url = line.split()[2]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        host, port = url[len("http://") : -1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/api/state")
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["summary"]["iteration"] == 1
        conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        reader.join(10)
        out = []
        while not lines.empty():
            out.append(lines.get())
        assert out[-1].startswith("stopped: 0 decisions in ")
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=5).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert labels.read_text(encoding="utf-8") == LABELS  # nothing decided, nothing written

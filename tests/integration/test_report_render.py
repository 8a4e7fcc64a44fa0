"""report.html rendered in headless Chromium (Debian's ``chromium`` package): the chart is really drawn.

Two independent proofs from the same page and window size: ``--dump-dom``
shows the marker the chart script sets after drawing (with the number of
marks and the canvas' position), and ``--screenshot`` shows, in exactly that
region, many non-white pixels including the outage red and the swimlanes'
release blue. The PNG is decoded here with zlib (no imaging dependency).
Skipped only when Chromium is missing outside CI; in CI it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from harness.report import write_reports
from tests.unit.report_synthetic import write_synthetic_run

pytestmark = pytest.mark.integration

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
WINDOW = (1400, 1000)
OUTAGE_RED = (0xD6, 0x27, 0x28)
RELEASE_BLUE = (0x31, 0x82, 0xBD)  # the second release (1.1) in the swimlanes

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip(
        "chromium is not installed (apt-get install -y chromium); CI must have it", allow_module_level=True
    )


def run_chromium(url: str, profile: Path, *extra: str, timeout: float = 90.0) -> str:
    """Run headless Chromium once; its whole process group is killed afterwards, whatever happens."""
    assert CHROMIUM is not None, "chromium is required in CI (apt-get install -y chromium)"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *extra,
        url,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    assert process.returncode == 0, (
        f"chromium exited {process.returncode}: {err.decode(errors='replace')[-2000:]}"
    )
    return out.decode(errors="replace")


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, bytes per pixel, raw rows) of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunk = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8
    assert colour in (2, 6)
    assert interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows = bytearray()
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up = previous[x]
            corner = previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[x] = (line[x] + predictor) & 0xFF
        rows += line
        previous = line
    return width, height, bpp, bytes(rows)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    run_dir = tmp_path_factory.mktemp("run")
    verdict = write_synthetic_run(run_dir, events=4000)
    return run_dir, write_reports(run_dir, verdict).html


def test_dom_marker_says_the_chart_was_drawn(rendered: tuple[Path, Path], tmp_path: Path) -> None:
    _, page = rendered
    dom = run_chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    drawn = re.search(r'data-chart-drawn="(\d+)"', dom)
    assert drawn is not None, "the chart script did not finish drawing"
    assert int(drawn.group(1)) > 500
    assert re.search(r'id="chart-status"[^>]*>drawn: \d+ marks', dom)


def test_screenshot_shows_the_chart(rendered: tuple[Path, Path], tmp_path: Path) -> None:
    _, page = rendered
    dom = run_chromium(page.as_uri(), tmp_path / "profile-dom", "--dump-dom")
    rect = re.search(r'data-chart-rect="(\d+),(\d+),(\d+),(\d+)"', dom)
    assert rect is not None
    left, top, width, height = (int(v) for v in rect.groups())
    shot = tmp_path / "shot.png"
    run_chromium(page.as_uri(), tmp_path / "profile-shot", f"--screenshot={shot}")
    png_width, png_height, bpp, pixels = decode_png(shot.read_bytes())
    assert (png_width, png_height) == WINDOW
    bottom = min(top + height, png_height)
    assert bottom - top > 300, "the chart should be on the first screen"
    inked = red = blue = total = 0
    for y in range(top, bottom):
        for x in range(left, min(left + width, png_width)):
            i = (y * png_width + x) * bpp
            r, g, b = pixels[i], pixels[i + 1], pixels[i + 2]
            total += 1
            if r < 235 or g < 235 or b < 235:
                inked += 1
            if abs(r - OUTAGE_RED[0]) < 12 and abs(g - OUTAGE_RED[1]) < 12 and abs(b - OUTAGE_RED[2]) < 12:
                red += 1
            if (
                abs(r - RELEASE_BLUE[0]) < 12
                and abs(g - RELEASE_BLUE[1]) < 12
                and abs(b - RELEASE_BLUE[2]) < 12
            ):
                blue += 1
    assert inked / total > 0.10, f"only {inked} of {total} pixels drawn"
    assert red > 300, f"outage intervals not drawn ({red} red pixels)"
    assert blue > 1000, f"release swimlanes not drawn ({blue} blue pixels)"

"""Screenshots of ``hfnlp demo`` pages for docs/demo.md: ``python scripts/demo_screenshots.py MODEL NAME ...``
serves each model's page on a free local port, fills it in, submits, and saves ``docs/demo-NAME.png``.

A text page gets ``--text``; an image page ``--image FILE``. Needs Chromium (/usr/bin/chromium), playwright and, for
Chinese text, a CJK font (``apt-get install fonts-wqy-microhei``). The docs' screenshots were made with::

    hfnlp train recipes/quickstart.yaml --set output_dir=/tmp/demo-work/quickstart --set training.num_train_epochs=1
    hfnlp train recipes/image-quickstart.yaml --set output_dir=/tmp/demo-work/image-quickstart
    hfnlp train recipes/caption-quickstart.yaml --set output_dir=/tmp/demo-work/caption-quickstart \\
        --set training.num_train_epochs=4
    python scripts/demo_screenshots.py /tmp/demo-work/quickstart text \\
        --text "质量太差了，用了两天就坏了，客服也不理人，非常失望"
    python scripts/demo_screenshots.py /tmp/demo-work/image-quickstart image \\
        --image /tmp/demo-work/image-quickstart/example.png
    python scripts/demo_screenshots.py /tmp/demo-work/caption-quickstart caption \\
        --image /tmp/demo-work/caption-quickstart/example.png

(``example.png``: the first test image of each run.)
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from playwright.sync_api import sync_playwright

from hfnlp.demo import load_demo

DOCS = Path(__file__).resolve().parents[1] / "docs"
# The quickstarts' images are tiny (8x8 digits, 64x64 scenes): shown scaled up, pixel for pixel, to be seen.
ENLARGE_INPUT = "#image img { width: 100%; height: 320px; object-fit: contain; image-rendering: pixelated; }"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def screenshot(model: str, name: str, text: str | None, image: str | None, chromium: str) -> Path:
    """Serve ``model``'s page, submit ``text`` or ``image``, and save the page as ``docs/demo-NAME.png``."""
    demo = load_demo(model)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    target = DOCS / f"demo-{name}.png"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1200, "height": 720})
            page.goto(f"http://127.0.0.1:{port}/")
            if text is not None:
                page.locator("#text textarea").fill(text)
            if image is not None:
                page.add_style_tag(content=ENLARGE_INPUT)
                page.locator("#image input[type=file]").set_input_files(image)
            page.click("#submit")
            page.locator("#label .output-class, #caption textarea").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)  # the highlights and the gallery render after the label
            page.screenshot(path=str(target), full_page=True)
            browser.close()
    finally:
        demo.close()
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("name", help="the screenshot is docs/demo-NAME.png")
    parser.add_argument("--text")
    parser.add_argument("--image")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    print(screenshot(args.model, args.name, args.text, args.image, args.chromium))


if __name__ == "__main__":
    main()

"""Render an HTML report in headless Chromium and save a screenshot (not part of the test run).

    python tests/browser/screenshot.py reports/report-2025.html /tmp/report.png [--height 4000]

Uses the system Chromium (Debian package ``chromium``) with networking disabled: the report
must render with nothing but its own file. Prints the PNG's path; look at it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=3200)
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("no Chromium found: install the system package (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",  # any network fetch would fail visibly
             f"--window-size={args.width},{args.height}", f"--screenshot={args.png.resolve()}", args.html.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    print(args.png)


if __name__ == "__main__":
    main()

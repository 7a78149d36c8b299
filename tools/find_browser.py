"""Find (or obtain) a Chromium for the browser tests, printing one line per attempt.

The search order:

1. ``COURSE_CHROMIUM``, when set;
2. a system Chromium or Chrome: on ``PATH``, then the usual places (Debian's
   ``/usr/bin/chromium``, Snap, the macOS application bundles);
3. Playwright's own managed browser: already downloaded, else ``playwright install chromium``
   (which needs Playwright's download host);
4. on Debian or Ubuntu, as root: ``apt-get update && apt-get install -y chromium``.

A candidate counts only when ``<candidate> --version`` runs, so a stale path or a wrapper
whose real browser is missing is passed over. ``COURSE_BROWSER_SKIP`` (comma-separated route
names: ``env``, ``system``, ``playwright``, ``apt``) skips routes, each still printing a line;
the tests of the failure message use it.

Run as a script it prints the attempts on stderr and the browser's path on stdout, or exits 1
with one paragraph saying how to install a browser on Debian, Ubuntu, Fedora and macOS.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROUTES = ("env", "system", "playwright", "apt")
PATH_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
USUAL_PLACES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/lib/chromium/chromium",
    "/snap/bin/chromium",
    "/usr/bin/google-chrome",
    "/opt/google/chrome/chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
APT_COMMAND = "apt-get update && apt-get install -y chromium"

INSTALL_HELP = (
    "No Chromium for the browser tests (every attempt is listed above). Install one and rerun "
    "`make test`: on Debian `sudo apt-get update && sudo apt-get install -y chromium`; on "
    "Ubuntu `sudo snap install chromium` (Ubuntu's apt package only installs the snap) or "
    "`.venv/bin/python -m playwright install --with-deps chromium`; on Fedora "
    "`sudo dnf install -y chromium`; on macOS `brew install --cask chromium`. Or point "
    "COURSE_CHROMIUM at a Chromium or Chrome executable, e.g. `make test "
    "COURSE_CHROMIUM=/path/to/chromium`. The unit and notebook tests do not need a browser."
)


class BrowserNotFound(RuntimeError):
    """No route produced a working Chromium; the message says how to install one."""


def _runs(path: str) -> bool:
    try:
        result = subprocess.run([path, "--version"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _shell(command: str) -> bool:
    # Output goes to stderr, so that stdout carries only the browser's path.
    result = subprocess.run(command, shell=True, stdout=sys.stderr, stderr=sys.stderr)
    return result.returncode == 0


def _playwright_executable() -> str | None:
    """Where Playwright's managed Chromium lives (whether or not it is downloaded yet)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    try:
        with sync_playwright() as playwright:
            return playwright.chromium.executable_path
    except Exception:  # noqa: BLE001 - a broken driver means: this route has no browser
        return None


def _is_debian_like() -> bool:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return Path("/etc/debian_version").exists()
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    ids = {fields.get("ID", "").strip('"')} | set(fields.get("ID_LIKE", "").strip('"').split())
    return bool(ids & {"debian", "ubuntu"})


@dataclass
class System:
    """What the search may look at and do; the tests replace each part with a fake."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    which: Callable[[str], str | None] = shutil.which
    runs: Callable[[str], bool] = _runs
    playwright_executable: Callable[[], str | None] = _playwright_executable
    shell: Callable[[str], bool] = _shell
    is_root: Callable[[], bool] = lambda: hasattr(os, "geteuid") and os.geteuid() == 0
    is_debian_like: Callable[[], bool] = _is_debian_like
    is_file: Callable[[str], bool] = os.path.isfile
    python: str = sys.executable


def find_chromium(system: System | None = None,
                  log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
                  ) -> str:
    """The path of a working Chromium, found or installed by the routes in the module's order.

    Args:
        system: what to inspect and run (the real machine by default).
        log: receives one line per attempt.

    Raises:
        BrowserNotFound: when no route worked; its message is :data:`INSTALL_HELP`.
        ValueError: when ``COURSE_BROWSER_SKIP`` names an unknown route.
    """
    system = system or System()
    skip = {name.strip() for name in system.environ.get("COURSE_BROWSER_SKIP", "").split(",")
            if name.strip()}
    unknown = skip - set(ROUTES)
    if unknown:
        raise ValueError(f"COURSE_BROWSER_SKIP must name routes among {', '.join(ROUTES)}, "
                         f"got {', '.join(sorted(unknown))}")

    def attempt(route: str, what: str, path: str | None) -> str | None:
        if path and system.runs(path):
            log(f"browser search [{route}]: {what}: found {path}")
            return path
        reason = "not found" if not path else f"{path} does not run (`--version` failed)"
        log(f"browser search [{route}]: {what}: {reason}")
        return None

    for route, search in (("env", _from_env), ("system", _from_system),
                          ("playwright", _from_playwright), ("apt", _from_apt)):
        if route in skip:
            log(f"browser search [{route}]: skipped (COURSE_BROWSER_SKIP)")
            continue
        found = search(system, attempt, log)
        if found:
            return found
    raise BrowserNotFound(INSTALL_HELP)


def _from_env(system, attempt, log):
    value = system.environ.get("COURSE_CHROMIUM", "")
    if not value:
        log("browser search [env]: COURSE_CHROMIUM is not set")
        return None
    return attempt("env", f"COURSE_CHROMIUM={value}",
                   value if system.is_file(value) else system.which(value))


def _from_system(system, attempt, log):
    on_path = next((system.which(name) for name in PATH_NAMES if system.which(name)), None)
    found = attempt("system", f"{' / '.join(PATH_NAMES)} on PATH", on_path)
    if found:
        return found
    place = next((place for place in USUAL_PLACES if system.is_file(place)), None)
    return attempt("system", "the usual places (/usr/bin/chromium, /snap/bin, /Applications)",
                   place)


def _from_playwright(system, attempt, log):
    managed = system.playwright_executable()
    if managed is None:
        log("browser search [playwright]: Playwright is not importable")
        return None
    if system.is_file(managed):
        return attempt("playwright", "Playwright's managed Chromium", managed)
    command = f"{shlex.quote(system.python)} -m playwright install chromium"
    if not system.shell(command):
        log(f"browser search [playwright]: `{command}` failed (download host unreachable?)")
        return None
    return attempt("playwright", f"`{command}`", managed if system.is_file(managed) else None)


def _from_apt(system, attempt, log):
    if not system.is_debian_like():
        log("browser search [apt]: not Debian or Ubuntu")
        return None
    if not system.is_root():
        log(f"browser search [apt]: not root, so not running `{APT_COMMAND}`")
        return None
    if not system.which("apt-get"):
        log("browser search [apt]: apt-get not found")
        return None
    if not system.shell(APT_COMMAND):
        log(f"browser search [apt]: `{APT_COMMAND}` failed")
        return None
    installed = next((system.which(name) for name in PATH_NAMES if system.which(name)), None)
    return attempt("apt", f"`{APT_COMMAND}`", installed)


def main() -> int:
    try:
        print(find_chromium())
    except BrowserNotFound as error:
        print(f"\n{error}\n", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

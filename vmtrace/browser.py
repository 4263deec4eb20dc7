"""Opening a written page in the user's web browser, and saying why when it cannot."""

from __future__ import annotations

import webbrowser
from pathlib import Path


def open_in_browser(path: Path) -> str | None:
    """Opens a local file in the default browser.

    Returns:
        None when a browser was started, else why not (one clause, for the user).
    """
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return ("no web browser was found (none on PATH, no display, and $BROWSER unset; "
                "set BROWSER=yourbrowser)")
    try:
        if browser.open(path.resolve().as_uri()):
            return None
    except OSError as exc:
        return f"the browser could not be started ({exc.strerror or exc})"
    name = getattr(browser, "name", "") or type(browser).__name__
    return f"the browser ({name}) could not be started"

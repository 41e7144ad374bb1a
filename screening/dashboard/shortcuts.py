"""Keyboard shortcuts for Streamlit buttons: a tiny HTML component, no extra dependency.

Streamlit has no key bindings. The component's script (in a one-pixel iframe of the
same origin) listens for keydown on the page around it and clicks the button whose
widget key starts with the one bound to that letter (Streamlit marks each widget's
container with the class ``st-key-<key>``). Binding a prefix keeps the script the same
from one record to the next, so the iframe is not reloaded and no key press is lost
while it would load. Buttons of the previous run, which Streamlit leaves on the page
marked ``data-stale`` while it redraws, are never clicked. Typing in an input, a text
area or a select box is ignored, as are keys pressed with Ctrl, Alt or Meta. Only one
listener is ever installed: a rerun replaces the previous one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import streamlit as st

from ..errors import ConfigError

_KEY = re.compile(r"^[a-z0-9]$")
_WIDGET_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

_SCRIPT = """<script>
(function () {
  const bindings = %s;
  const doc = window.parent.document;
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  const handler = (event) => {
    if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
    if (typing(event.target) || typing(doc.activeElement)) return;
    const widget = bindings[event.key.toLowerCase()];
    if (!widget) return;
    // while Streamlit redraws, the previous run's elements stay on the page marked data-stale:
    // a key press only ever clicks a button drawn by the current run
    const live = [...doc.querySelectorAll("[class*='st-key-" + widget + "']")]
      .filter((el) => el.getAttribute("data-stale") !== "true");
    const button = live.length ? live[live.length - 1].querySelector("button") : null;
    if (!button || button.disabled) return;
    event.preventDefault();
    button.click();
  };
  if (window.parent.__screeningShortcuts) {
    doc.removeEventListener("keydown", window.parent.__screeningShortcuts);
  }
  window.parent.__screeningShortcuts = handler;
  doc.addEventListener("keydown", handler);
})();
</script>"""


def shortcut_script(bindings: Mapping[str, str]) -> str:
    """The component's HTML for ``{letter: widget key or its start}``; letters and keys are checked."""
    for letter, widget in bindings.items():
        if not _KEY.match(letter):
            raise ConfigError(f"shortcut: {letter!r} is not a single lowercase letter or digit")
        if not _WIDGET_KEY.match(widget):
            raise ConfigError(f"shortcut {letter!r}: widget key {widget!r} must be letters, digits, _ or -")
    return _SCRIPT % json.dumps(dict(bindings))


def keyboard_shortcuts(bindings: Mapping[str, str]) -> None:
    """Bind each letter to a click on the button whose widget key starts with the one given, on this page."""
    st.iframe(shortcut_script(bindings), height=1, width=1)

"""Keyboard shortcuts for Streamlit buttons: a tiny HTML component, no extra dependency.

Streamlit has no key bindings. The component's script (in a one-pixel iframe of the same
origin) listens for keydown on the page around it and clicks the button whose widget key
starts with the one bound to that letter (Streamlit marks each widget's container with
the class ``st-key-<key>``). Binding a prefix keeps the script the same from one record
to the next, so the iframe is not reloaded and no key press is lost while it would load.
Buttons of the previous run, which Streamlit leaves on the page marked ``data-stale``
while it redraws, are never clicked: a key pressed during a redraw waits, while the
redraw lasts, for the widget the reviewer last saw drawn (its key names the record; a
MutationObserver keeps track) to be drawn again, so "1" then "e" typed quickly both
count, and a key meant for a record that has just been decided is dropped rather than
applied to the next one. Typing in an input, a text area or a select box is ignored, as
are keys pressed with Ctrl, Alt or Meta; Escape leaves the box (Streamlit keeps what was
typed), so the next letter is a shortcut again. A binding ``prefix#n`` clicks the n-th
button (from 0) inside that widget, for the options of ``st.pills``. Only one listener
is ever installed: a rerun replaces the previous one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import streamlit as st

from ..errors import ConfigError

_KEY = re.compile(r"^[a-z0-9]$")
_WIDGET_KEY = re.compile(r"^[A-Za-z0-9_-]+(#[0-9]+)?$")

_SCRIPT = """<script>
(function () {
  const bindings = %s;
  const SETTLE_MS = 1000, LIMIT_MS = 30000;  // wait while a redraw is on, and at most this long
  const doc = window.parent.document;
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  const live = (el) => el.getAttribute("data-stale") !== "true";
  const widgets = [...new Set(Object.values(bindings).map((b) => b.split("#")[0]))];
  const drawn = (widget) => [...doc.querySelectorAll("[class*='st-key-" + widget + "']")];
  const fullKey = (el, widget) => [...el.classList].find((c) => c.startsWith("st-key-" + widget));
  // the full key (it names the record) of each bound widget as last drawn live: what the reviewer saw
  const seen = {};
  const remember = () => {
    for (const widget of widgets) {
      const now = drawn(widget).filter(live);
      if (now.length) seen[widget] = fullKey(now[now.length - 1], widget);
    }
  };
  const handler = (event) => {
    if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
    if (event.key === "Escape" && typing(doc.activeElement)) {
      doc.activeElement.blur();  // Streamlit commits a text box's value when it loses focus
      return;
    }
    if (typing(event.target) || typing(doc.activeElement)) return;
    const binding = bindings[event.key.toLowerCase()];
    if (!binding) return;
    const [widget, nth] = binding.split("#");
    remember();
    const exact = seen[widget];
    if (!exact) return;
    event.preventDefault();
    // while Streamlit redraws, the previous run's elements stay on the page marked data-stale: a key
    // pressed then waits for the very widget last seen (its full key names the record) to be drawn
    // again and clicks it; if the run draws another record instead, the key press is dropped
    const start = Date.now();
    const redrawing = () => doc.querySelector("[data-stale='true']") !== null;
    const press = () => {
      const now = [...doc.getElementsByClassName(exact)].filter(live);
      if (!now.length) {
        const waited = Date.now() - start;
        if (waited < LIMIT_MS && (redrawing() || waited < SETTLE_MS)) setTimeout(press, 40);
        return;
      }
      // the widget's own buttons: not the "?" of its help tooltip
      const buttons = [...now[now.length - 1].querySelectorAll("button")]
        .filter((b) => !b.closest("[data-testid='stTooltipIcon']"));
      const button = buttons[nth === undefined ? 0 : Number(nth)];
      if (button && !button.disabled) button.click();
    };
    press();
  };
  if (window.parent.__screeningShortcuts) {
    doc.removeEventListener("keydown", window.parent.__screeningShortcuts);
    window.parent.__screeningShortcutsObserver.disconnect();
  }
  const observer = new MutationObserver(remember);
  observer.observe(doc.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-stale"] });
  remember();
  window.parent.__screeningShortcuts = handler;
  window.parent.__screeningShortcutsObserver = observer;
  doc.addEventListener("keydown", handler);
})();
</script>"""


def shortcut_script(bindings: Mapping[str, str]) -> str:
    """The component's HTML for ``{letter: widget key or its start}``; letters and keys are checked."""
    for letter, widget in bindings.items():
        if not _KEY.match(letter):
            raise ConfigError(f"shortcut: {letter!r} is not a single lowercase letter or digit")
        if not _WIDGET_KEY.match(widget):
            raise ConfigError(
                f"shortcut {letter!r}: widget key {widget!r} must be letters, digits, _ or -, "
                "optionally followed by #N (the N-th button inside it)"
            )
    return _SCRIPT % json.dumps(dict(bindings))


def keyboard_shortcuts(bindings: Mapping[str, str]) -> None:
    """Bind each letter to a click on the button whose widget key starts with the one given, on this page."""
    st.iframe(shortcut_script(bindings), height=1, width=1)

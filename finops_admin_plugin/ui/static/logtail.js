// Live tail of a run's logs in Run Detail: `GET /runs/{runId}/logs?follow=true`, read as it
// streams (`response.body.getReader()`), lines appended as the run writes them.
//
// The detail screen redraws itself every few seconds while the run is active; the tail is one
// element kept here across redraws, so its stream and scroll position survive them. It follows
// the bottom of the log until the user scrolls up (and again once back at the bottom), can be
// paused (lines received meanwhile are shown on resume), and says when and why the stream ended.
import { errorOf } from "./api.js";
import { el } from "./dom.js";
import { state } from "./state.js";

// What the page keeps of a long log (the oldest lines go first): the tail is for watching, the
// download has everything.
const KEEP_CHARS = 400_000;
// "At the bottom" allows for a fraction of a line of rounding.
const BOTTOM_SLACK_PX = 8;

let current = null;

/** The live tail of `runId` (the same element on every redraw of its detail). */
export function liveTail(runId, logsUrl) {
  if (current && current.runId === runId) { current.keepScroll(); return current.element; }
  stopTail();
  current = new Tail(runId, `${logsUrl}?follow=true`);
  return current.element;
}

/** Whether a tail of `runId` exists (still streaming or ended with its last lines shown). */
export const hasTail = (runId) => Boolean(current && current.runId === runId);

/** Stop the tail unless it is the one of `keepRunId` (leaving the run's detail ends its stream). */
export function stopTail(keepRunId = null) {
  if (!current || current.runId === keepRunId) return;
  current.stop();
  current = null;
}

class Tail {
  constructor(runId, url) {
    this.runId = runId;
    this.url = url;
    this.controller = new AbortController();
    this.paused = false;
    this.pending = "";
    this.text = document.createTextNode("");
    this.pre = el("pre", { class: "log-tail", id: "log-tail", tabindex: "0", "aria-label": "Live log" }, this.text);
    this.status = el("span", { class: "tail-status", role: "status", text: "Connecting…" });
    this.pauseButton = el("button", { type: "button", id: "tail-pause", "aria-pressed": "false", onclick: () => this.togglePause() }, "Pause");
    this.element = el("div", { class: "tail", "data-state": "connecting" },
      el("p", { class: "actions-row" }, el("strong", { text: "Live log" }), this.status, this.pauseButton),
      this.pre);
    this.run().catch((error) => this.end("error", `Stream stopped: ${error.message || error}`));
  }

  async run() {
    const headers = {};
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const response = await fetch(this.url, { headers, signal: this.controller.signal });
    if (!response.ok) { this.end("error", `Stream refused: ${await errorOf(response)}`); return; }
    this.setState("following", "Following: new lines appear as the run writes them.");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      this.receive(decoder.decode(value, { stream: true }));
    }
    this.receive(decoder.decode());
    this.end("ended", "Stream ended: the run (or step) has ended. The download has the whole log.");
  }

  receive(chunk) {
    if (!chunk) return;
    if (this.paused) { this.pending = keepEnd(this.pending + chunk); return; }
    this.show(chunk);
  }

  show(chunk) {
    // Read where the view is right before the new text (not from scroll events, which arrive a
    // frame late): at the bottom it follows, scrolled up it stays where the user is reading.
    const stick = this.atBottom();
    this.text.appendData(chunk);
    const over = this.text.length - KEEP_CHARS;
    if (over > 0) {
      const cut = this.text.data.indexOf("\n", over);
      this.text.deleteData(0, cut < 0 ? over : cut + 1);
    }
    if (stick) this.pre.scrollTop = this.pre.scrollHeight;
  }

  // The detail's redraw moves the element, and a moved element loses its scroll position: put it
  // back once the redraw is done (a microtask runs after the redraw's synchronous part).
  keepScroll() {
    const top = this.pre.scrollTop;
    const atBottom = this.atBottom();
    queueMicrotask(() => { this.pre.scrollTop = atBottom ? this.pre.scrollHeight : top; });
  }

  atBottom() {
    return this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - BOTTOM_SLACK_PX;
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.textContent = this.paused ? "Resume" : "Pause";
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    if (!this.paused && this.pending) { const pending = this.pending; this.pending = ""; this.show(pending); }
    if (this.element.dataset.state === "following" || this.element.dataset.state === "paused") {
      this.setState(this.paused ? "paused" : "following",
        this.paused ? "Paused: lines are kept and shown on resume." : "Following: new lines appear as the run writes them.");
    }
  }

  setState(name, text) {
    this.element.dataset.state = name;
    this.status.textContent = text;
  }

  end(name, text) {
    if (this.controller.signal.aborted) return;
    if (this.pending) { const pending = this.pending; this.pending = ""; this.show(pending); }
    this.paused = false;
    this.pauseButton.hidden = true;
    this.setState(name, text);
  }

  stop() { this.controller.abort(); }
}

function keepEnd(text) {
  if (text.length <= KEEP_CHARS) return text;
  const cut = text.indexOf("\n", text.length - KEEP_CHARS);
  return cut < 0 ? text.slice(-KEEP_CHARS) : text.slice(cut + 1);
}

// runplane console: live updates through the public event streams, no inline script.
// Every text that came from the server is inserted with textContent, never as HTML
// (except fragments the server rendered and escaped, swapped in by htmx).
"use strict";

(function () {
  const TERMINAL = ["succeeded", "failed", "timed_out", "cancelled", "expired"];

  function onReady(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function swap(url, target, how) {
    return window.htmx.ajax("GET", url, { target: target, swap: how || "outerHTML" });
  }

  // Server-sent events with resume: EventSource reconnects by itself and sends
  // Last-Event-ID, so a dropped connection loses nothing the server retains.
  const streams = [];
  function stream(url, handlers) {
    const source = new EventSource(url, { withCredentials: true });
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (ev) => fn(ev.data ? JSON.parse(ev.data) : null, ev));
    }
    streams.push(source);
    return source;
  }
  function closeStreams() {
    while (streams.length) streams.pop().close();
  }
  window.addEventListener("pagehide", closeStreams);

  // Executions list: each row's status follows the event stream; new executions
  // appear at the top of the first page. One stream serves the table for as long as its
  // filters stay the same (a refreshed or paged table keeps it); once it is open, the
  // table is read again, so what changed before the stream began is shown too.
  let executionsSource = null;
  let executionsQuery = null;
  function reloadExecutions() {
    return swap(window.location.pathname + window.location.search, "#executions", "innerHTML");
  }
  function liveExecutions(root) {
    const table = document.getElementById("executions-table");
    if (!table) return;
    const query = table.dataset.liveExecutions;
    if (executionsSource && executionsQuery === query) return;
    if (executionsSource) executionsSource.close(); // other filters: another stream
    executionsQuery = query;
    const url = "/api/v1/events" + (query ? "?" + query : "");
    const pending = new Set();
    let opened = false;
    executionsSource = stream(url, {
      reset: reloadExecutions,
      execution: (change) => {
        const current = document.getElementById("executions-table");
        if (!current) return;
        const row = document.getElementById("row-" + change.id);
        if (row) {
          const badge = row.querySelector("[data-status]");
          if (badge && badge.dataset.status !== change.status) {
            badge.dataset.status = change.status;
            badge.textContent = change.status;
            badge.className = "status status-" + change.status;
          }
          if (TERMINAL.includes(change.status)) {
            swap("/executions/" + encodeURIComponent(change.id) + "/row", row);
          }
        } else if (current.dataset.prepend === "true" && !pending.has(change.id)) {
          pending.add(change.id);
          const body = current.querySelector("tbody");
          swap("/executions/" + encodeURIComponent(change.id) + "/row", body, "afterbegin").then(
            () => pending.delete(change.id)
          );
          const empty = document.querySelector("#executions .empty");
          if (empty) empty.remove();
        }
      },
    });
    executionsSource.addEventListener("open", () => {
      if (!opened) {
        opened = true;
        reloadExecutions();
      }
    });
  }

  // One execution: the summary (status, timeline, result, buttons) re-renders on each
  // change; the log follows its stream.
  function liveExecution(root) {
    const holder = root.querySelector("[data-live-execution]");
    if (!holder || holder.dataset.live === "on") return;
    holder.dataset.live = "on";
    const id = holder.dataset.liveExecution;
    const refresh = () => swap("/executions/" + encodeURIComponent(id) + "/summary", "#summary");
    const source = stream("/api/v1/events?execution=" + encodeURIComponent(id), {
      execution: refresh,
      reset: refresh,
    });
    // A change between the page's rendering and the stream's start has no event: once
    // the stream is open, read the summary again.
    source.addEventListener("open", refresh);
    followLog(id);
  }

  // The log: its last chunks, then new ones as they come. A page holds at most
  // SHOWN_CHARS of it; what is cut off the top, and what came before the tail, comes
  // back on demand with "Load earlier lines" (JSON pages read backwards).
  const SHOWN_CHARS = 400000;
  const EARLIER_CHUNKS = 200;
  function followLog(id) {
    const log = document.getElementById("log");
    if (!log) return;
    const state = document.getElementById("log-state");
    const earlier = document.getElementById("log-earlier");
    const base = log.dataset.log;
    let firstId = null; // the oldest chunk fetched from the server
    let shown = 0;
    const held = []; // text cut off the top of the page, oldest first
    let stick = true;
    log.addEventListener("scroll", () => {
      stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    });
    function trim() {
      while (shown > SHOWN_CHARS && log.firstChild && log.firstChild !== log.lastChild) {
        const node = log.firstChild;
        held.push(node.textContent);
        shown -= node.textContent.length;
        node.remove();
        earlier.hidden = false;
      }
    }
    // Chunks are written once a frame: a long log's tail arrives as many chunks at once,
    // and each write that scrolls lays the whole log out again.
    const pending = [];
    function flush() {
      for (const text of pending) {
        log.appendChild(document.createTextNode(text));
        shown += text.length;
      }
      pending.length = 0;
      trim();
      if (stick) log.scrollTop = log.scrollHeight;
    }
    function append(text) {
      if (!pending.length) requestAnimationFrame(flush);
      pending.push(text);
    }
    async function probeEarlier() {
      const answer = await fetch(base + "?format=json&limit=1&before=" + firstId, {
        headers: { Accept: "application/json" },
      });
      if (answer.ok && (await answer.json()).items.length) earlier.hidden = false;
    }
    const source = stream(base + "?tail=" + encodeURIComponent(log.dataset.tail), {
      log: (chunk) => {
        if (firstId === null) {
          firstId = chunk.id;
          probeEarlier();
        }
        append(chunk.text);
      },
      end: (info) => {
        source.close();
        const status = info && info.status ? ": " + info.status : "";
        if (state) state.textContent = "The execution ended" + status + ".";
      },
    });
    if (state) state.textContent = "Following the log…";
    function prepend(text) {
      const height = log.scrollHeight;
      log.insertBefore(document.createTextNode(text), log.firstChild);
      log.scrollTop += log.scrollHeight - height;
    }
    earlier.addEventListener("click", async () => {
      if (held.length) {
        prepend(held.pop());
        // nothing held: hidden, unless the probe finds earlier chunks on the server
        earlier.hidden = !held.length;
        if (!held.length) probeEarlier();
        return;
      }
      if (firstId === null) return;
      earlier.disabled = true;
      const url = base + "?format=json&before=" + firstId + "&limit=" + EARLIER_CHUNKS;
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      earlier.disabled = false;
      if (!answer.ok) return;
      const page = await answer.json();
      if (page.items.length) {
        firstId = page.items[0].id;
        prepend(page.items.map((c) => c.text).join(""));
      }
      earlier.hidden = !page.more;
    });
  }

  // Runtimes: refresh the table when executions change (slots in use) and every 15 s
  // (heartbeats are not events).
  function liveRuntimes(root) {
    const table = root.querySelector("[data-live-runtimes]");
    if (!table || document.body.dataset.liveRuntimes === "on") return;
    document.body.dataset.liveRuntimes = "on";
    let timer = null;
    const refresh = () => {
      const current = document.getElementById("runtimes");
      if (current) window.htmx.trigger(current, "refresh");
    };
    const soon = () => {
      if (timer === null) timer = setTimeout(() => { timer = null; refresh(); }, 500);
    };
    stream("/api/v1/events", { execution: soon });
    setInterval(refresh, 15000);
  }

  // Object and array inputs are JSON: checked before the form is sent.
  function checkJson(form) {
    let ok = true;
    for (const area of form.querySelectorAll("textarea[data-json]")) {
      const problem = document.getElementById(area.id + "-problem");
      let message = "";
      if (area.value.trim()) {
        try {
          const value = JSON.parse(area.value);
          const isArray = Array.isArray(value);
          const isObject = value !== null && typeof value === "object" && !isArray;
          if (area.dataset.json === "object" && !isObject) message = "Expected a JSON object.";
          if (area.dataset.json === "array" && !isArray) message = "Expected a JSON array.";
        } catch (err) {
          message = "Not valid JSON: " + err.message;
        }
      }
      area.setAttribute("aria-invalid", message ? "true" : "false");
      if (problem) {
        problem.textContent = message;
        problem.hidden = !message;
      }
      if (message) ok = false;
    }
    return ok;
  }

  document.addEventListener("htmx:confirm", (ev) => {
    const form = ev.target.closest("form");
    if (form && form.querySelector("textarea[data-json]") && !checkJson(form)) {
      ev.preventDefault();
    }
  });

  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-copy]");
    if (!button) return;
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
    } catch (err) {
      button.textContent = "Select and copy";
    }
  });

  function wire(root) {
    liveExecutions(root);
    liveExecution(root);
    liveRuntimes(root);
  }
  onReady(() => wire(document));
  document.addEventListener("htmx:afterSettle", (ev) => wire(document));
})();

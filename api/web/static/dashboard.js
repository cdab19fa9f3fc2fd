// The dashboard's only script: draws the pages' Plotly figures and follows unfinished runs and
// studies on the API's event streams (Server-Sent Events; the browser never polls).
"use strict";

const TERMINAL = {
  runs: ["succeeded", "failed", "cancelled"],
  studies: ["succeeded", "cancelled"],
};
// Browsers open at most 6 connections per host over HTTP/1.1; an EventSource holds one. Keep
// some free for navigation and fetches: more unfinished items wait for a stream to end.
const MAX_STREAMS = 4;
let openStreams = 0;
const waiting = [];

function show(element, state) {
  element.dataset.status = state.status;
  const status = element.querySelector("[data-field=status]");
  status.textContent = state.status;
  status.className = `status status-${state.status}`;
  const percent = Math.round(100 * state.progress);
  element.querySelector("[data-field=bar]").style.width = `${100 * state.progress}%`;
  element.querySelector("[data-field=progress]").textContent = `${percent} %`;
  element.querySelector(".progress").setAttribute("aria-valuenow", String(percent));
  const phase = element.querySelector("[data-field=phase]");
  if (phase) phase.textContent = state.status === "running" ? state.phase || "" : "";
}

function follow(element) {
  if (openStreams >= MAX_STREAMS) {
    waiting.push(element);
    return;
  }
  openStreams += 1;
  const kind = element.dataset.kind;
  const source = new EventSource(`/api/v1/${kind}/${element.dataset.id}/events`);
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    source.close();
    openStreams -= 1;
    const next = waiting.shift();
    if (next) follow(next);
  };
  source.addEventListener("state", (event) => {
    const state = JSON.parse(event.data);
    show(element, state);
    if (TERMINAL[kind].includes(state.status)) {
      end(); // the server ends the stream too; closing stops the browser from reconnecting
      if (element.dataset.reload) window.location.reload();
    }
  });
  source.addEventListener("deleted", () => {
    show(element, { status: "deleted", progress: 0 });
    end();
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      element.classList.add("offline");
      element.title = "live updates unavailable: reload the page";
      end();
    }
  });
}

function draw(element, figure) {
  Plotly.newPlot(element, figure.data, figure.layout, { responsive: true, displaylogo: false });
}

function drawInline(root) {
  root.querySelectorAll("[data-figure]").forEach((element) => {
    if (!element.dataset.drawn && !element.closest("details:not([open])")) {
      element.dataset.drawn = "1";
      draw(element, JSON.parse(element.dataset.figure));
    }
  });
}

// A policy's schedule charts are fetched when its section is first opened.
function loadCharts(details) {
  if (details.dataset.loaded) return;
  details.dataset.loaded = "1";
  const note = details.querySelector(".chart-status");
  note.textContent = "loading…";
  fetch(details.dataset.charts, { credentials: "same-origin" })
    .then((response) => response.json().then((body) => ({ ok: response.ok, body })))
    .then(({ ok, body }) => {
      if (!ok) throw new Error(body.detail || "not available");
      note.textContent = body.note;
      for (const [part, figure] of Object.entries(body.figures)) {
        draw(details.querySelector(`[data-part=${part}]`), figure);
      }
      details.dataset.drawn = "1";
    })
    .catch((error) => {
      note.textContent = `No schedule: ${error.message}`;
    });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".live").forEach((element) => {
    if (!TERMINAL[element.dataset.kind].includes(element.dataset.status)) follow(element);
  });
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    // The filter form's address without its empty fields (an empty one means "all").
    select.addEventListener("change", () => {
      const query = new URLSearchParams();
      for (const [name, value] of new FormData(select.form)) if (value) query.append(name, value);
      const search = query.toString();
      window.location.assign(select.form.getAttribute("action") + (search ? `?${search}` : ""));
    });
  });
  drawInline(document);
  document.querySelectorAll("details").forEach((details) => {
    const opened = () => {
      if (!details.open) return;
      if (details.dataset.charts) loadCharts(details);
      drawInline(details);
    };
    details.addEventListener("toggle", opened);
    opened();
  });
});

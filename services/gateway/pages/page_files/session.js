// What every page of the gateway shares. Pages are public and hold no data: this script asks for a token in a
// labelled field it puts into the page's #token-entry, keeps it in sessionStorage (this tab only), and sends it on every API call
// and event stream. `Assay.onToken(load)` runs `load` once a token is known.
"use strict";

const Assay = (() => {
  const TOKEN_KEY = "assay-token";
  const RETRY_MS = [1000, 2000, 5000, 10000];  // between reconnections of an event stream

  // A DOM element; string children become text nodes, so nothing from the API is ever parsed as HTML.
  function element(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function say(text) {
    document.getElementById("status").textContent = text;
  }

  function headers(extra) {
    return { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY), ...(extra || {}) };
  }

  function refusal(status, text) {
    const error = new Error(text);
    error.status = status;
    return error;
  }

  async function checked(response) {
    if (response.status === 401 || response.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      throw refusal(response.status,
        "the gateway refused the token (" + response.status + "): enter a token of scope read");
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw refusal(response.status, body.detail || "the gateway answered " + response.status);
    }
    return response;
  }

  // GET (or `init`) an API path with the token; the answer's JSON.
  async function api(path, init) {
    const response = await fetch(path, { ...(init || {}), headers: headers((init || {}).headers) });
    return (await checked(response)).json();
  }

  // An API path's body as a Blob (a result file to save): a link the browser followed would carry no token.
  async function blob(path) {
    return (await checked(await fetch(path, { headers: headers() }))).blob();
  }

  // Frames of a Server-Sent Events body: {id, event, data} per blank-line-terminated block (comments skipped).
  async function* frames(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const frame = { id: null, event: "message", data: "" };
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "id") frame.id = text;
          else if (field === "event") frame.event = text;
          else if (field === "data") frame.data += (frame.data ? "\n" : "") + text;
        }
        if (frame.data) yield frame;
      }
    }
  }

  // Follow an SSE route with the token (EventSource cannot send one): `onFrame(event, data)` per frame, JSON
  // decoded. A dropped connection is resumed from the last frame's id (Last-Event-ID); the promise settles when
  // the stream ends on its own or `signal` aborts it.
  async function follow(path, onFrame, signal) {
    let lastId = null;
    for (let attempt = 0; ; attempt++) {
      try {
        const extra = lastId === null ? {} : { "Last-Event-ID": lastId };
        const response = await checked(await fetch(path, { headers: headers(extra), signal }));
        for await (const frame of frames(response.body)) {
          if (frame.id !== null) lastId = frame.id;
          attempt = 0;
          onFrame(frame.event, JSON.parse(frame.data));
        }
        return;
      } catch (error) {
        // A refusal (4xx) stays one; a lost connection or an unavailable gateway (5xx) is tried again.
        if ((signal && signal.aborted) || (error.status && error.status < 500)) throw error;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]));
      }
    }
  }

  // The token form, put into the page's #token-entry (its data-action names the button); `load` runs once a
  // token is entered, and at once when the tab already has one. While a token is kept, the form folds into one
  // line with a button to enter another.
  function onToken(load) {
    document.addEventListener("DOMContentLoaded", () => {
      const holder = document.getElementById("token-entry");
      const field = element("input", { id: "token", name: "token", type: "password", autocomplete: "off",
        required: "" });
      const form = element("form", { id: "token-form" },
        element("label", { for: "token" }, "Bearer token (kept in this tab only)"), field,
        element("button", { type: "submit" }, holder.dataset.action || "Use token"));
      const change = element("button", { type: "button", id: "change-token" }, "Use another token");
      const kept = element("p", { class: "token-kept" }, "Using the token kept in this tab. ", change);
      change.addEventListener("click", () => {
        holder.replaceChildren(form);
        field.focus();
      });
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, field.value.trim());
        field.value = "";
        holder.replaceChildren(kept);
        const main = document.querySelector("main");
        if (main) main.focus();  // the focused field is gone: continue where the page's content starts
        load();
      });
      const known = sessionStorage.getItem(TOKEN_KEY);
      holder.replaceChildren(known ? kept : form);
      if (known) load();
    });
  }

  return { element, say, headers, api, blob, follow, onToken };
})();

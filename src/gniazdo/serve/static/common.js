// Helpers shared by the pages: the API key, authorised fetches, error messages, SSE parsing.
// Plain browser JavaScript, no build step and no libraries. Model output only ever reaches the page
// through textContent (never parsed as HTML).
"use strict";

const KEY_STORAGE = "gniazdo.apiKey";
const VOTER_STORAGE = "gniazdo.voter";

function getApiKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ""; } catch (e) { return ""; }
}

function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
  } catch (e) { /* storage disabled: the key lives only in the input */ }
}

// An anonymous id for the arena's voter column, so that one person's votes can be told apart (or dropped)
// without knowing who they are.
function voterId() {
  try {
    let id = localStorage.getItem(VOTER_STORAGE);
    if (!id) {
      id = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
      localStorage.setItem(VOTER_STORAGE, id);
    }
    return id;
  } catch (e) { return null; }
}

// Wire the key box of a page: the stored key fills it, "save" stores it and calls onChange.
function setupApiKey(onChange) {
  const input = document.getElementById("api-key");
  const button = document.getElementById("save-key");
  input.value = getApiKey();
  const save = () => { setApiKey(input.value.trim()); if (onChange) onChange(); };
  button.addEventListener("click", save);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") save(); });
}

// fetch with the stored key as a Bearer token and a JSON body when given one.
function apiFetch(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const key = getApiKey();
  if (key) headers["Authorization"] = "Bearer " + key;
  const init = Object.assign({}, options, { headers });
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
    delete init.json;
  }
  return fetch(path, init);
}

// The server's words for a failed response: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the
// status line when the body is something else (a proxy's HTML page).
async function errorMessage(response) {
  let text = "";
  try { text = await response.text(); } catch (e) { /* body lost: the status is all we have */ }
  let message = "";
  try {
    const body = JSON.parse(text);
    if (body && body.error) message = typeof body.error === "string" ? body.error : body.error.message;
    else if (body && body.detail) message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (e) { message = text.length < 300 ? text.trim() : ""; }
  const head = "HTTP " + response.status + (response.statusText ? " " + response.statusText : "");
  return message ? head + ": " + message : head;
}

// A network failure (server down, connection cut) reads differently from a server's refusal.
function describeFailure(err) {
  if (err && err.name === "AbortError") return "przerwano";
  if (err instanceof TypeError) return "błąd sieci: nie można połączyć się z serwerem (" + err.message + ")";
  return String(err && err.message ? err.message : err);
}

// Read an OpenAI chat-completion SSE stream and call onDelta with each piece of text. Resolves with the
// whole text at [DONE] or at the end of the body; rejects on an error event or a cut connection.
async function readChatStream(response, onDelta) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data = [];
  let text = "";
  let done = false;
  const dispatch = () => {
    if (!data.length) return;
    const payload = data.join("\n");
    data = [];
    if (payload === "[DONE]") { done = true; return; }
    const chunk = JSON.parse(payload);
    if (chunk.error) throw new Error(chunk.error.message || JSON.stringify(chunk.error));
    for (const choice of chunk.choices || []) {
      const piece = choice.delta && choice.delta.content;
      if (piece) { text += piece; onDelta(piece, text); }
    }
  };
  const feed = (lines) => {
    for (const line of lines) {
      if (line === "") dispatch();
      else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      // comments (": ping") and other fields are ignored, as EventSource does
    }
  };
  while (!done) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    feed(lines);
  }
  if (!done) feed([buffer + decoder.decode(), ""]);
  if (!done) throw new Error("odpowiedź urwała się przed końcem (brak [DONE])");
  try { await reader.cancel(); } catch (e) { /* already closed */ }
  return text;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setStatus(message) {
  const el = document.getElementById("status");
  if (el) el.textContent = message || "";
}

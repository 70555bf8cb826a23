// The chat page: a conversation with one model through POST /v1/chat/completions (stream: true).
// The whole conversation lives in this page (the API is stateless): each request sends the system prompt
// and every earlier turn.
"use strict";

const els = {
  model: document.getElementById("model"),
  temperature: document.getElementById("temperature"),
  maxTokens: document.getElementById("max-tokens"),
  system: document.getElementById("system-prompt"),
  messages: document.getElementById("messages"),
  prompt: document.getElementById("prompt"),
  send: document.getElementById("send"),
  stop: document.getElementById("stop"),
  reset: document.getElementById("reset"),
};
let history = [];       // {role, content} of finished turns, system prompt excluded
let controller = null;  // the running request's AbortController, null when idle

async function loadModels() {
  const previous = els.model.value;
  try {
    const response = await apiFetch("/v1/models");
    if (!response.ok) { showError("Nie udało się pobrać listy modeli. " + await errorMessage(response)); return; }
    const ids = ((await response.json()).data || []).map((m) => m.id);
    els.model.replaceChildren(...ids.map((id) => new Option(id, id)));
    if (ids.includes(previous)) els.model.value = previous;
    showError(ids.length ? "" : "Serwer nie udostępnia żadnego modelu.");
  } catch (err) {
    showError("Nie udało się pobrać listy modeli: " + describeFailure(err));
  }
}

// One bubble of the conversation; returns the element whose textContent holds the text.
function addMessage(role, text) {
  const box = document.createElement("div");
  box.className = "message " + role;
  const label = document.createElement("span");
  label.className = "role";
  label.textContent = role === "user" ? "Ty" : "Model";
  const content = document.createElement("div");
  content.className = "content";
  content.textContent = text;
  box.append(label, content);
  els.messages.append(box);
  box.scrollIntoView({ block: "end" });
  return content;
}

function setBusy(busy) {
  els.send.disabled = busy;
  els.stop.disabled = !busy;
  els.reset.disabled = busy;
}

// The request body; empty number fields are left out so that the server's defaults apply.
function requestBody(messages) {
  const body = { model: els.model.value, messages, stream: true };
  if (els.temperature.value !== "") body.temperature = Number(els.temperature.value);
  if (els.maxTokens.value !== "") body.max_tokens = Number(els.maxTokens.value);
  return body;
}

function conversation(userMessage) {
  const system = els.system.value.trim();
  return [...(system ? [{ role: "system", content: system }] : []), ...history, userMessage];
}

async function send() {
  const text = els.prompt.value;
  if (!text.trim() || controller) return;
  if (!els.model.value) { showError("Nie wybrano modelu (czy serwer działa, czy klucz API jest poprawny?)."); return; }
  showError("");
  const userMessage = { role: "user", content: text };
  const userEl = addMessage("user", text);
  const answerEl = addMessage("assistant", "");
  els.prompt.value = "";
  setBusy(true);
  setStatus("Generowanie…");
  controller = new AbortController();
  try {
    const response = await apiFetch("/v1/chat/completions",
      { method: "POST", json: requestBody(conversation(userMessage)), signal: controller.signal });
    if (!response.ok) throw new Error(await errorMessage(response));
    const answer = await readChatStream(response, (piece, whole) => { answerEl.textContent = whole; });
    answerEl.textContent = answer;
    history.push(userMessage, { role: "assistant", content: answer });
    setStatus("");
  } catch (err) {
    const partial = answerEl.textContent;
    if (err.name === "AbortError" && partial) {
      // what arrived stays in the conversation: the user has read it and may go on from it
      history.push(userMessage, { role: "assistant", content: partial });
      setStatus("Przerwano.");
    } else {
      // the exchange did not happen: take it off the page and give the text back for another try
      userEl.parentElement.remove();
      answerEl.parentElement.remove();
      els.prompt.value = text;
      setStatus("");
      if (err.name !== "AbortError") showError(describeFailure(err));
    }
  } finally {
    controller = null;
    setBusy(false);
  }
}

function reset() {
  if (controller) controller.abort();
  history = [];
  els.messages.replaceChildren();
  showError("");
  setStatus("");
}

els.send.addEventListener("click", send);
els.stop.addEventListener("click", () => { if (controller) controller.abort(); });
els.reset.addEventListener("click", reset);
els.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
setupApiKey(() => { showError(""); loadModels(); });
loadModels();

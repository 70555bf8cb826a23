// The arena page: one prompt, two anonymous answers streamed side by side, one vote, then the names.
// API: POST /arena/api/battles {prompt, temperature, max_tokens} -> {battle_id, same_model};
//      POST /arena/api/battles/{id}/answer/{a|b} -> an OpenAI chat-completion SSE stream;
//      POST /arena/api/battles/{id}/vote {winner, voter} -> {model_a, model_b, stored}.
"use strict";

const arena = {
  prompt: document.getElementById("prompt"),
  temperature: document.getElementById("temperature"),
  maxTokens: document.getElementById("max-tokens"),
  start: document.getElementById("start"),
  stop: document.getElementById("stop"),
  battle: document.getElementById("battle"),
  votes: document.getElementById("votes"),
  sameModel: document.getElementById("same-model"),
  voteButtons: Array.from(document.querySelectorAll("#votes button")),
};
let battleId = null;
let controller = null;  // aborts both answers at once

function sideEl(kind, side) { return document.getElementById(kind + "-" + side); }

function setVoting(enabled) {
  for (const b of arena.voteButtons) b.disabled = !enabled;
}

function clearBattle() {
  for (const side of ["a", "b"]) {
    sideEl("answer", side).textContent = "";
    sideEl("name", side).textContent = "";
  }
  arena.sameModel.hidden = true;
  arena.votes.hidden = true;
  setVoting(false);
  showError("");
}

function battleBody(prompt) {
  const body = { prompt };
  if (arena.temperature.value !== "") body.temperature = Number(arena.temperature.value);
  if (arena.maxTokens.value !== "") body.max_tokens = Number(arena.maxTokens.value);
  return body;
}

// Stream one side's answer into its box; resolves true when it finished, false when it failed.
async function streamAnswer(id, side, signal) {
  const box = sideEl("answer", side);
  try {
    const response = await apiFetch("/arena/api/battles/" + encodeURIComponent(id) + "/answer/" + side,
      { method: "POST", signal });
    if (!response.ok) throw new Error(await errorMessage(response));
    box.textContent = await readChatStream(response, (piece, whole) => { box.textContent = whole; });
    return true;
  } catch (err) {
    if (err.name !== "AbortError") showError("Model " + side.toUpperCase() + ": " + describeFailure(err));
    return false;
  }
}

async function startBattle() {
  const prompt = arena.prompt.value;
  if (!prompt.trim() || controller) return;
  clearBattle();
  arena.start.disabled = true;
  arena.stop.disabled = false;
  controller = new AbortController();
  setStatus("Losowanie modeli…");
  try {
    const response = await apiFetch("/arena/api/battles",
      { method: "POST", json: battleBody(prompt), signal: controller.signal });
    if (!response.ok) throw new Error(await errorMessage(response));
    const battle = await response.json();
    battleId = battle.battle_id;
    arena.sameModel.hidden = !battle.same_model;
    arena.battle.hidden = false;
    setStatus("Modele odpowiadają…");
    const results = await Promise.all(["a", "b"].map((side) => streamAnswer(battleId, side, controller.signal)));
    const finished = results.every(Boolean);
    arena.votes.hidden = !finished;
    setVoting(finished);
    setStatus(finished ? "Która odpowiedź jest lepsza?" : (controller.signal.aborted ? "Przerwano." : ""));
  } catch (err) {
    if (err.name !== "AbortError") showError(describeFailure(err));
    setStatus(err.name === "AbortError" ? "Przerwano." : "");
  } finally {
    controller = null;
    arena.start.disabled = false;
    arena.stop.disabled = true;
  }
}

async function vote(winner) {
  if (!battleId) return;
  setVoting(false);
  try {
    const response = await apiFetch("/arena/api/battles/" + encodeURIComponent(battleId) + "/vote",
      { method: "POST", json: { winner, voter: voterId() } });
    if (!response.ok) {
      const failure = new Error(await errorMessage(response));
      failure.final = response.status === 404 || response.status === 409;  // expired, or already voted
      throw failure;
    }
    const names = await response.json();
    sideEl("name", "a").textContent = "— " + names.model_a;
    sideEl("name", "b").textContent = "— " + names.model_b;
    setStatus(names.stored ? "Dziękujemy, głos zapisany." : "Dziękujemy (głos nie trafia do rankingu).");
    battleId = null;
  } catch (err) {
    showError("Głos nie został zapisany: " + describeFailure(err));
    setVoting(!err.final);  // a network failure may be retried; an expired or voted battle may not
  }
}

arena.start.addEventListener("click", startBattle);
arena.stop.addEventListener("click", () => { if (controller) controller.abort(); });
arena.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); startBattle(); }
});
for (const b of arena.voteButtons) b.addEventListener("click", () => vote(b.dataset.winner));
setupApiKey(() => showError(""));

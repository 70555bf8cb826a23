// The leaderboard page: GET /arena/api/leaderboard rendered as a table (text only, via textContent).
"use strict";

const COLUMNS = {
  bradley_terry: [["#", (r, i) => i + 1], ["Model", (r) => r.model], ["Ocena (BT)", (r) => r.rating.toFixed(0)],
    ["95% CI", (r) => r.ci_low === null ? "–" : r.ci_low.toFixed(0) + " – " + r.ci_high.toFixed(0)],
    ["Elo online", (r) => r.elo.toFixed(0)], ["Gry", (r) => r.games],
    ["Wygrane", (r) => (100 * r.win_rate).toFixed(1) + "%"]],
  win_rate: [["#", (r, i) => i + 1], ["Model", (r) => r.model], ["Gry", (r) => r.games], ["W", (r) => r.wins],
    ["R", (r) => r.ties], ["P", (r) => r.losses], ["Wygrane", (r) => (100 * r.win_rate).toFixed(1) + "%"]],
};

function cell(tag, text) {
  const el = document.createElement(tag);
  el.textContent = String(text);
  return el;
}

function render(board) {
  const columns = COLUMNS[board.method] || COLUMNS.win_rate;
  document.getElementById("leaderboard-head").replaceChildren(...columns.map(([title]) => cell("th", title)));
  document.getElementById("leaderboard-body").replaceChildren(...board.rows.map((row, i) => {
    const tr = document.createElement("tr");
    tr.append(...columns.map(([, value]) => cell("td", value(row, i))));
    return tr;
  }));
  const method = board.method === "bradley_terry"
    ? "Bradley–Terry, " + board.rounds + " prób bootstrapu"
    : "Za mało głosów na ranking (potrzeba " + board.min_votes + "): odsetek wygranych";
  document.getElementById("method").textContent = "Głosów: " + board.votes + ". " + (board.votes ? method : "");
}

async function loadLeaderboard() {
  try {
    const response = await apiFetch("/arena/api/leaderboard");
    if (!response.ok) { showError(await errorMessage(response)); return; }
    showError("");
    render(await response.json());
  } catch (err) {
    showError("Nie udało się pobrać rankingu: " + describeFailure(err));
  }
}

setupApiKey(loadLeaderboard);
loadLeaderboard();

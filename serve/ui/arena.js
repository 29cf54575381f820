// The arena page (serve/arena.ts): shows the next item from GET /api/state and sends each vote, skip or undo
// as JSON to its own server, which appends it to the results file before answering with the new state. A
// reload, or a restarted server, asks for the state again: nothing lives only in the page.
"use strict";

const $ = (id) => document.getElementById(id);
/** The state last received from the server. */
let state = null;
/** True while a request is on its way: keys and buttons wait, so a double press cannot vote twice. */
let busy = false;

function showError(message) {
  $("error").hidden = message === "";
  $("error").textContent = message;
}

function percent(x) {
  return x === null ? "–" : `${(x * 100).toFixed(1)}%`;
}

function cell(text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  return td;
}

function render(next) {
  state = next;
  $("judge").textContent = `${state.judge}, each question shown ${
    state.rule === "once" ? "once" : "in both orders"
  }`;
  const { done, total } = state.progress;
  $("progress").max = Math.max(total, 1);
  $("progress").value = done;
  $("progress-text").textContent = `${done} of ${total} voted`;
  $("voting").hidden = state.item === null;
  $("finished").hidden = state.item !== null;
  if (state.item) {
    $("question").textContent = state.item.question;
    $("answer-a").textContent = state.item.answers[0];
    $("answer-b").textContent = state.item.answers[1];
  }
  for (const id of ["vote-a", "vote-b", "vote-tie", "skip"]) $(id).disabled = state.item === null;
  $("undo").disabled = state.undo === null;
  $("table").tBodies[0].replaceChildren(...state.table.pairs.map((p) => {
    const row = document.createElement("tr");
    row.append(
      cell(p.model_a),
      cell(p.model_b),
      cell(`${percent(p.win)} (${p.wins})`, true),
      cell(`${percent(p.tie)} (${p.ties})`, true),
      cell(`${percent(p.loss)} (${p.losses})`, true),
      cell(percent(p.win_rate), true),
      cell(String(p.judged), true),
      cell(String(p.pending ?? 0), true),
      cell(String(p.missing), true),
    );
    return row;
  }));
  $("table-note").textContent = state.table.note;
  $("agreement").replaceChildren(...state.table.agreement.map((line) => {
    const li = document.createElement("li");
    li.textContent = `Agreement (FastChat's compute_agreement): ${line}`;
    return li;
  }));
  document.body.dataset.item = state.item ? state.item.key : "";
  document.body.dataset.done = String(done);
}

async function request(path, body) {
  if (busy) return;
  busy = true;
  document.body.dataset.busy = "true";
  try {
    const res = await fetch(
      path,
      body === undefined ? {} : {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      },
    );
    const answer = await res.json();
    if (!res.ok) {
      showError(`${res.status}: ${answer.error ? answer.error.message : JSON.stringify(answer)}`);
      // The page may be behind the server (another tab, a restart): show what is current.
      if (res.status === 404 || res.status === 409) render(await (await fetch("/api/state")).json());
      return;
    }
    showError("");
    render(answer);
  } catch (e) {
    showError(
      `the arena server did not answer (${e.message}); your votes so far are saved. Reload to go on.`,
    );
  } finally {
    busy = false;
    delete document.body.dataset.busy;
  }
}

function vote(choice) {
  if (state && state.item) request("/api/vote", { item: state.item.key, vote: choice });
}

function skip() {
  if (state && state.item) request("/api/skip", { item: state.item.key });
}

function undo() {
  if (state && state.undo) request("/api/undo", { item: state.undo });
}

for (const button of document.querySelectorAll("[data-vote]")) {
  button.addEventListener("click", () => vote(button.dataset.vote));
}
$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);

const KEYS = { "1": "A", a: "A", "2": "B", b: "B", "3": "tie", t: "tie" };
document.addEventListener("keydown", (event) => {
  if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (Object.hasOwn(KEYS, key)) vote(KEYS[key]);
  else if (key === "s") skip();
  else if (key === "u") undo();
  else return;
  event.preventDefault();
});

request("/api/state").finally(() => {
  document.body.dataset.ready = "true";
});

// The chat page (serve/pages.ts): talks to its own server's OpenAI-compatible API only — /v1/models for the
// models and adapters, /v1/chat/completions with stream: true for answers, /health after each answer. Text
// from the server is only ever set as textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SAMPLING_FIELDS = [
  "temperature",
  "top_p",
  "top_k",
  "max_tokens",
  "frequency_penalty",
  "presence_penalty",
  "repetition_penalty",
  "seed",
];

/** The conversation so far, as the API takes it. */
const history = [];
/** The running answer's AbortController, while one streams. */
let running = null;

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

function showError(message) {
  const box = $("error");
  box.hidden = message === "";
  box.textContent = message;
}

/** The message of an API error response, in OpenAI's shape or not. */
async function errorMessage(res) {
  const text = await res.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return `${res.status}: ${body.error.message}`;
  } catch {
    // not JSON: show the text
  }
  return `${res.status}: ${text.slice(0, 300)}`;
}

async function loadModels() {
  const res = await fetch("/v1/models", { headers: headers() });
  if (!res.ok) {
    showError(
      `${await errorMessage(res)}${res.status === 401 ? "\nEnter the server's API key in Settings." : ""}`,
    );
    return;
  }
  const list = (await res.json()).data;
  const select = $("model");
  const chosen = select.value;
  select.replaceChildren(...list.map((m) => {
    const option = document.createElement("option");
    option.value = m.id;
    option.textContent = m.parent ? `${m.id} (adapter on ${m.parent})` : m.id;
    return option;
  }));
  if (list.some((m) => m.id === chosen)) select.value = chosen;
  if (list[0] && list[0].max_model_len) $("max_tokens").max = String(list[0].max_model_len);
  showError("");
}

/** Shows /health; after a stop, asks again for a while until the server has freed the answer's slot. */
async function refreshHealth(untilIdle = false) {
  for (let attempt = 0; attempt < 20; attempt++) {
    let body;
    try {
      body = await (await fetch("/health")).json();
      $("health").textContent = `server ${body.status}: ${body.running} running, ${body.queued} queued`;
    } catch (e) {
      $("health").textContent = `server unreachable (${e.message})`;
      return;
    }
    if (!untilIdle || body.running + body.queued === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The sampling fields that are set, as numbers. */
function samplingSettings() {
  const settings = {};
  for (const field of SAMPLING_FIELDS) {
    const input = $(field);
    if (input.value.trim() === "") continue;
    if (!input.checkValidity()) throw new Error(`${field}: ${input.validationMessage}`);
    settings[field] = Number(input.value);
  }
  return settings;
}

function addMessage(role, text) {
  const item = document.createElement("li");
  item.className = `msg ${role}`;
  const who = document.createElement("div");
  who.className = "role";
  who.textContent = role === "user" ? "You" : $("model").value;
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  const meta = document.createElement("div");
  meta.className = "meta";
  item.append(who, body, meta);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return { item, body, meta };
}

/** The `data:` payloads of a server-sent event stream, as they arrive. */
async function* sseData(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) if (line.startsWith("data: ")) yield line.slice(6);
    }
  }
}

function setRunning(controller) {
  running = controller;
  $("stop").disabled = controller === null;
  $("send").disabled = controller !== null;
}

async function send() {
  const text = $("prompt").value;
  if (running || text.trim() === "") return;
  let settings;
  try {
    settings = samplingSettings();
  } catch (e) {
    showError(e.message);
    return;
  }
  showError("");
  $("prompt").value = "";
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const answer = addMessage("assistant", "");
  answer.item.setAttribute("aria-busy", "true");
  const system = $("system").value.trim();
  const messages = system ? [{ role: "system", content: system }, ...history] : [...history];
  const controller = new AbortController();
  setRunning(controller);
  const started = performance.now();
  let finish = "";
  let usage = null;
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      signal: controller.signal,
      body: JSON.stringify({
        model: $("model").value,
        messages,
        stream: true,
        stream_options: { include_usage: true },
        ...settings,
      }),
    });
    if (!res.ok) throw new Error(await errorMessage(res));
    for await (const data of sseData(res)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices && chunk.choices[0];
      if (!choice) continue;
      if (choice.delta && choice.delta.content) answer.body.textContent += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  } catch (e) {
    if (e.name === "AbortError") finish = "stopped";
    else showError(e.message);
  } finally {
    setRunning(null);
    answer.item.removeAttribute("aria-busy");
    const seconds = (performance.now() - started) / 1000;
    const tokens = usage ? `, ${usage.completion_tokens} tokens` : "";
    answer.meta.textContent = `${finish || "ended"} · ${seconds.toFixed(1)} s${tokens}`;
    answer.item.dataset.finish = finish || "ended";
    if (answer.body.textContent !== "") history.push({ role: "assistant", content: answer.body.textContent });
    $("prompt").focus();
    await refreshHealth(finish === "stopped");
  }
}

function stop() {
  if (running) running.abort();
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
$("prompt").addEventListener("keydown", (event) => {
  // Enter while an input method is composing (Korean, say) finishes the syllable; it does not send.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && running) {
    event.preventDefault();
    stop();
  }
});
$("stop").addEventListener("click", stop);
$("clear").addEventListener("click", () => {
  stop();
  history.length = 0;
  $("messages").replaceChildren();
  showError("");
  $("prompt").focus();
});
$("api-key").addEventListener("change", loadModels);

loadModels().then(() => refreshHealth()).catch((e) => showError(e.message)).finally(() => {
  document.body.dataset.ready = "true";
});
$("prompt").focus();

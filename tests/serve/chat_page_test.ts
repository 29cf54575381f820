/**
 * The chat page of `deno task serve` (`serve/ui/`): served with a strict CSP, and driven in headless Chromium
 * (skipped and counted without it; under CI=true it fails): it streams an answer from the micro model, is
 * usable from the keyboard, stops an answer (the server frees the slot), lists the model and its adapters,
 * sends the sampling settings, and loads nothing from anywhere but its own server.
 */
import { loadEngine } from "../../generate/engine.ts";
import type { GenerationEngine } from "../../generate/engine_contract.ts";
import { FONT_STACK } from "../../report/page.ts";
import { API_RANGES } from "../../serve/openai_types.ts";
import { PAGE_CSP } from "../../serve/pages.ts";
import { startServer } from "../../serve/server.ts";
import { assert, assertEquals, assertStringIncludes } from "../asserts.ts";
import { foreignRequests, type Page, withBrowser } from "../browser.ts";
import { chromiumCapability, GPU_TEST, testGpu, testNeeding } from "../helpers.ts";
import { writeMicroModel } from "../model/micro_model.ts";
import { FakeEngine } from "./fake_engine.ts";
import { TEST_LIMITS, waitIdle } from "./http.ts";

const CHROMIUM = await chromiumCapability();
const UI = new URL("../../serve/ui/", import.meta.url);

async function withChatServer(
  engine: GenerationEngine,
  fn: (url: string) => Promise<void>,
  extra: { maxTokensLimit?: number } = {},
): Promise<void> {
  const server = startServer(engine, { ...TEST_LIMITS, maxPromptTokens: 100, ...extra });
  try {
    await fn(server.url);
    await waitIdle(server.url);
  } finally {
    await server.close();
  }
}

/** Opens the chat page and waits until it has listed the models. */
async function openChat(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.waitFor(`document.body.dataset.ready === "true"`);
}

/** The last assistant message once it has ended: its text and how it ended. */
function lastAnswer(page: Page): Promise<{ text: string; finish: string }> {
  return page.waitFor(`(() => {
    const item = [...document.querySelectorAll(".msg.assistant")].at(-1);
    return item && item.dataset.finish
      ? { text: item.querySelector(".text").textContent, finish: item.dataset.finish }
      : null;
  })()`);
}

function assertOnlyOwnOrigin(page: Page, url: string): void {
  assertEquals(foreignRequests(page, url), [], "requests to anywhere but the server");
  assertEquals(page.errors, [], "errors in the page");
  assert(page.requests.some((r) => r.endsWith("/ui/chat.js")), `requests: ${page.requests.join(", ")}`);
}

Deno.test("chat page: served at / with a strict CSP; only its own files; the API routes unchanged", async () => {
  await withChatServer(new FakeEngine(), async (url) => {
    const page = await fetch(`${url}/`);
    assertEquals(page.status, 200);
    assertEquals(page.headers.get("content-type"), "text/html; charset=utf-8");
    assertEquals(page.headers.get("content-security-policy"), PAGE_CSP);
    assertStringIncludes(PAGE_CSP, "script-src 'self'");
    assert(!PAGE_CSP.includes("unsafe-inline") && !PAGE_CSP.includes("http"), PAGE_CSP);
    const html = await page.text();
    assert(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), "no inline script");
    assert(!/\bstyle=|<style/i.test(html), "no inline style");
    assert(!/https?:\/\//.test(html), "no absolute URL");
    const script = await fetch(`${url}/ui/chat.js`);
    assertEquals(script.headers.get("content-type"), "text/javascript; charset=utf-8");
    assertEquals(script.headers.get("x-content-type-options"), "nosniff");
    assert(!/https?:\/\//.test(await script.text()), "the script names no other host");
    const head = await fetch(`${url}/`, { method: "HEAD" });
    assertEquals([head.status, await head.text()], [200, ""]);
    for (const path of ["/ui/../deno.json", "/ui/arena.js", "/ui/", "/serve/ui/chat.js", "/chat.html"]) {
      const res = await fetch(`${url}${path}`);
      assertEquals([res.status, (await res.json()).error.code], [404, "unknown_route"], path);
    }
    const post = await fetch(`${url}/`, { method: "POST", body: "{}" });
    assertEquals([post.status, post.headers.get("allow")], [405, "GET, HEAD"]);
    await post.body?.cancel();
    const health = await (await fetch(`${url}/health`)).json();
    assertEquals(health.status, "ok");
  });
  const server = startServer(new FakeEngine(), { ...TEST_LIMITS, ui: false });
  try {
    const res = await fetch(`${server.url}/`);
    assertEquals([res.status, (await res.json()).error.code], [404, "unknown_route"], "ui: false");
  } finally {
    await server.close();
  }
});

Deno.test("chat page: one font stack with the report's; every sampling input within the API's range", async () => {
  const css = (await Deno.readTextFile(new URL("ui.css", UI))).replace(/\s+/g, " ");
  assertStringIncludes(css, `body { font-family: ${FONT_STACK};`);
  const html = await Deno.readTextFile(new URL("chat.html", UI));
  const attribute = (input: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(input)?.[1];
  for (const [field, range] of Object.entries(API_RANGES)) {
    const input = new RegExp(`<input id="${field}"[^>]*>`).exec(html.replace(/\s+/g, " "))?.[0];
    assert(input, `an input for ${field}`);
    assertEquals(attribute(input, "name"), field);
    const min = attribute(input, "min"), max = attribute(input, "max");
    const r = range as { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean };
    if (r.min !== undefined) {
      assert(
        min !== undefined && (r.minExclusive ? Number(min) > r.min : Number(min) >= r.min),
        `${field} min`,
      );
    }
    if (r.max !== undefined) {
      const top = Number(max);
      assert(max !== undefined && (r.maxExclusive ? top < r.max : top <= r.max), `${field} max ${max}`);
    }
  }
  assertStringIncludes(html, `<input id="max_tokens" name="max_tokens"`);
});

testNeeding(
  CHROMIUM,
  "chat page (Chromium): streams an answer from the micro model, in a Korean font, loading nothing else",
  GPU_TEST,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "chat-page-" });
    try {
      const engine = await loadEngine(await writeMicroModel(`${root}/model`), {
        maxConcurrent: 2,
        maxContextTokens: 128,
        gpu: await testGpu(),
        modelId: "micro",
      });
      await withChatServer(engine, async (url) => {
        const question = "한국의 수도는 어디인가요?";
        const expected = await (await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: "micro",
            messages: [{ role: "user", content: question }],
            temperature: 0,
            max_tokens: 12,
          }),
        })).json();
        await withBrowser(async (browser) => {
          const page = await browser.newPage();
          await openChat(page, url);
          assertEquals(await page.eval(`document.getElementById("model").value`), "micro");
          await page.eval(`document.getElementById("temperature").value = "0";
            document.getElementById("max_tokens").value = "12";`);
          await page.eval(`document.getElementById("prompt").focus()`);
          await page.type(question);
          await page.press("Enter");
          const answer = await lastAnswer(page);
          assertEquals(answer.text, expected.choices[0].message.content, "the streamed answer is the API's");
          assertEquals(answer.finish, expected.choices[0].finish_reason);
          const fonts = await page.fontsOf(".msg.user .text");
          assert(fonts.includes("NanumGothic"), `the Korean question is drawn with ${fonts.join(", ")}`);
          assertOnlyOwnOrigin(page, url);
          assert(page.requests.includes(`${url}/v1/chat/completions`), "the answer came from the API");
        });
      }, { maxTokensLimit: 64 });
      engine.close();
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

testNeeding(
  CHROMIUM,
  "chat page (Chromium): keyboard, stop (the slot is freed), adapters listed, settings sent, errors shown",
  {},
  async () => {
    class AdapterEngine extends FakeEngine {
      readonly adapters = ["sft-lora"];
    }
    const engine = new AdapterEngine({ reply: () => "하나 둘 셋 넷 다섯 ".repeat(40), tokenDelayMs: 30 });
    await withChatServer(engine, async (url) => {
      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        await openChat(page, url);
        const options = await page.eval<string[]>(
          `[...document.querySelectorAll("#model option")].map((o) => o.value)`,
        );
        assertEquals(options, ["fake-model", "sft-lora"], "the model and its adapter");
        await page.eval(`(() => {
          document.getElementById("model").value = "sft-lora";
          document.getElementById("temperature").value = "0.3";
          document.getElementById("top_k").value = "5";
          document.getElementById("presence_penalty").value = "0.5";
          document.getElementById("max_tokens").value = "200";
          document.getElementById("prompt").focus();
        })()`);
        // Shift+Enter is a new line, Enter sends both lines.
        await page.type("첫째 줄");
        await page.press("Enter", { shift: true });
        await page.type("둘째 줄");
        assertEquals(await page.eval(`document.getElementById("prompt").value`), "첫째 줄\n둘째 줄");
        await page.press("Enter");
        await page.waitFor(`document.querySelector(".msg.assistant .text")?.textContent.length > 10`);
        assertEquals((await (await fetch(`${url}/health`)).json()).running, 1, "the answer is running");
        // The focus is on the page, not on the stop button: Esc stops from anywhere.
        await page.press("Escape");
        const stopped = await lastAnswer(page);
        assertEquals(stopped.finish, "stopped");
        assert(stopped.text.length < 200, "stopped before the end");
        const request = engine.requests.at(-1)!;
        assertEquals(request.adapter, "sft-lora");
        assertEquals([request.temperature, request.topK, request.presencePenalty], [0.3, 5, 0.5]);
        assertStringIncludes(request.prompt, "첫째 줄\n둘째 줄");
        // The server frees the slot (when the engine next looks at the abort) and the page shows it too.
        await waitIdle(url);
        await page.waitFor(`document.getElementById("health").textContent.includes("0 running")`);
        assertEquals(engine.aborts, 1, "the engine saw the abort");
        // The focus is back in the message box; Tab moves on to Send, with a visible outline.
        assertEquals(await page.eval(`document.activeElement.id`), "prompt");
        await page.press("Tab");
        assertEquals(await page.eval(`document.activeElement.id`), "send");
        assertEquals(await page.eval(`getComputedStyle(document.activeElement).outlineStyle`), "solid");
        await page.eval(`document.getElementById("prompt").focus()`);
        // An API error is shown, naming the field.
        await page.eval(`document.getElementById("max_tokens").value = "1000"`);
        await page.type("또");
        await page.press("Enter");
        const error = await page.waitFor<string>(
          `!document.getElementById("error").hidden && document.getElementById("error").textContent`,
        );
        assertStringIncludes(error, "400");
        assertStringIncludes(error, "max_tokens");
        page.errors.splice(0, page.errors.length, ...page.errors.filter((e) => !e.includes("400")));
        assertOnlyOwnOrigin(page, url);
      });
    });
  },
);

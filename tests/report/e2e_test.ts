/**
 * The report drawn by a real browser: headless Chromium (`chromium` on PATH; `deno task setup` installs it
 * with fonts-nanum). Without them these tests are skipped and counted (under CI=true they fail), saying how to
 * install them.
 */
import type { ChartSpec } from "../../report/charts.ts";
import {
  CHROMIUM_INSTALL_HINT,
  ChromiumMissingError,
  findChromium,
  renderPage,
  writeChartPngs,
} from "../../report/chromium.ts";
import { readReportInputs } from "../../report/inputs.ts";
import { buildReport } from "../../report/page.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../asserts.ts";
import { chromiumCapability, taskArgs, taskFile, testNeeding } from "../helpers.ts";
import { writeFixtureInputs } from "./fixtures.ts";

const CHROMIUM = await chromiumCapability();

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** Width and height from a PNG's IHDR chunk. */
function pngSize(bytes: Uint8Array): { width: number; height: number } {
  assertEquals([...bytes.slice(0, 8)], PNG_SIGNATURE, "a PNG file");
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Data elements a chart should place: every non-null value of every dataset. */
function expectedElements(chart: ChartSpec): number {
  return chart.config.data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null).length, 0);
}

async function withReport(fn: (dir: string, html: string, charts: ChartSpec[]) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "report-e2e-" });
  try {
    const paths = await writeFixtureInputs(dir);
    const inputs = await readReportInputs([...paths.runs, paths.kobest, paths.summary, paths.judgments]);
    const { html, charts } = await buildReport(inputs, { title: "한국어 전이 보고서" });
    await Deno.writeTextFile(`${dir}/report.html`, html);
    await fn(dir, `${dir}/report.html`, charts);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

testNeeding(
  CHROMIUM,
  "report e2e: Chromium draws every chart, with no error, in a Korean font",
  {},
  async () => {
    await withReport(async (dir, html, charts) => {
      const render = await renderPage(html, { screenshot: `${dir}/shot.png`, windowSize: [1280, 2400] });
      assertEquals(render.errors, [], "errors while drawing");
      assertEquals(render.charts.map((c) => c.id), charts.map((c) => c.id), "every chart drawn, in order");
      for (const [i, drawn] of render.charts.entries()) {
        const spec = charts[i];
        // Axes and labels alone paint a few thousand pixels; lines and bars add more.
        assert(drawn.painted > 5000, `${drawn.id}: only ${drawn.painted} pixels painted`);
        assertEquals(drawn.elements, expectedElements(spec), `${drawn.id}: data elements placed`);
        assertEquals(drawn.height, spec.height, `${drawn.id}: canvas height follows its box`);
        assert(drawn.width > 400, `${drawn.id}: ${drawn.width} px wide`);
      }
      assert(
        render.fonts["NanumGothic"],
        `NanumGothic is missing (${CHROMIUM_INSTALL_HINT}): ${JSON.stringify(render.fonts)}`,
      );
      const shot = await Deno.readFile(`${dir}/shot.png`);
      assertEquals(pngSize(shot), { width: 1280, height: 2400 });
      assert(shot.length > 50_000, `the screenshot is nearly empty (${shot.length} bytes)`);
    });
  },
);

testNeeding(
  CHROMIUM,
  "report e2e: --png writes each chart as a PNG at twice the page's resolution",
  {},
  async () => {
    await withReport(async (dir, html, charts) => {
      const written = await writeChartPngs(html, `${dir}/png`);
      assertEquals(written, charts.map((c) => `${dir}/png/${c.id}.png`));
      for (const [i, path] of written.entries()) {
        const size = pngSize(await Deno.readFile(path));
        assertEquals(size.height, charts[i].height * 2, `${path}: height`);
        assert(size.width > 800, `${path}: ${size.width} px wide`);
      }
    });
  },
);

testNeeding(CHROMIUM, "report e2e: a chart that fails to draw is reported, not hidden", {}, async () => {
  await withReport(async (dir, html) => {
    const broken = (await Deno.readTextFile(html)).replace(`"type":"bar"`, `"type":"no-such-chart"`);
    await Deno.writeTextFile(`${dir}/broken.html`, broken);
    const render = await renderPage(`${dir}/broken.html`);
    assertEquals(render.errors.length, 1, JSON.stringify(render.errors));
    assertStringIncludes(render.errors[0], "chart kobest-f1:");
    assertStringIncludes(render.errors[0], "no-such-chart");
    assert(!render.charts.some((c) => c.id === "kobest-f1"), "the broken chart is not counted as drawn");
    await assertRejects(() => writeChartPngs(`${dir}/broken.html`, `${dir}/png`), Error, "reported errors");
  });
});

Deno.test("report e2e: a missing browser is an error that says how to install it", async () => {
  const error = await assertRejects(() => findChromium("/nonexistent/chromium"), ChromiumMissingError);
  assertStringIncludes(error.message, "/nonexistent/chromium");
  assertStringIncludes(error.message, "apt-get install -y chromium fonts-nanum");
  await assertRejects(
    () => renderPage("x.html", { chromium: "/nonexistent/chromium" }),
    ChromiumMissingError,
  );
});

testNeeding(
  CHROMIUM,
  "report e2e: deno task report writes the page and the PNGs and says where",
  {},
  async () => {
    await withReport(async (dir, _html, charts) => {
      const paths = await writeFixtureInputs(`${dir}/in`);
      const task = taskFile("report");
      const run = async (...args: string[]) =>
        await new Deno.Command(Deno.execPath(), {
          args: await taskArgs("report", ...args),
          env: { NO_COLOR: "1" },
        })
          .output();
      const out = `${dir}/out/report.html`;
      const ok = await run(
        ...[...paths.runs, paths.kobest, paths.summary, paths.judgments].flatMap((p) => ["--in", p]),
        "--out",
        out,
        "--png",
        `${dir}/out/png`,
        "--title",
        "보고서",
      );
      const stdout = new TextDecoder().decode(ok.stdout);
      assertEquals(ok.code, 0, new TextDecoder().decode(ok.stderr));
      assertStringIncludes(stdout, `report: wrote ${out} (${charts.length} chart(s))`);
      assertStringIncludes(stdout, `${dir}/out/png/kobest-f1.png`);
      assertStringIncludes(await Deno.readTextFile(out), "<h1>보고서</h1>");
      assertEquals([...Deno.readDirSync(`${dir}/out/png`)].length, charts.length);

      const bad = await run(
        "--in",
        `${dir}/in/judgments.summary.json`,
        "--in",
        task,
        "--out",
        `${dir}/x.html`,
      );
      assertEquals(bad.code, 2);
      assertStringIncludes(new TextDecoder().decode(bad.stderr), `report: ${task}: not a report input`);
    });
  },
);

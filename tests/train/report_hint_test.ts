import { reportHint, shellQuote } from "../../train/report_hint.ts";
import { reportOptionsFromArgs } from "../../tasks/report.ts";
import { assertEquals, assertThrows } from "../asserts.ts";

Deno.test("report hint: the command to report on a run, quoted for the shell where needed", () => {
  assertEquals(
    reportHint("runs/orpo-tiny"),
    "report: deno task report --in runs/orpo-tiny --out runs/orpo-tiny/report.html",
  );
  assertEquals(
    reportHint("runs/orpo-tiny//"),
    "report: deno task report --in runs/orpo-tiny --out runs/orpo-tiny/report.html",
  );
  assertEquals(reportHint("/"), "report: deno task report --in / --out /report.html");
  assertEquals(
    reportHint("runs/it's 한국어"),
    `report: deno task report --in 'runs/it'\\''s 한국어' --out 'runs/it'\\''s 한국어/report.html'`,
  );
  assertEquals(shellQuote("$HOME"), "'$HOME'");
  assertEquals(shellQuote(""), "''");
  assertThrows(() => reportHint(""), Error, "empty");
});

Deno.test("report task: flags", () => {
  assertEquals(reportOptionsFromArgs(["--in", "a", "--in", "b.json", "--png", "p", "--title", "제목"]), {
    inputs: ["a", "b.json"],
    out: "report.html",
    pngDir: "p",
    title: "제목",
  });
  assertEquals(reportOptionsFromArgs(["--help"]), "help");
  assertThrows(() => reportOptionsFromArgs(["--out", "x.html"]), Error, "give at least one --in");
  assertThrows(() => reportOptionsFromArgs(["--in", "a", "--bogus"]), Error, "bogus");
});

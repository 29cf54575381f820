import { StopMatcher } from "../../serve/stop.ts";
import { assertEquals } from "../asserts.ts";

function run(stops: string[], deltas: string[]): { out: string[]; stopped: boolean; tail: string } {
  const m = new StopMatcher(stops);
  const out = deltas.map((d) => m.push(d).text);
  return { out, stopped: m.stopped, tail: m.flush() };
}

Deno.test("stop: text that may start a stop string is held until the next delta settles it", () => {
  assertEquals(run(["\nUser:"], ["Hello\nUs", "er: hi", "more"]), {
    out: ["Hello", "", ""],
    stopped: true,
    tail: "",
  });
  assertEquals(run(["\nUser:"], ["Hello\nUs", "ually fine"]), {
    out: ["Hello", "\nUsually fine"],
    stopped: false,
    tail: "",
  });
  assertEquals(run(["END"], ["ab", "E"]), { out: ["ab", ""], stopped: false, tail: "E" });
});

Deno.test("stop: the earliest of several stop strings wins, even inside one delta", () => {
  assertEquals(run(["cd", "b"], ["abcd"]), { out: ["a"], stopped: true, tail: "" });
  assertEquals(run(["xyz", "yq"], ["0xy", "q1"]), { out: ["0", "x"], stopped: true, tail: "" });
  assertEquals(run([], ["plain", " text"]), { out: ["plain", " text"], stopped: false, tail: "" });
  assertEquals(run(["<|eot|>"], ["답", "변<|e", "ot|>뒤"]), {
    out: ["답", "변", ""],
    stopped: true,
    tail: "",
  });
});

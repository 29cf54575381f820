/**
 * The JavaScript the report page runs, as source text to inline.
 *
 * The page records what happened while it drew into `<script type="application/json" id="render-result">`:
 * per chart, the canvas's size, how many of its pixels are not background and how many data elements
 * Chart.js placed; every error (uncaught exceptions, failed loads, rejected promises, `console.error`); and
 * which Korean fonts the browser has. Headless Chromium's `--dump-dom` prints the DOM after the page has
 * loaded, so a test or the PNG export reads all of it without a DevTools connection. Opened as
 * `report.html#export-png`, the record also holds each canvas as a PNG data URL.
 *
 * @module
 */

/**
 * Runs first, in `<head>`: collects errors into `window.__reportErrors` before anything else can fail.
 *
 * @example
 * ```ts
 * const head = `<script>${ERROR_CAPTURE_SCRIPT}</script>`;
 * ```
 */
export const ERROR_CAPTURE_SCRIPT = String.raw`(function () {
  "use strict";
  var errors = [];
  window.__reportErrors = errors;
  window.__reportError = function (message) {
    errors.push(String(message));
    if (typeof window.__reportPublish === "function") window.__reportPublish();
  };
  window.addEventListener("error", function (event) {
    if (event.message) {
      window.__reportError(event.message + (event.lineno ? " (line " + event.lineno + ")" : ""));
    } else {
      var target = event.target || {};
      window.__reportError("failed to load " + (target.src || target.href || target.tagName || "a resource"));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    var reason = event.reason;
    window.__reportError("unhandled rejection: " + (reason && reason.message ? reason.message : reason));
  });
  var consoleError = console.error;
  console.error = function () {
    window.__reportError("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
})();`;

/**
 * Runs last: builds every chart from `#chart-data` with Chart.js (no animation, white background, the
 * Korean font stack), then records the outcome in `#render-result`.
 *
 * @example
 * ```ts
 * const tail = `<script>${chartJs}</script><script>${CHART_BOOTSTRAP_SCRIPT}</script>`;
 * ```
 */
export const CHART_BOOTSTRAP_SCRIPT = String.raw`(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var exportPng = location.hash === "#export-png";
  var built = [];
  var publishing = false;

  // Filled before each draw so exported PNGs are opaque and "painted" means drawn on, not just covered.
  var whiteBackground = {
    id: "whiteBackground",
    beforeDraw: function (chart) {
      var ctx = chart.ctx;
      ctx.save();
      ctx.globalCompositeOperation = "destination-over";
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, chart.width, chart.height);
      ctx.restore();
    }
  };

  function addFormatting(spec) {
    var options = spec.config.options || (spec.config.options = {});
    var plugins = options.plugins || (options.plugins = {});
    var tooltip = plugins.tooltip || (plugins.tooltip = {});
    if (spec.kind === "winrate") {
      options.scales.x.ticks = { callback: function (value) { return value + "%"; } };
      tooltip.callbacks = {
        label: function (item) { return item.dataset.label + ": " + item.parsed.x.toFixed(1) + "%"; }
      };
    } else if (spec.kind === "kobest") {
      tooltip.callbacks = {
        label: function (item) {
          return item.dataset.label + ": " + (item.parsed.y === null ? "–" : item.parsed.y.toFixed(3));
        }
      };
    }
  }

  function paintedPixels(canvas) {
    var pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    var n = 0;
    for (var i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] !== 0 && (pixels[i] !== 255 || pixels[i + 1] !== 255 || pixels[i + 2] !== 255)) n++;
    }
    return n;
  }

  // A null value still gets a (zero-size) element, so values are checked as well as positions.
  function placedElements(chart) {
    var n = 0;
    chart.data.datasets.forEach(function (dataset, i) {
      chart.getDatasetMeta(i).data.forEach(function (element, j) {
        var value = dataset.data[j];
        if (value !== null && value !== undefined && Number.isFinite(element.x) && Number.isFinite(element.y)) n++;
      });
    });
    return n;
  }

  // A family the browser lacks falls back to monospace, so the sample then measures the same.
  function fontAvailable(family) {
    var ctx = document.createElement("canvas").getContext("2d");
    var sample = "한국어 보고서 Report 123";
    ctx.font = "16px monospace";
    var fallback = ctx.measureText(sample).width;
    ctx.font = "16px \"" + family + "\", monospace";
    return ctx.measureText(sample).width !== fallback;
  }

  function chartRecord(entry) {
    var canvas = entry.chart.canvas;
    var record = {
      id: entry.spec.id,
      title: entry.spec.title,
      width: canvas.width,
      height: canvas.height,
      painted: paintedPixels(canvas),
      elements: placedElements(entry.chart)
    };
    if (exportPng) record.png = canvas.toDataURL("image/png");
    return record;
  }

  function publish() {
    if (publishing) return;
    publishing = true;
    try {
      var result = { charts: built.map(chartRecord), errors: window.__reportErrors.slice(), fonts: {} };
      data.koreanFonts.forEach(function (family) { result.fonts[family] = fontAvailable(family); });
      document.getElementById("render-result").textContent = JSON.stringify(result).replace(/</g, "\\u003c");
      var box = document.getElementById("page-errors");
      if (result.errors.length > 0) {
        box.hidden = false;
        box.textContent = "Errors while drawing this page:\n" + result.errors.join("\n");
      }
    } finally {
      publishing = false;
    }
  }

  try {
    Chart.defaults.font.family = data.font;
    Chart.defaults.color = "#222";
    Chart.defaults.animation = false;
    data.charts.forEach(function (spec) {
      try {
        addFormatting(spec);
        spec.config.plugins = [whiteBackground];
        built.push({ spec: spec, chart: new Chart(document.getElementById(spec.id), spec.config) });
      } catch (e) {
        window.__reportError("chart " + spec.id + ": " + (e && e.message ? e.message : e));
      }
    });
  } catch (e) {
    window.__reportError("charts: " + (e && e.message ? e.message : e));
  } finally {
    window.__reportPublish = publish;
    publish();
  }
})();`;

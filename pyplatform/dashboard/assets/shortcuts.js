// Keyboard shortcuts of the Market page (ignored while typing in an input):
//   /  focus the expression box      l  toggle the log price axis     w  watch the shown symbol
//   r  reset the zoom (whole history) j / k  next / previous symbol of the watchlist
//   Escape  leave the expression box
// Each one clicks or focuses the same control a mouse would, so the app sees ordinary events.
(function () {
  "use strict";

  function typing(el) {
    if (!el) { return false; }
    var tag = (el.tagName || "").toLowerCase();
    return tag === "input" && el.type !== "checkbox" || tag === "textarea" || el.isContentEditable;
  }

  function click(sel) {
    var el = document.querySelector(sel);
    if (el) { el.click(); return true; }
    return false;
  }

  function step(delta) {
    var items = Array.prototype.slice.call(document.querySelectorAll("#watchlist .watch-item"));
    if (!items.length) { return; }
    var cur = items.findIndex(function (b) { return b.classList.contains("current"); });
    var next = cur < 0 ? 0 : (cur + delta + items.length) % items.length;
    items[next].click();
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (ev.key === "Escape" && typing(document.activeElement)) { document.activeElement.blur(); return; }
    if (typing(document.activeElement) || !document.querySelector("#market-chart")) { return; }
    var handled = true;
    switch (ev.key) {
      case "/": var box = document.querySelector("#market-expr"); if (box) { box.focus(); } break;
      case "l": click("#market-log input"); break;
      case "w": click("#watch-add"); break;
      case "r":
        var gd = document.querySelector("#market-chart .js-plotly-plot");
        if (gd && window.Plotly) { window.Plotly.relayout(gd, { "xaxis.autorange": true }); }
        break;
      case "j": step(1); break;
      case "k": step(-1); break;
      default: handled = false;
    }
    if (handled) { ev.preventDefault(); }
  });
})();

// Crosshair labels for the Market page's K-line: the price at the cursor on the right edge of
// the price panel (with a horizontal line) and the hovered candle's time at the bottom.
// Plotly draws the spike lines; it has no axis labels for them, so this adds two small
// divs positioned from the axes' pixel <-> value mapping (no data is sent anywhere).
(function () {
  "use strict";

  function fmt(v) {
    var a = Math.abs(v);
    var d = a >= 1000 ? 2 : a >= 1 ? 4 : 6;
    return v.toFixed(d).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
  }

  function attach(gd) {
    if (gd._ppCrosshair) { return; }
    gd._ppCrosshair = true;
    var host = gd.parentElement;
    host.style.position = "relative";
    var price = document.createElement("div");
    price.className = "pp-cross-price";
    var line = document.createElement("div");
    line.className = "pp-cross-line";
    var time = document.createElement("div");
    time.className = "pp-cross-time";
    [line, price, time].forEach(function (el) { el.style.display = "none"; host.appendChild(el); });

    function hide() { [line, price, time].forEach(function (el) { el.style.display = "none"; }); }

    // capture phase: Plotly's drag layer handles the event on the way down
    gd.addEventListener("mousemove", function (ev) {
      var fl = gd._fullLayout;
      if (!fl || !fl.yaxis || !fl.xaxis || !fl.yaxis._length) { hide(); return; }
      var ya = fl.yaxis, xa = fl.xaxis;
      var box = gd.getBoundingClientRect();
      var hostBox = host.getBoundingClientRect();
      var px = ev.clientX - box.left - xa._offset;
      var py = ev.clientY - box.top - ya._offset;
      if (px < 0 || px > xa._length) { hide(); return; }
      var top = box.top - hostBox.top;
      if (py >= 0 && py <= ya._length) {
        var v = ya.p2l(py);
        if (ya.type === "log") { v = Math.pow(10, v); }
        price.textContent = fmt(v);
        price.dataset.value = String(v);
        price.style.top = (top + ya._offset + py - 9) + "px";
        price.style.left = (box.left - hostBox.left + xa._offset + xa._length + 2) + "px";
        line.style.top = (top + ya._offset + py) + "px";
        line.style.left = (box.left - hostBox.left + xa._offset) + "px";
        line.style.width = xa._length + "px";
        price.style.display = line.style.display = "block";
      } else {
        price.style.display = line.style.display = "none";
      }
      var cats = (gd._fullData && gd._fullData[0] && gd._fullData[0].x) || [];
      var i = Math.round(xa.p2l(px));
      if (i >= 0 && i < cats.length) {
        // the bottom-most x axis carries the tick labels: put the time label just under it
        var last = fl.xaxis;
        Object.keys(fl).forEach(function (k) { if (/^xaxis\d*$/.test(k) && fl[k]._offset !== undefined) { last = fl[k]; } });
        var bottomY = Object.keys(fl).filter(function (k) { return /^yaxis\d*$/.test(k); })
          .map(function (k) { return fl[k]._offset + fl[k]._length; }).reduce(function (a, b) { return Math.max(a, b); }, 0);
        time.textContent = String(cats[i]);
        time.dataset.index = String(i);
        time.style.top = (top + bottomY + 2) + "px";
        time.style.left = (box.left - hostBox.left + xa._offset + px) + "px";
        time.style.display = "block";
      } else {
        time.style.display = "none";
      }
    }, true);
    gd.addEventListener("mouseleave", hide);
  }

  function scan() {
    var gd = document.querySelector("#market-chart .js-plotly-plot");
    if (gd) { attach(gd); }
  }
  new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", scan);
})();

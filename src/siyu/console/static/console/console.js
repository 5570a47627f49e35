// Draw every Plotly figure the server embedded as JSON, and redraw after htmx swaps.
function siyuDrawCharts(root) {
  (root || document).querySelectorAll("[data-figure]").forEach(function (el) {
    if (el.dataset.drawn) return;
    var fig = JSON.parse(el.querySelector("script[type='application/json']").textContent);
    Plotly.newPlot(el.querySelector(".chart-canvas"), fig.data, fig.layout, {responsive: true, displayModeBar: false});
    el.dataset.drawn = "1";
  });
}
document.addEventListener("DOMContentLoaded", function () { siyuDrawCharts(document); });
document.addEventListener("htmx:afterSwap", function (e) { siyuDrawCharts(e.target); });

// The charts: one uPlot per figure, a line per service, refreshed every thirty seconds.
"use strict";

(function () {
  const container = document.getElementById("charts");
  if (!container || typeof uPlot === "undefined") {
    return;
  }
  const colours = ["#0a5bc4", "#b42318", "#1a7f37", "#8a5a00", "#6639ba", "#0e7490"];
  const plots = new Map();

  function options(element, services) {
    return {
      width: Math.max(320, element.clientWidth),
      height: 240,
      series: [{}].concat(
        services.map((service, index) => ({
          label: service,
          stroke: colours[index % colours.length],
          width: 2,
          spanGaps: true,
        })),
      ),
      axes: [{}, { size: 60 }],
    };
  }

  function draw(data) {
    for (const element of container.querySelectorAll(".chart")) {
      const figure = data.series[element.dataset.figure] || {};
      const services = Object.keys(figure).sort();
      const rows = [data.points].concat(services.map((service) => figure[service]));
      const key = element.dataset.figure + ":" + services.join(",");
      const known = plots.get(element);
      if (known && known.key === key) {
        known.plot.setData(rows);
        continue;
      }
      if (known) {
        known.plot.destroy();
      }
      element.textContent = services.length ? "" : "No traffic recorded yet.";
      if (services.length) {
        plots.set(element, { key: key, plot: new uPlot(options(element, services), rows, element) });
      }
    }
    container.dataset.drawnAt = new Date().toISOString();
  }

  async function refresh() {
    try {
      const response = await fetch(container.dataset.source, { credentials: "same-origin" });
      if (response.redirected) {
        window.location.reload();
        return;
      }
      if (response.ok) {
        draw(await response.json());
      }
    } finally {
      window.setTimeout(refresh, 30000);
    }
  }

  refresh();
})();

// Plotly figures follow the book's light/dark mode (book/_ext/figure_theme.py).
(function () {
  "use strict";
  const DARK = { paper: "rgba(0,0,0,0)", plot: "rgba(0,0,0,0)", font: "#ced6dd", grid: "#3a4046", line: "#6c757d" };

  function axes(layout) {
    return Object.keys(layout).filter((k) => /^(x|y)axis\d*$/.test(k));
  }

  function darkUpdate(div) {
    const update = {
      paper_bgcolor: DARK.paper, plot_bgcolor: DARK.plot, "font.color": DARK.font,
      "legend.bgcolor": "rgba(0,0,0,0)", "title.font.color": DARK.font,
    };
    for (const a of axes(div.layout)) {
      update[a + ".gridcolor"] = DARK.grid;
      update[a + ".zerolinecolor"] = DARK.line;
      update[a + ".linecolor"] = DARK.line;
    }
    // An instrument's sliders (collab_lib.viz.instrument): labels and current value in the page's text colour.
    (div.layout.sliders || []).forEach((_, i) => {
      update[`sliders[${i}].font.color`] = DARK.font;
      update[`sliders[${i}].currentvalue.font.color`] = DARK.font;
    });
    return update;
  }

  function lightUpdate(div) {
    // What the figure's own layout said before the first switch (undefined: plotly's default again).
    const saved = div._collabLightLayout;
    const update = {};
    for (const key of Object.keys(saved)) update[key] = saved[key] === undefined ? null : saved[key];
    return update;
  }

  function get(layout, path) {
    return path.replace(/\[(\d+)\]/g, ".$1").split(".").reduce((o, k) => (o == null ? undefined : o[k]), layout);
  }

  function apply() {
    if (!window.Plotly) return;
    const dark = document.documentElement.dataset.theme === "dark";
    for (const div of document.querySelectorAll(".plotly-graph-div")) {
      if (!div.layout) continue;
      if (!div._collabLightLayout) {
        const keys = Object.keys(darkUpdate(div));
        div._collabLightLayout = Object.fromEntries(keys.map((k) => [k, get(div.layout, k)]));
      }
      if (dark === !!div._collabDark) continue;
      div._collabDark = dark;
      window.Plotly.relayout(div, dark ? darkUpdate(div) : lightUpdate(div));
    }
  }

  new MutationObserver(apply).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.addEventListener("load", () => { apply(); setTimeout(apply, 500); });
})();

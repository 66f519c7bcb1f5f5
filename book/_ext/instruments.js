// The labs' instruments in the static book (collab_lib.viz.instrument and viz.predict; book/_ext/instruments.py).
(function () {
  "use strict";
  const NOW = { mode: "immediate", frame: { duration: 0, redraw: true }, transition: { duration: 0 } };

  // An instrument over several parameters has one slider each; their steps do nothing themselves
  // (method "skip"), and this shows the frame of the grid point all the sliders select together.
  function wireSliders(div) {
    const meta = div.layout && div.layout.meta && div.layout.meta.instrument;
    if (!meta || meta.params.length < 2 || div._collabInstrument) return;
    div._collabInstrument = true;
    // The grid point shown; each slider's name is its parameter, each step's value its position.
    const index = meta.params.map((name) => {
      const slider = (div.layout.sliders || []).find((s) => s.name === name);
      return slider && slider.active ? slider.active : 0;
    });
    div.on("plotly_sliderchange", (event) => {
      const k = meta.params.indexOf(event.slider.name);
      if (k < 0) return;
      index[k] = Number(event.step.value);
      window.Plotly.animate(div, [index.join(",")], NOW);
    });
  }

  // Mirrors collab_lib.viz._fmt: three significant digits.
  function fmt(x) {
    return String(Number(Number(x).toPrecision(3)));
  }

  function withUnit(text, unit) {
    return unit === "" || unit === "×" || unit === "%" ? text + unit : text + " " + unit;
  }

  // Mirrors collab_lib.viz.reveal_text; the browser test checks that the two agree.
  function revealText(guess, measured, unit, kind) {
    if (kind === "choice") {
      return guess === measured
        ? `You chose ${guess}: that is what this run measured.`
        : `You chose ${guess}; this run measured ${measured}.`;
    }
    const head = `You predicted ${withUnit(fmt(guess), unit)}; this run measured ${withUnit(fmt(measured), unit)}`;
    if (guess === measured) return `${head}: exactly right.`;
    let off;
    if (measured !== 0 && guess / measured > 0) {
      const r = guess / measured;
      if (r >= 2) off = `${fmt(r)}× too high`;
      else if (r > 1) off = `${fmt((r - 1) * 100)}% too high`;
      else if (r > 0.5) off = `${fmt((1 - r) * 100)}% too low`;
      else off = `${fmt(1 / r)}× too low`;
    } else {
      off = `off by ${withUnit(fmt(Math.abs(guess - measured)), unit)}`;
    }
    return `${head}: ${off}.`;
  }

  function wirePrediction(box) {
    if (box._collabPredict) return;
    box._collabPredict = true;
    const field = box.querySelector(".collab-predict-guess");
    const details = box.querySelector("details");
    const result = box.querySelector(".collab-predict-result");
    const kind = box.dataset.kind;
    details.querySelector("summary").addEventListener("click", (event) => {
      if (details.open) { event.preventDefault(); return; } // a locked guess stays revealed
      const raw = field.value.trim();
      const guess = kind === "number" ? Number(raw) : raw;
      if (raw === "" || (kind === "number" && !Number.isFinite(guess))) {
        event.preventDefault();
        result.textContent = "";
        box.classList.add("collab-predict-empty");
        return;
      }
      box.classList.remove("collab-predict-empty");
      const measured = kind === "number" ? Number(box.dataset.measured) : box.dataset.measured;
      result.textContent = revealText(guess, measured, box.dataset.unit, kind);
      field.disabled = true;
    });
  }

  function apply() {
    document.querySelectorAll(".collab-predict").forEach(wirePrediction);
    if (!window.Plotly) return;
    document.querySelectorAll(".plotly-graph-div").forEach((div) => { if (div.on) wireSliders(div); });
  }

  window.collabRevealText = revealText;
  if (document.readyState !== "loading") apply();
  document.addEventListener("DOMContentLoaded", apply);
  window.addEventListener("load", () => { apply(); setTimeout(apply, 500); });
})();

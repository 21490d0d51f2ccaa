// Rosetta pages: lazy images, sidebar filters, search and keyboard navigation. No network.
"use strict";
(function () {
  const IMAGES = JSON.parse(document.getElementById("image-data").textContent);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const items = $$(".item");
  const noun = document.body.dataset.noun || "items";

  // Images: each <img data-key> takes its data: URL from the shared table when it nears the
  // viewport, so a page with thousands of heatmaps opens at once and decodes what is seen.
  // The native loading="lazy" stays as the fallback; once an image is due it loads at once.
  function load(img) {
    if (img.getAttribute("src") || !IMAGES[img.dataset.key]) return;
    img.loading = "eager";
    img.src = IMAGES[img.dataset.key];
  }
  function loadAll() { $$("img[data-key]").forEach(load); }
  let observer = null;
  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.isIntersecting) { load(e.target); observer.unobserve(e.target); }
      }
    }, { rootMargin: "800px 0px" });
    $$("img[data-key]").forEach((img) => observer.observe(img));
  } else {
    loadAll();
  }
  window.addEventListener("beforeprint", loadAll);

  // Filters.
  const search = $("#search"), layer = $("#layer"), minCorr = $("#min-corr");
  const opacity = $("#opacity"), count = $("#count");
  const modelBoxes = $$("input[data-filter-model]");

  function queryMatches(words, tokens) {
    return words.every((w) => tokens.some((t) =>
      (w.includes(":") || w.startsWith("#")) ? t === w : t.includes(w)));
  }

  function apply() {
    const words = (search ? search.value : "").trim().toLowerCase().split(/\s+/).filter(Boolean);
    const lay = layer ? layer.value : "";
    const lo = minCorr ? parseFloat(minCorr.value) : -Infinity;
    if (minCorr) $("#min-corr-value").textContent = lo.toFixed(2);
    const hiddenModels = new Set(modelBoxes.filter((b) => !b.checked).map((b) => b.value));
    $$("[data-model]").forEach((el) => { el.hidden = hiddenModels.has(el.dataset.model); });
    let shown = 0;
    const visible = new Set();
    for (const it of items) {
      const ok = parseFloat(it.dataset.corr) >= lo - 1e-9 &&
        (!lay || JSON.parse(it.dataset.layers).includes(lay)) &&
        (!words.length || queryMatches(words, it.dataset.search.split(" ")));
      it.hidden = !ok;
      if (ok) { shown += 1; visible.add(it.id); }
    }
    $$("[data-item]").forEach((el) => { el.hidden = !visible.has(el.dataset.item); });
    if (count) count.textContent = `${shown} of ${items.length} ${noun} shown`;
  }
  [search, layer, minCorr].forEach((el) => el && el.addEventListener("input", apply));
  modelBoxes.forEach((b) => b.addEventListener("change", apply));

  function reset() {
    if (search) search.value = "";
    if (layer) layer.value = "";
    if (minCorr) minCorr.value = minCorr.min;
    modelBoxes.forEach((b) => { b.checked = true; });
    apply();
  }
  const resetButton = $("#reset");
  if (resetButton) resetButton.addEventListener("click", reset);

  function setOpacity() {
    document.documentElement.style.setProperty("--heat", opacity.value);
    $("#opacity-value").textContent = `${Math.round(opacity.value * 100)}%`;
  }
  if (opacity) { opacity.addEventListener("input", setOpacity); setOpacity(); }

  // Per-image view: one panel per chosen image, switched by its thumbnail.
  const choices = $$(".chooser button");
  choices.forEach((b) => b.addEventListener("click", () => {
    choices.forEach((c) => c.setAttribute("aria-pressed", String(c === b)));
    $$(".image-panel").forEach((p) => { p.hidden = p.id !== b.dataset.panel; });
    $$(`#${b.dataset.panel} img[data-key]`).forEach(load);
  }));

  // Keyboard: j / k next and previous visible item, / search, Escape clears the filters.
  let current = null, currentY = null;
  function go(step) {
    const shown = items.filter((it) => !it.hidden);
    if (!shown.length) return;
    let i;
    if (current && shown.includes(current) && Math.abs(window.scrollY - currentY) < 2) {
      i = shown.indexOf(current) + step;  // no scrolling since the last jump: step from there
    } else {  // from what is on screen: the first item below the top quarter is "next"
      let at = shown.findIndex((it) => it.getBoundingClientRect().top > window.innerHeight / 4);
      if (at < 0) at = shown.length;
      i = step > 0 ? at : at - 2;
    }
    i = Math.max(0, Math.min(shown.length - 1, i));
    items.forEach((it) => it.classList.remove("current"));
    current = shown[i];
    current.classList.add("current");
    $$("img[data-key]", current).forEach(load);
    current.focus({ preventScroll: true });
    current.scrollIntoView({ block: "start" });
    currentY = window.scrollY;
  }
  document.addEventListener("keydown", (e) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
    if (e.key === "Escape") { reset(); if (typing) document.activeElement.blur(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j" || e.key === "n") { e.preventDefault(); go(1); }
    else if (e.key === "k" || e.key === "p") { e.preventDefault(); go(-1); }
    else if (e.key === "/" && search) { e.preventDefault(); search.focus(); }
  });

  apply();
  window.rosetta = { apply, reset, loadAll, go };
})();

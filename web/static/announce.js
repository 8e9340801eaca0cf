// The announcement form and its confirmation page (progressive enhancement: both work without
// this file). Fills a template's preview as the blanks are typed, and keeps a second tap from
// submitting a form twice (the server also sends a confirmed notice only once).
(function () {
  "use strict";

  const preview = document.getElementById("template-preview");
  if (preview && preview.dataset.template) {
    const source = preview.dataset.template;
    const inputs = Array.from(document.querySelectorAll("input[data-key]"));
    const labels = {};
    for (const input of inputs) {
      const label = document.querySelector(`label[for="${CSS.escape(input.id)}"]`);
      labels[input.dataset.key] = label ? label.firstChild.textContent.trim() : input.dataset.key;
    }
    const value = (key) => {
      const input = inputs.find((item) => item.dataset.key === key);
      return input ? input.value.replace(/\s+/g, " ").trim().replace(/[.;,]+$/, "") : "";
    };
    const render = () => {
      // [ … ] is dropped when a blank inside it is empty; an empty required blank shows its label
      let text = source.replace(/\[([^\[\]]*)\]/g, (whole, part) => {
        const keys = Array.from(part.matchAll(/\{([^{}]*)\}/g), (m) => m[1]);
        return keys.every((key) => value(key)) ? part : "";
      });
      text = text.replace(/\{([^{}]*)\}/g, (whole, key) => value(key) || `«${labels[key] || key}»`);
      preview.textContent = text.replace(/\s+/g, " ").trim();
    };
    for (const input of inputs) input.addEventListener("input", render);
    render();
  }

  for (const form of document.querySelectorAll("#announce-form, #confirm-form")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.submitted) {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = "1";
      form.classList.add("busy");
    });
  }
})();

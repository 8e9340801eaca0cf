// Forms with data-confirm ask before they submit (the content security policy forbids inline
// handlers, so the question lives here). Without JavaScript the form submits directly.
(function () {
  "use strict";
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
})();

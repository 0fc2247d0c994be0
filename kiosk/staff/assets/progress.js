// While an upload is checked or content is published (a big file takes minutes), show how
// far the kiosk is: poll /progress and write each step's line into the status region.
(function () {
  "use strict";
  var region = document.getElementById("progress");
  if (!region) { return; }
  var timer = null;
  function show(steps) {
    region.textContent = "";
    steps.forEach(function (step) {
      var line = document.createElement("p");
      line.textContent = step.line;
      region.appendChild(line);
    });
  }
  function poll() {
    fetch("/progress", {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(show)
      .catch(function () {});
  }
  document.querySelectorAll('form[action="/publish"], form[action="/upload"]')
    .forEach(function (form) {
      form.addEventListener("submit", function () {
        region.hidden = false;
        region.textContent = region.dataset.waiting || "";
        if (timer === null) { timer = setInterval(poll, 1000); }
      });
    });
}());

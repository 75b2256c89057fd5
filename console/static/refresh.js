// Optional: refresh the live table of the Now page every few seconds. Without JavaScript the page's
// "refresh" link does the same; every action is a plain form either way.
(function () {
  var live = document.getElementById("live");
  if (!live || !window.fetch) return;
  setInterval(function () {
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        if (fresh) live.innerHTML = fresh.innerHTML;
      })
      .catch(function () {});
  }, 3000);
})();

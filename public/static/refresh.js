// Unobtrusive refresh of pages marked <main data-refresh="SECONDS"> (the payment page
// while it waits for the escrow address or the payment). Without JavaScript the page
// works the same; it just needs a reload. Nothing refreshes while a form is being
// filled in.
(function () {
  var main = document.getElementById("main");
  if (!main || !main.dataset.refresh || !window.fetch || !window.DOMParser) return;
  var seconds = Math.max(5, parseInt(main.dataset.refresh, 10) || 15);
  function busy() {
    var el = document.activeElement;
    if (el && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)) return true;
    var fields = document.querySelectorAll("#main textarea, #main input[type=text], #main input[type=number]");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value) return true; }
    return false;
  }
  function refresh() {
    if (busy()) { setTimeout(refresh, seconds * 1000); return; }
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main");
        if (fresh) {
          main.innerHTML = fresh.innerHTML;
          if (!fresh.dataset.refresh) { delete main.dataset.refresh; return; }
        }
        setTimeout(refresh, seconds * 1000);
      })
      .catch(function () { setTimeout(refresh, seconds * 1000); });
  }
  setTimeout(refresh, seconds * 1000);
})();

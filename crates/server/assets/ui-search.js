// ---- search ----
(function () {
  var range = document.getElementById('ev-range');
  if (!range) return;
  var since = document.getElementById('ev-since');
  var until = document.getElementById('ev-until');
  // A preset range replaces typed times; typing a time makes the range custom.
  range.addEventListener('change', function () {
    if (range.value) { since.value = ''; until.value = ''; }
  });
  [since, until].forEach(function (el) {
    el.addEventListener('input', function () {
      if (el.value && range.options[0].value !== '') {
        var o = document.createElement('option');
        o.value = ''; o.textContent = 'From–until below';
        range.insertBefore(o, range.firstChild);
      }
      if (el.value) range.value = '';
    });
  });
})();

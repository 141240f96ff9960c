// arflow: progressive enhancement only. Every page works without this file.
// No dependencies, no eval, no inline handlers (the CSP forbids them); all
// behaviour hangs off data- attributes through event delegation.
'use strict';

document.addEventListener('DOMContentLoaded', function () {
  // (a) <form data-confirm="Really?"> asks before submitting.
  document.addEventListener('submit', function (e) {
    var form = e.target;
    var message = form.getAttribute && form.getAttribute('data-confirm');
    if (message && !window.confirm(message)) e.preventDefault();
  });

  // (b) <select data-autosubmit> and <input type=checkbox data-autosubmit>
  // submit their form on change, after the form's data-confirm if any (a
  // declined confirmation puts the control back as it was).
  document.addEventListener('change', function (e) {
    var el = e.target;
    if (!el.matches || !el.matches('select[data-autosubmit], input[type=checkbox][data-autosubmit]')) return;
    var form = el.form;
    if (!form) return;
    var message = form.getAttribute('data-confirm');
    if (message && !window.confirm(message)) {
      if (el.type === 'checkbox') el.checked = !el.checked;
      else for (var i = 0; i < el.options.length; i++) el.options[i].selected = el.options[i].defaultSelected;
      return;
    }
    form.submit(); // no submit event, so no second confirmation
  });

  // (c) <time datetime="ISO" data-local-time> gets the browser-local time as a tooltip.
  document.querySelectorAll('time[data-local-time][datetime]').forEach(function (t) {
    var d = new Date(t.getAttribute('datetime'));
    if (isNaN(d.getTime())) return;
    var dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(t.getAttribute('datetime'));
    t.title = dateOnly
      ? d.toLocaleDateString(undefined, { dateStyle: 'full', timeZone: 'UTC' })
      : d.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'long' });
  });

  // (d) <button data-copy="some-id"> copies that element's text.
  function copied(button) {
    var before = button.textContent;
    button.textContent = 'Copied';
    button.classList.add('copied');
    setTimeout(function () { button.textContent = before; button.classList.remove('copied'); }, 1500);
  }
  document.addEventListener('click', function (e) {
    var button = e.target.closest && e.target.closest('[data-copy]');
    if (!button) return;
    var source = document.getElementById(button.getAttribute('data-copy'));
    if (!source) return;
    e.preventDefault();
    var field = source.matches('input, textarea');
    var text = (field ? source.value : source.textContent).trim();
    function fallback() {
      if (field) source.select();
      else window.getSelection().selectAllChildren(source);
      try { if (document.execCommand('copy')) copied(button); } catch (err) { /* left selected */ }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button); }, fallback);
    } else {
      fallback();
    }
  });

  // (e) <tr data-href="/x"> navigates on click, unless the click was on
  // something interactive or the user is selecting text.
  document.addEventListener('click', function (e) {
    if (e.defaultPrevented || e.button !== 0) return;
    var row = e.target.closest && e.target.closest('tr[data-href]');
    if (!row || e.target.closest('a, button, input, select, textarea, label, summary, [data-copy]')) return;
    if (window.getSelection && String(window.getSelection())) return;
    var href = new URL(row.getAttribute('data-href'), window.location.href);
    if (href.origin !== window.location.origin) return;
    if (e.ctrlKey || e.metaKey) window.open(href, '_blank', 'noopener');
    else window.location.assign(href);
  });
});

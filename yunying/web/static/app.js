// Yunying web pages. Loaded as a file: the CSP (default-src 'self') allows no inline scripts.
// Forms marked data-confirm ask before they change something (disable a user, revoke a grant ...).
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

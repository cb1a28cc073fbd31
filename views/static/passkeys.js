// Passkey forms of the hosted pages. A form marked data-passkey is hidden in the HTML, so that
// without JavaScript it never shows a button that cannot work; here it is shown when the browser
// can use passkeys. Its submit first runs the browser's WebAuthn ceremony (through
// @simplewebauthn/browser, loaded before this file), then posts the answer in the `credential`
// field like any other form: the server answers with the next page or this one with an error.
'use strict';

(function () {
  const webauthn = window.SimpleWebAuthnBrowser;
  const MESSAGES = {
    NotAllowedError:
      'The passkey request was cancelled or timed out. Try again when you are ready.',
    InvalidStateError: 'This device already has a passkey for your account.',
    SecurityError: 'This page cannot use passkeys at its current address.',
    unsupported:
      'This browser cannot use passkeys. Use another way to sign in, or another browser.',
    failed: 'Something went wrong with the passkey. Reload the page and try again.',
  };

  function showError(form, message) {
    const box = form.querySelector('[data-passkey-error]');
    const earlier = document.getElementById('form-error');
    if (earlier && earlier !== box) earlier.hidden = true;
    box.textContent = message;
    box.hidden = false;
    box.focus();
  }

  // Options are in the page (data-options) or asked for when the button is pressed, so that the
  // challenge is fresh; the form's CSRF token goes with the request.
  async function options(form) {
    if (form.dataset.options) return JSON.parse(form.dataset.options);
    const response = await fetch(form.dataset.optionsUrl, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { accept: 'application/json' },
      body: new URLSearchParams({ csrf: form.elements.csrf.value }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) return body;
    const error = new Error(body.title || MESSAGES.failed);
    error.name = 'ServerError';
    throw error;
  }

  async function ceremony(form) {
    const optionsJSON = await options(form);
    return form.dataset.passkey === 'register'
      ? webauthn.startRegistration({ optionsJSON })
      : webauthn.startAuthentication({ optionsJSON });
  }

  for (const form of document.querySelectorAll('form[data-passkey]')) {
    if (!webauthn || !webauthn.browserSupportsWebAuthn()) {
      if (form.dataset.passkeyRequired !== undefined) {
        form.hidden = false;
        form.querySelector('button[type="submit"]').hidden = true;
        showError(form, MESSAGES.unsupported);
      }
      continue;
    }
    form.hidden = false;
    const button = form.querySelector('button[type="submit"]');
    if (form.dataset.passkeyFocus !== undefined) button.focus();

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (form.getAttribute('aria-busy') === 'true') return;
      form.setAttribute('aria-busy', 'true');
      button.disabled = true;
      try {
        form.elements.credential.value = JSON.stringify(await ceremony(form));
        form.submit();
      } catch (err) {
        const known = err && (MESSAGES[err.name] || (err.name === 'ServerError' && err.message));
        showError(form, known || MESSAGES.failed);
        form.removeAttribute('aria-busy');
        button.disabled = false;
      }
    });
  }
})();

// Log in and registration.
import { api, currentSession, logIn, say, sayError, scramCredentials, showSession, start } from './app.js';

function nextPage(session) {
  const next = new URLSearchParams(location.search).get('next');
  // Only a path on this node: never an address elsewhere.
  if (next && /^\/[a-z]+\.html$/.test(next)) return next;
  return session.admin ? '/admin.html' : '/dial.html';
}

start(async () => {
  const session = await currentSession();
  showSession(session);
  if (session) say('You are logged in as ' + session.id + '.', 'ok');

  const loginForm = document.getElementById('login-form');
  loginForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(loginForm);
    say('Logging in…', 'ok');
    try {
      const answer = await logIn(String(data.get('id')).trim(), String(data.get('password')));
      location.assign(nextPage(answer));
    } catch (error) {
      sayError(error);
      document.getElementById('login-password').focus();
    }
  });

  const registerForm = document.getElementById('register-form');
  registerForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(registerForm);
    const id = String(data.get('id')).trim();
    const password = String(data.get('password'));
    if (password !== String(data.get('confirm'))) {
      say('The two passwords differ.', 'error', 'register-message');
      document.getElementById('register-confirm').focus();
      return;
    }
    // The node sees no password to check, so its rule (8 to 256 bytes) is checked here.
    const size = new TextEncoder().encode(password).length;
    if (size < 8 || size > 256) {
      say('Passwords are 8 to 256 bytes.', 'error', 'register-message');
      document.getElementById('register-password').focus();
      return;
    }
    say('Registering…', 'ok', 'register-message');
    try {
      // Only the SCRAM credentials derived here go to the node, never the password.
      const body = { id, credentials: await scramCredentials(password) };
      const name = String(data.get('display_name')).trim();
      if (name) body.display_name = name;
      await api('POST', '/api/register', body);
      say('Registered ' + id + '. Logging in…', 'ok', 'register-message');
      const answer = await logIn(id, password);
      location.assign('/profile.html?welcome=1');
      showSession(answer);
    } catch (error) {
      sayError(error, 'register-message');
    }
  });
});

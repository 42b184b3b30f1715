// Log in and registration.
import { api, currentSession, logIn, say, sayError, showSession, start } from './app.js';

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
    const body = { id, password };
    const name = String(data.get('display_name')).trim();
    if (name) body.display_name = name;
    say('Registering…', 'ok', 'register-message');
    try {
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

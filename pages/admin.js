// The operator's page: users (search, add, reset password, verify, operator role, remove), LAN agents,
// calls, voicemail usage, and access cards (the ledger per card). Needs an account with the admin role.
import { api, el, formatTime, requireSession, say, sayError, start } from './app.js';

let userCursor = null;
let userQuery = '';
let resetFor = null;
let cardCursor = null;

function describe(value, name = '') {
  if (typeof value === 'number' && (name.endsWith('_at') || name === 'time' || name === 'last_seen')) return formatTime(value);
  if (value === true) return 'yes';
  if (value === false) return 'no';
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(describe).join(', ');
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => k + ': ' + describe(v)).join('; ');
  return String(value);
}

function firstArray(answer) {
  if (Array.isArray(answer)) return answer;
  for (const value of Object.values(answer || {})) if (Array.isArray(value)) return value;
  return null;
}

// Shows an answer whose shape the page does not need to know: a table of its first list,
// then the other fields as name/value rows.
function showTable(containerId, answer, caption) {
  const container = document.getElementById(containerId);
  const rows = firstArray(answer);
  const parts = [];
  if (rows && rows.length) {
    const columns = [...new Set(rows.flatMap((row) => (row && typeof row === 'object' ? Object.keys(row) : ['value'])))];
    parts.push(el('table', {},
      el('caption', { class: 'muted' }, caption),
      el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { scope: 'col' }, c.replace(/_/g, ' '))))),
      el('tbody', {}, ...rows.map((row) => el('tr', {},
        ...columns.map((c) => el('td', {}, describe(row && typeof row === 'object' ? row[c] : row, c))))))));
  } else if (rows) {
    parts.push(el('p', { class: 'muted' }, 'None.'));
  }
  const scalars = Object.entries(answer && !Array.isArray(answer) ? answer : {}).filter(([, v]) => !Array.isArray(v));
  if (scalars.length) {
    parts.push(el('table', {},
      el('caption', { class: 'muted' }, caption + ': totals'),
      el('tbody', {}, ...scalars.map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k.replace(/_/g, ' ')), el('td', {}, describe(v, k)))))));
  }
  container.replaceChildren(...parts);
}

function userRow(user) {
  const id = user.id;
  const details = Object.entries(user)
    .filter(([k]) => k !== 'id' && k !== 'display_name')
    .map(([k, v]) => k.replace(/_/g, ' ') + ': ' + describe(v, k)).join('; ');
  const reset = el('button', { type: 'button', class: 'secondary', 'aria-label': 'Reset password of ' + id }, 'Reset password');
  const verified = user.verified === true;
  const verifyText = verified ? 'Unverify' : 'Verify';
  const verify = el('button', { type: 'button', class: 'secondary', 'aria-label': verifyText + ' ' + id }, verifyText);
  const operator = user.admin === true;
  const roleText = operator ? 'Remove operator role' : 'Make operator';
  const role = el('button', { type: 'button', class: 'secondary', 'aria-label': roleText + ' ' + id }, roleText);
  const remove = el('button', { type: 'button', class: 'danger', 'aria-label': 'Remove ' + id }, 'Remove');
  const row = el('tr', { 'data-user': id },
    el('td', {}, id), el('td', {}, user.display_name || ''), el('td', { class: 'muted' }, details),
    el('td', {}, el('div', { class: 'row' }, reset, verify, role, remove)));
  role.addEventListener('click', async () => {
    try {
      await api('POST', '/api/admin/users/' + encodeURIComponent(id) + '/admin', { admin: !operator });
      say(id + (operator ? ' is no longer an operator.' : ' is an operator now.'), 'ok');
      await loadUsers(userQuery);
    } catch (error) {
      sayError(error);
    }
  });
  reset.addEventListener('click', () => {
    resetFor = id;
    const form = document.getElementById('reset-password');
    document.getElementById('reset-legend').textContent = 'Reset the password of ' + id;
    form.hidden = false;
    document.getElementById('reset-value').focus();
  });
  verify.addEventListener('click', async () => {
    try {
      await api('POST', '/api/admin/users/' + encodeURIComponent(id) + '/verify', { verified: !verified });
      say(id + (verified ? ' is no longer verified.' : ' is verified.'), 'ok');
      await loadUsers(userQuery);
    } catch (error) {
      sayError(error);
    }
  });
  remove.addEventListener('click', async () => {
    if (!window.confirm('Remove the account ' + id + '? This cannot be undone.')) return;
    try {
      await api('DELETE', '/api/admin/users/' + encodeURIComponent(id));
      row.remove();
      say(id + ' removed.', 'ok');
      document.getElementById('user-query').focus();
    } catch (error) {
      sayError(error);
    }
  });
  return row;
}

async function loadUsers(q, cursor) {
  const params = new URLSearchParams({ q });
  if (cursor) params.set('cursor', cursor);
  const answer = await api('GET', '/api/admin/users?' + params);
  const body = document.querySelector('#users tbody');
  if (!cursor) body.replaceChildren();
  for (const user of firstArray(answer) || []) body.append(userRow(user));
  userQuery = q;
  userCursor = answer && answer.next_cursor ? answer.next_cursor : null;
  document.getElementById('more-users').hidden = !userCursor;
}

// Each table shows its own error; the first one is thrown too, so that the
// status line does not say "Up to date." over it.
async function loadOverview() {
  const [agents, calls, voicemail] = await Promise.allSettled([
    api('GET', '/api/admin/agents'), api('GET', '/api/admin/calls'), api('GET', '/api/admin/voicemail')]);
  const show = (id, result, caption) => {
    if (result.status === 'fulfilled') showTable(id, result.value, caption);
    else document.getElementById(id).replaceChildren(el('p', { class: 'message error' }, result.reason.message));
  };
  show('agents', agents, 'LAN agents');
  show('calls', calls, 'Calls');
  show('voicemail-usage', voicemail, 'Voicemail usage');
  const failed = [agents, calls, voicemail].find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

// Loads every section; the status line names the first failure, or says all were read.
async function loadAll(query) {
  const results = await Promise.allSettled([loadUsers(query), loadOverview(), loadCards()]);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

// One card's ledger entry and its history, as GET /api/admin/cards/SERIAL answers (docs/web.md).
async function showCard(serial, from) {
  const answer = await api('GET', '/api/admin/cards/' + encodeURIComponent(serial) + (from ? '?from=' + from : ''));
  const container = document.getElementById('card-ledger');
  const entry = Object.entries(answer).filter(([k]) => k !== 'history');
  const parts = [
    el('h3', {}, 'Card ' + answer.serial),
    el('table', { 'data-card': String(answer.serial) },
      el('caption', { class: 'muted' }, 'Ledger entry'),
      el('tbody', {}, ...entry.map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k.replace(/_/g, ' ')), el('td', {}, describe(v, k)))))),
  ];
  const columns = ['sequence', 'time', 'event', 'units', 'units_left', 'call', 'route', 'note'];
  parts.push(el('table', { id: 'card-history' },
    el('caption', { class: 'muted' }, 'History' + (from ? ' from event ' + from : '')),
    el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { scope: 'col' }, c.replace(/_/g, ' '))))),
    el('tbody', {}, ...answer.history.map((event) => el('tr', {},
      ...columns.map((c) => el('td', {}, describe(event[c], c))))))));
  if (answer.next_from !== undefined) {
    const more = el('button', { type: 'button', class: 'secondary' }, 'Later events');
    more.addEventListener('click', () => showCard(serial, answer.next_from).catch(sayError));
    parts.push(el('div', { class: 'row' }, more));
  }
  container.replaceChildren(...parts);
  container.focus();
}

function cardRow(card) {
  const show = el('button', { type: 'button', class: 'secondary', 'aria-label': 'Ledger of card ' + card.serial }, 'Ledger');
  show.addEventListener('click', () => showCard(card.serial).catch(sayError));
  return el('tr', { 'data-card': String(card.serial) },
    el('td', {}, String(card.serial)), el('td', {}, card.card_id), el('td', {}, String(card.units_left)),
    el('td', {}, describe(card.revoked)), el('td', {}, formatTime(card.expires_at)), el('td', {}, show));
}

async function loadCards(cursor) {
  const answer = await api('GET', '/api/admin/cards' + (cursor ? '?cursor=' + encodeURIComponent(cursor) : ''));
  const body = document.querySelector('#cards tbody');
  if (!cursor) body.replaceChildren();
  for (const card of answer.cards) body.append(cardRow(card));
  cardCursor = answer.next_cursor || null;
  document.getElementById('more-cards').hidden = !cardCursor;
}

start(async () => {
  await requireSession({ admin: true });
  document.getElementById('user-search').addEventListener('submit', (event) => {
    event.preventDefault();
    loadUsers(document.getElementById('user-query').value.trim()).then(() => say('', 'ok'), sayError);
  });
  document.getElementById('more-users').addEventListener('click', () => loadUsers(userQuery, userCursor).catch(sayError));
  const addForm = document.getElementById('add-user');
  addForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(addForm);
    const user = {
      id: String(data.get('id')).trim(),
      password: String(data.get('password')),
      display_name: String(data.get('display_name')).trim(),
      admin: data.get('admin') === 'on',
    };
    try {
      await api('POST', '/api/admin/users', user);
      addForm.reset();
      say(user.id + ' added.', 'ok');
      await loadUsers(userQuery);
    } catch (error) {
      sayError(error);
    }
  });
  const resetForm = document.getElementById('reset-password');
  resetForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('POST', '/api/admin/users/' + encodeURIComponent(resetFor) + '/password',
        { password: document.getElementById('reset-value').value });
      resetForm.reset();
      resetForm.hidden = true;
      say('The password of ' + resetFor + ' is changed.', 'ok');
    } catch (error) {
      sayError(error);
    }
  });
  document.getElementById('reset-cancel').addEventListener('click', () => {
    resetForm.reset();
    resetForm.hidden = true;
  });
  document.getElementById('card-find').addEventListener('submit', (event) => {
    event.preventDefault();
    showCard(document.getElementById('card-serial').value.trim()).then(() => say('', 'ok'), sayError);
  });
  document.getElementById('more-cards').addEventListener('click', () => loadCards(cardCursor).catch(sayError));
  document.getElementById('refresh').addEventListener('click', () => loadAll(userQuery).then(() => say('Up to date.', 'ok'), sayError));
  await loadAll('').catch(sayError);
});

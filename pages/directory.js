// Directory search, business categories and paging.
import { api, el, requireSession, say, sayError, start } from './app.js';

const PAGE = 20;
let last = null;  // {q, kind, cursor} of the search the More button continues

function entryItem(entry) {
  const details = [entry.id];
  if (entry.category) details.push(entry.category);
  if (entry.phone) details.push(entry.phone);
  if (typeof entry.online === 'boolean') details.push(entry.online ? 'online' : 'offline');
  // Anyone may claim any name or number; only the operator's check makes it trustworthy.
  if (entry.verified === false) details.push('unverified');
  return el('li', {},
    el('strong', {}, entry.display_name || entry.id),
    el('span', { class: 'muted' }, details.join(' · ')),
    el('span', {}, el('a', { href: '/dial.html?id=' + encodeURIComponent(entry.id) }, 'Dial ' + entry.id)));
}

async function search(q, kind, cursor) {
  const params = new URLSearchParams({ q, kind, limit: String(PAGE) });
  if (cursor) params.set('cursor', cursor);
  say('Searching…', 'ok');
  try {
    const answer = await api('GET', '/api/directory?' + params);
    const list = document.getElementById('results');
    if (!cursor) list.replaceChildren();
    for (const entry of answer.entries || []) list.append(entryItem(entry));
    const count = list.children.length;
    say(count ? count + (count === 1 ? ' entry' : ' entries') + ' found.' : 'Nothing found.', 'ok');
    last = answer.next_cursor ? { q, kind, cursor: answer.next_cursor } : null;
    document.getElementById('more').hidden = !last;
  } catch (error) {
    sayError(error);
  }
}

async function loadCategories() {
  const answer = await api('GET', '/api/directory/categories');
  const list = document.getElementById('categories');
  list.replaceChildren();
  for (const category of answer.categories || []) {
    const button = el('button', { type: 'button', class: 'secondary' }, category.name + ' (' + category.count + ')');
    button.addEventListener('click', () => {
      document.getElementById('query').value = category.name;
      document.getElementById('kind').value = 'business';
      search(category.name, 'business');
    });
    list.append(el('li', {}, button));
  }
  if (!list.children.length) list.append(el('li', { class: 'muted' }, 'No businesses are listed yet.'));
}

start(async () => {
  await requireSession();
  document.getElementById('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    search(document.getElementById('query').value.trim(), document.getElementById('kind').value);
  });
  document.getElementById('more').addEventListener('click', () => last && search(last.q, last.kind, last.cursor));
  await loadCategories();
});

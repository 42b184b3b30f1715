// The voicemail inbox: play (GET /api/voicemail/N) and delete.
import { api, el, formatBytes, formatTime, requireSession, say, sayError, start } from './app.js';

function messageItem(message) {
  const label = 'Message from ' + message.from + ', ' + formatTime(message.time);
  const audio = el('audio', { controls: true, preload: 'none', 'aria-label': label });
  audio.src = '/api/voicemail/' + encodeURIComponent(message.id);
  const remove = el('button', { type: 'button', class: 'danger', 'aria-label': 'Delete ' + label.toLowerCase() }, 'Delete');
  const item = el('li', { 'data-message': String(message.id) },
    el('strong', {}, message.from),
    el('span', { class: 'muted' }, formatTime(message.time) + ' · ' + formatBytes(message.size)),
    audio,
    el('span', {}, remove));
  remove.addEventListener('click', async () => {
    remove.disabled = true;
    try {
      await api('DELETE', '/api/voicemail/' + encodeURIComponent(message.id));
      item.remove();
      say('Message from ' + message.from + ' deleted.', 'ok');
      document.getElementById('empty').hidden = document.getElementById('messages').children.length > 0;
      document.getElementById('refresh').focus();
    } catch (error) {
      remove.disabled = false;
      sayError(error);
    }
  });
  return item;
}

// The whole mailbox, page by page (the API lists 64 at a time).
async function load() {
  const messages = [];
  let answer = await api('GET', '/api/voicemail');
  messages.push(...(answer.messages || []));
  for (let pages = 1; answer.next_after !== undefined && pages < 100; ++pages) {
    answer = await api('GET', '/api/voicemail?after=' + encodeURIComponent(answer.next_after));
    messages.push(...(answer.messages || []));
  }
  const list = document.getElementById('messages');
  list.replaceChildren(...messages.map(messageItem));
  document.getElementById('empty').hidden = list.children.length > 0;
  const waiting = document.getElementById('voicemail-waiting');
  if (waiting) waiting.hidden = list.children.length === 0;
}

start(async () => {
  await requireSession();
  document.getElementById('refresh').addEventListener('click', () => load().then(() => say('Up to date.', 'ok'), sayError));
  await load();
});
